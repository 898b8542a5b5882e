"""Persona × calculations endpoint × action → expected status (issue 3's user API and the
agent API). Follows tests/accounts/test_permission_matrix.py.

Every signed-in user views, creates, edits, cancels and resumes calculations and reads
their events, results, downloads, logs and the dataset export; moderators and admins also
approve and reject; only admins delete logs. Users' credentials never open the agent routes.
"""

import pytest
from django.core.files.base import ContentFile
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from calculations.models import Artifact, Calculation, LogLine
from calculations.states import State
from tests.calculations.conftest import H2O_FDF
from tests.conftest import api_client_for

AGENT = "/api/agent/v1"
REASON = {"reason": "too large for this month"}

# method, url, body, {anon, alice (user), mod (moderator), root (admin)}
API = [
    ("get", "/api/calculations/", None, (401, 200, 200, 200)),
    ("post", "/api/calculations/", "new", (401, 201, 201, 201)),
    ("get", "/api/calculations/{queued}/", None, (401, 200, 200, 200)),
    ("get", "/api/calculations/999999/", None, (401, 404, 404, 404)),
    ("patch", "/api/calculations/{queued}/", {"priority": 5}, (401, 200, 200, 200)),
    ("post", "/api/calculations/{queued}/cancel/", None, (401, 200, 200, 200)),
    ("post", "/api/calculations/{failed}/resume/", None, (401, 200, 200, 200)),
    ("post", "/api/calculations/{pending}/approve/", None, (401, 403, 200, 200)),
    ("post", "/api/calculations/{pending}/reject/", REASON, (401, 403, 200, 200)),
    ("get", "/api/calculations/{pending}/why/", None, (401, 200, 200, 200)),
    ("get", "/api/calculations/{queued}/events/", None, (401, 200, 200, 200)),
    ("get", "/api/calculations/{queued}/results/", None, (401, 200, 200, 200)),
    ("get", "/api/calculations/{queued}/artifacts/{artifact}/", None, (401, 200, 200, 200)),
    ("get", "/api/calculations/{queued}/download/config/?format=json", None, (401, 200, 200, 200)),
    ("get", "/api/calculations/{queued}/download/extracted/?format=csv", None, (401, 200, 200, 200)),
    ("get", "/api/analyses/", None, (401, 200, 200, 200)),
    ("get", "/api/logs/", None, (401, 200, 200, 200)),
    ("get", "/api/logs/?after={line}", None, (401, 200, 200, 200)),
    ("delete", "/api/logs/{line}/", None, (401, 403, 403, 204)),
    ("post", "/api/logs/purge/?calculation={queued}", None, (401, 403, 403, 200)),
    ("get", "/api/datasets/export/?format=jsonl", None, (401, 200, 200, 200)),
    ("get", "/api/datasets/export/?format=csv", None, (401, 200, 200, 200)),
    # api_as forces a user past authentication, so a signed-in persona meets the agent
    # permission (403); a real JWT or session gets 401 there (below).
    ("get", f"{AGENT}/calculations/?processed=false", None, (401, 403, 403, 403)),
    ("post", f"{AGENT}/claim/", {"max": 1}, (401, 403, 403, 403)),
    ("post", f"{AGENT}/logs/", {"lines": [{"message": "x"}]}, (401, 403, 403, 403)),
    ("post", f"{AGENT}/calculations/{{queued}}/events/", {"seq": 1, "state": "running"}, (401, 403, 403, 403)),
    ("post", f"{AGENT}/calculations/{{queued}}/logs/", {"lines": [{"message": "x"}]}, (401, 403, 403, 403)),
    ("post", f"{AGENT}/calculations/{{queued}}/results/", {"step": 0, "data": {}}, (401, 403, 403, 403)),
    ("get", f"{AGENT}/calculations/{{queued}}/files/O.psf", None, (401, 403, 403, 403)),
    ("post", f"{AGENT}/reports/", {"reports": [{"calculation": 1, "kind": "event", "body": {"seq": 1}}]},
     (401, 403, 403, 403)),
]
AGENT_ROUTES = [(m, u, b) for m, u, b, _ in API if u.startswith(AGENT)] + [
    ("post", f"{AGENT}/heartbeat/", {"agent_version": "1"})]
