"""Persona × endpoint or page × action → expected status, for everything that exists.

Later issues add their rows here. ``{bob}`` is a plain user, ``{root}`` the admin persona;
403 and 404 are asserted as carefully as 200: a user who may not see another user gets 404.
"""

import pytest

from tests.factories import PASSWORD

NEW_USER = {"username": "newbie", "email": "newbie@example.org", "password": PASSWORD, "role": "user"}
STRONG = {"password": "another long passphrase 42"}
ME_PASSWORD = {"password": "another long passphrase 42", "current_password": PASSWORD}

R = 302  # pages redirect anonymous visitors to the sign-in page

# method, url, body, {anon, alice (user), mod (moderator), root (admin)}
PAGES = [
    ("get", "/", None, (R, 200, 200, 200)),
    ("get", "/analyses/", None, (R, 200, 200, 200)),
    ("get", "/calculations/", None, (R, 200, 200, 200)),
    ("get", "/molecules/", None, (R, 200, 200, 200)),
    ("get", "/models/", None, (R, 200, 200, 200)),
    ("get", "/clusters/", None, (R, 200, 200, 200)),
    ("get", "/logs/", None, (R, 200, 200, 200)),
    ("get", "/users/", None, (R, R, 200, 200)),
    ("get", "/users/new/", None, (R, 403, 403, 200)),
    ("get", "/users/{bob}/", None, (R, 404, 200, 200)),
    ("post", "/users/{bob}/block/", {}, (R, 404, R, R)),
    ("post", "/users/{root}/block/", {}, (R, 404, 403, 403)),
    ("post", "/users/{bob}/revoke-tokens/", {}, (R, 404, 403, R)),
    ("post", "/users/{bob}/delete/", {}, (R, 404, 403, R)),
    ("post", "/users/{bob}/password/", {"new_password1": STRONG["password"],
                                         "new_password2": STRONG["password"]}, (R, 404, R, R)),
    ("post", "/users/{root}/password/", {"new_password1": STRONG["password"],
                                          "new_password2": STRONG["password"]}, (R, 404, 403, 400)),
    ("get", "/admin/", None, (R, R, 200, 200)),
    ("get", "/admin/accounts/user/", None, (R, R, 200, 200)),
    ("get", "/admin/accounts/user/add/", None, (R, R, 403, 200)),
    ("get", "/admin/accounts/user/{bob}/change/", None, (R, R, 200, 200)),
    ("get", "/admin/accounts/user/{bob}/delete/", None, (R, R, 403, 200)),
    ("get", "/admin/accounts/user/{bob}/password/", None, (R, R, 200, 200)),
    ("get", "/admin/accounts/user/{root}/password/", None, (R, R, 403, 200)),
    ("get", "/api/docs/", None, (200, 200, 200, 200)),
    ("get", "/api/schema/", None, (200, 200, 200, 200)),
]

API = [
    ("get", "/api/users/", None, (401, 200, 200, 200)),
    ("post", "/api/users/", NEW_USER, (401, 403, 403, 201)),
    ("get", "/api/users/{bob}/", None, (401, 404, 200, 200)),
    ("patch", "/api/users/{bob}/", {"role": "moderator"}, (401, 404, 403, 200)),
    ("patch", "/api/users/{bob}/", {"first_name": "Bob"}, (401, 404, 403, 200)),
    ("delete", "/api/users/{bob}/", None, (401, 404, 403, 204)),
    ("post", "/api/users/{bob}/block/", None, (401, 404, 200, 200)),
    ("post", "/api/users/{bob}/unblock/", None, (401, 404, 200, 200)),
    ("post", "/api/users/{root}/block/", None, (401, 404, 403, 403)),
    ("post", "/api/users/{bob}/set-password/", STRONG, (401, 404, 204, 204)),
    ("post", "/api/users/{root}/set-password/", STRONG, (401, 404, 403, 403)),  # own: needs current
    ("post", "/api/users/{bob}/revoke-tokens/", None, (401, 404, 403, 200)),
    ("get", "/api/me/", None, (401, 200, 200, 200)),
    ("patch", "/api/me/", {"notify_level": "ERROR"}, (401, 200, 200, 200)),
    ("patch", "/api/me/", {"role": "admin"}, (401, 403, 403, 200)),  # root: unchanged
    ("patch", "/api/me/", {"role": "moderator"}, (401, 403, 200, 403)),  # mod: unchanged
    ("post", "/api/me/password/", ME_PASSWORD, (401, 204, 204, 204)),
]
PERSONAS = ("anon", "alice", "mod", "root")


def _cases(rows):
    for method, url, body, statuses in rows:
        for persona, status in zip(PERSONAS, statuses, strict=True):
            yield pytest.param(method, url, body, persona, status, id=f"{persona}-{method}-{url}-{body}")


def _url(template, bob, root):
    return template.format(bob=bob.pk, root=root.pk)


@pytest.mark.parametrize(("method", "url", "body", "persona", "expected"), list(_cases(PAGES)))
def test_it_enforces_the_rules_on_pages(page_as, bob, root, method, url, body, persona, expected):
    response = getattr(page_as(persona), method)(_url(url, bob, root), body)
    assert response.status_code == expected


@pytest.mark.parametrize(("method", "url", "body", "persona", "expected"), list(_cases(API)))
def test_it_enforces_the_rules_in_the_api(api_as, bob, root, method, url, body, persona, expected):
    response = getattr(api_as(persona), method)(_url(url, bob, root), body, format="json")
    assert response.status_code == expected, response.content
