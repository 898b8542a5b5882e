"""The rows of the permission matrix that test_permission_matrix.py leaves out: full
updates of users, the sign-in endpoints (open to everyone, by design) and blocked users."""

import pytest
from rest_framework.test import APIClient

from tests.factories import PASSWORD

PERSONAS = ("anon", "alice", "mod", "root")
FULL_BOB = {"email": "bob@example.org", "first_name": "Bob", "last_name": "B", "role": "user",
            "notify_level": "INFO"}

# method, url, body, {anon, alice (user), mod (moderator), root (admin)}
API = [
    ("put", "/api/users/{bob}/", FULL_BOB, (401, 404, 403, 200)),
    ("put", "/api/users/{bob}/", {**FULL_BOB, "role": "admin"}, (401, 404, 403, 200)),
    ("get", "/api/users/?role=admin", None, (401, 200, 200, 200)),
    ("get", "/api/users/999999/", None, (401, 404, 404, 404)),
    ("post", "/api/auth/refresh/", None, (401, 401, 401, 401)),  # no cookie: sign in again
    ("post", "/api/auth/logout/", None, (204, 204, 204, 204)),
]


def _cases(rows):
    for method, url, body, statuses in rows:
        for persona, status in zip(PERSONAS, statuses, strict=True):
            yield pytest.param(method, url, body, persona, status, id=f"{persona}-{method}-{url}-{body}")


@pytest.mark.parametrize(("method", "url", "body", "persona", "expected"), list(_cases(API)))
def test_it_enforces_the_rules_in_the_api(api_as, bob, root, method, url, body, persona, expected):
    response = getattr(api_as(persona), method)(url.format(bob=bob.pk, root=root.pk), body, format="json")
    assert response.status_code == expected, response.content


def test_it_lists_only_oneself_to_a_plain_user(api_as, alice, bob):
    usernames = [u["username"] for u in api_as("alice").get("/api/users/").json()["results"]]
    assert usernames == ["alice"]


def test_it_signs_in_every_role_with_a_password(client, personas):
    for name in ("alice", "mod", "root"):
        response = client.post("/api/auth/token/", {"username": name, "password": PASSWORD},
                               content_type="application/json")
        assert response.status_code == 200 and response.json()["access"]


@pytest.mark.parametrize("url", ["/api/me/", "/api/users/", "/api/me/password/"])
def test_it_refuses_a_blocked_users_access_token(client, alice, url):
    access = client.post("/api/auth/token/", {"username": "alice", "password": PASSWORD},
                         content_type="application/json").json()["access"]
    alice.is_active = False  # blocked after the token was issued
    alice.save(update_fields=["is_active"])
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    response = api.get(url) if url != "/api/me/password/" else api.post(url, {}, format="json")
    assert response.status_code == 401, response.content


def test_it_lists_users_a_page_at_a_time_in_constant_queries(page_as):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from accounts.views import USERS_PER_PAGE
    from tests.factories import UserFactory

    client = page_as("root")

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/users/").status_code == 200
        return len(captured)

    few = queries()
    UserFactory.create_batch(USERS_PER_PAGE + 5)
    assert queries() == few
    html = client.get("/users/").content.decode()
    assert html.count('<td><a href="/users/') == USERS_PER_PAGE and "Page 1 of 2" in html
    assert client.get("/users/?page=2").status_code == 200


def test_it_makes_one_permission_class_per_rule():
    from accounts.permissions import Allow, can_manage_models, can_use_science

    assert Allow(can_use_science) is Allow(can_use_science)
    assert Allow(can_use_science) is not Allow(can_manage_models)
    assert Allow(can_use_science).__name__ == "Allow_can_use_science"