PERSONAS = ("anon", "alice", "mod", "root")


def _cases(rows):
    for method, url, body, statuses in rows:
        for persona, status in zip(PERSONAS, statuses, strict=True):
            yield pytest.param(method, url, body, persona, status, id=f"{persona}-{method}-{url}")


@pytest.fixture
def objects(submit, cluster, settings, tmp_path):
    """A queued, a failed and a pending calculation, an artifact and a log line."""
    settings.MEDIA_ROOT = tmp_path / "media"
    queued = submit(name="queued")
    failed = submit(name="failed")
    Calculation.objects.filter(pk=failed.pk).update(state=State.FAILED)
    settings.REQUIRE_APPROVAL = True
    pending = submit(name="pending")
    artifact = Artifact.objects.create(calculation=queued, attempt=1, step=0, name="plot.png", size=3,
                                       content_type="image/png", file=ContentFile(b"png", name="plot.png"))
    line = LogLine.objects.create(cluster=cluster, calculation=queued, message="hello", time="2026-01-01T00:00Z")
    return {"queued": queued.pk, "failed": failed.pk, "pending": pending.pk, "artifact": artifact.pk,
            "line": line.pk}


@pytest.fixture
def new_calculation(cluster, water, pseudos):
    return {"name": "new", "cluster": cluster.pk, "engine": "siesta", "molecule": water.pk,
            "config": {"fdf": H2O_FDF}, "pseudopotentials": [p.pk for p in pseudos]}


@pytest.mark.parametrize(("method", "url", "body", "persona", "expected"), list(_cases(API)))
def test_it_enforces_the_rules_in_the_api(api_as, objects, new_calculation, method, url, body, persona, expected):
    body = new_calculation if body == "new" else body
    response = getattr(api_as(persona), method)(url.format(**objects), body, format="json")
    assert response.status_code == expected, response.content


@pytest.mark.parametrize(("method", "url", "body"), AGENT_ROUTES, ids=[f"{m}-{u}" for m, u, _ in AGENT_ROUTES])
def test_it_refuses_a_users_jwt_on_every_agent_route(objects, alice, method, url, body):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(alice).access_token}")
    response = getattr(client, method)(url.format(**objects), body, format="json")
    assert response.status_code == 401, response.content


@pytest.mark.parametrize(("method", "url", "body"), AGENT_ROUTES, ids=[f"{m}-{u}" for m, u, _ in AGENT_ROUTES])
def test_it_refuses_a_users_session_on_every_agent_route(objects, alice, client, method, url, body):
    client.force_login(alice)
    response = getattr(client, method)(url.format(**objects), body, content_type="application/json")
    assert response.status_code == 401, response.content


@pytest.mark.parametrize("url", ["/api/calculations/", "/api/logs/", "/api/analyses/", "/api/datasets/export/"])
def test_it_refuses_a_blocked_user(alice, url):
    alice.is_active = False
    alice.save()
    assert api_client_for(alice).get(url).status_code == 403


def test_it_changes_nothing_when_a_plain_user_approves_or_rejects(api_as, objects):
    client = api_as("alice")
    client.post(f"/api/calculations/{objects['pending']}/approve/")
    client.post(f"/api/calculations/{objects['pending']}/reject/", REASON, format="json")
    pending = Calculation.objects.get(pk=objects["pending"])
    assert (pending.state, pending.approval) == (State.PENDING_APPROVAL, "pending")


def test_it_keeps_log_lines_a_moderator_tries_to_delete(api_as, objects):
    api_as("mod").delete(f"/api/logs/{objects['line']}/")
    api_as("mod").post(f"/api/logs/purge/?calculation={objects['queued']}")
    assert LogLine.objects.filter(pk=objects["line"]).exists()
