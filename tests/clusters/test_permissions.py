"""Persona × cluster endpoint or admin page × action → expected status.

Everyone signed in views clusters and their graphs; only admins change clusters and see or
manage keys. Users' credentials never open the agent routes.
"""

import pytest

from tests.factories import ApiKeyFactory, ClusterFactory

R = 302  # pages redirect anonymous visitors (and non-staff users, for the admin) to sign in

# method, url, body, {anon, alice (user), mod (moderator), root (admin)}
API = [
    ("get", "/api/clusters/", None, (401, 200, 200, 200)),
    ("post", "/api/clusters/", {"name": "new"}, (401, 403, 403, 201)),
    ("get", "/api/clusters/{c}/", None, (401, 200, 200, 200)),
    ("get", "/api/clusters/999999/", None, (401, 404, 404, 404)),
    ("patch", "/api/clusters/{c}/", {"description": "x"}, (401, 403, 403, 200)),
    ("put", "/api/clusters/{c}/", {"name": "renamed"}, (401, 403, 403, 200)),
    ("delete", "/api/clusters/{c}/", None, (401, 403, 403, 204)),
    ("post", "/api/clusters/{c}/enable/", None, (401, 403, 403, 200)),
    ("post", "/api/clusters/{c}/disable/", None, (401, 403, 403, 200)),
    ("get", "/api/clusters/{c}/resources/", None, (401, 200, 200, 200)),
    ("get", "/api/clusters/{c}/resources/?window=month", None, (401, 200, 200, 200)),
    ("get", "/api/clusters/{c}/keys/", None, (401, 403, 403, 200)),
    ("post", "/api/clusters/{c}/keys/", {"name": "main"}, (401, 403, 403, 201)),
    ("post", "/api/clusters/{c}/keys/{k}/revoke/", None, (401, 403, 403, 200)),
    ("post", "/api/clusters/{c}/keys/{k}/rotate/", None, (401, 403, 403, 201)),
    # api_as forces a user past authentication, so a signed-in persona meets IsClusterAgent
    # (403); a real JWT or session gets 401 there (test_keys).
    ("post", "/api/agent/v1/heartbeat/", {"agent_version": "1"}, (401, 403, 403, 403)),
]

PAGES = [
    ("get", "/admin/clusters/cluster/", None, (R, R, 403, 200)),
    ("get", "/admin/clusters/cluster/add/", None, (R, R, 403, 200)),
    ("get", "/admin/clusters/cluster/{c}/change/", None, (R, R, 403, 200)),
    ("get", "/admin/clusters/cluster/{c}/delete/", None, (R, R, 403, 200)),
    ("get", "/admin/clusters/apikey/", None, (R, R, 403, 200)),
    ("get", "/admin/clusters/apikey/add/", None, (R, R, 403, 200)),
    ("get", "/admin/clusters/apikey/{k}/change/", None, (R, R, 403, 200)),
]
PERSONAS = ("anon", "alice", "mod", "root")


def _cases(rows):
    for method, url, body, statuses in rows:
        for persona, status in zip(PERSONAS, statuses, strict=True):
            yield pytest.param(method, url, body, persona, status, id=f"{persona}-{method}-{url}-{body}")


@pytest.fixture
def urls(db):
    cluster = ClusterFactory(name="hpc1")
    key = ApiKeyFactory(cluster=cluster)
    return lambda template: template.format(c=cluster.pk, k=key.pk)


@pytest.mark.parametrize(("method", "url", "body", "persona", "expected"), list(_cases(API)))
def test_it_enforces_the_rules_in_the_api(api_as, urls, method, url, body, persona, expected):
    response = getattr(api_as(persona), method)(urls(url), body, format="json")
    assert response.status_code == expected, response.content


@pytest.mark.parametrize(("method", "url", "body", "persona", "expected"), list(_cases(PAGES)))
def test_it_enforces_the_rules_in_the_admin(page_as, urls, method, url, body, persona, expected):
    response = getattr(page_as(persona), method)(urls(url), body)
    assert response.status_code == expected


def test_it_hides_clusters_from_the_admin_index_of_moderators(page_as, db):
    assert "/admin/clusters/" not in page_as("mod").get("/admin/").content.decode()
    assert "/admin/clusters/" in page_as("root").get("/admin/").content.decode()
