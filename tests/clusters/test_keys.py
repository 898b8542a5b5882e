"""API keys: shown once, stored as a hash, effective at once, and good only on agent routes."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from accounts import permissions
from clusters import services
from clusters.authentication import AgentPrincipal
from clusters.models import ApiKey, hash_key
from tests.clusters.conftest import client_with_key

HEARTBEAT = "/api/agent/v1/heartbeat/"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_it_shows_the_key_once_and_stores_only_its_hash(root, cluster):
    key, plaintext = services.create_key(actor=root, cluster=cluster, name="main")
    assert plaintext.startswith(f"sfk_{key.prefix}_")
    assert len(plaintext.split("_", 2)[2]) >= 43  # 32 random bytes, base64url
    row = ApiKey.objects.filter(pk=key.pk).values().get()
    secret = plaintext.split("_", 2)[2]
    assert all(secret not in str(value) for value in row.values())
    assert row["key_hash"] == hash_key(plaintext)


def test_it_gives_every_key_its_own_text(root, cluster):
    texts = {services.create_key(actor=root, cluster=cluster, name="k")[1] for _ in range(5)}
    assert len(texts) == 5


def test_it_accepts_a_new_key_at_once(root, cluster, payload):
    _, plaintext = services.create_key(actor=root, cluster=cluster, name="main")
    assert client_with_key(plaintext).post(HEARTBEAT, payload, format="json").status_code == 200


def test_it_refuses_a_revoked_key_at_once(root, agent_key, agent_client, payload):
    assert agent_client.post(HEARTBEAT, payload, format="json").status_code == 200
    services.revoke_key(actor=root, key=agent_key)
    response = agent_client.post(HEARTBEAT, payload, format="json")
    assert response.status_code == 401
    assert response.json()["detail"] == "API key revoked"
    assert response["WWW-Authenticate"] == "Api-Key"


def test_it_keeps_the_first_revocation_time(root, agent_key):
    with time_machine.travel(T0, tick=False):
        services.revoke_key(actor=root, key=agent_key)
    with time_machine.travel(T0 + timedelta(hours=1), tick=False):
        services.revoke_key(actor=root, key=agent_key)
    agent_key.refresh_from_db()
    assert agent_key.revoked_at == T0


def test_it_rotates_a_key(root, agent_key, agent_client, payload):
    new, plaintext = services.rotate_key(actor=root, key=agent_key)
    agent_key.refresh_from_db()
    assert agent_key.is_revoked and not new.is_revoked
    assert (new.name, new.cluster_id) == (agent_key.name, agent_key.cluster_id)
    assert agent_client.post(HEARTBEAT, payload, format="json").status_code == 401
    assert client_with_key(plaintext).post(HEARTBEAT, payload, format="json").status_code == 200


def test_it_refuses_to_rotate_a_revoked_key(root, agent_key):
    services.revoke_key(actor=root, key=agent_key)
    with pytest.raises(ValidationError):
        services.rotate_key(actor=root, key=agent_key)


@pytest.mark.parametrize("persona", ["alice", "mod"])
def test_it_lets_only_admins_manage_keys(request, persona, cluster, agent_key):
    actor = request.getfixturevalue(persona)
    with pytest.raises(PermissionDenied):
        services.create_key(actor=actor, cluster=cluster, name="x")
    with pytest.raises(PermissionDenied):
        services.revoke_key(actor=actor, key=agent_key)
    with pytest.raises(PermissionDenied):
        services.rotate_key(actor=actor, key=agent_key)
    assert ApiKey.objects.count() == 1


def test_it_records_last_used_at_at_most_once_a_minute(agent_key, agent_client, payload):
    with time_machine.travel(T0, tick=False):
        agent_client.post(HEARTBEAT, payload, format="json")
    agent_key.refresh_from_db()
    assert agent_key.last_used_at == T0
    with time_machine.travel(T0 + timedelta(seconds=59), tick=False), CaptureQueriesContext(connection) as ctx:
        assert agent_client.post(HEARTBEAT, payload, format="json").status_code == 200
    assert not [q for q in ctx.captured_queries if q["sql"].startswith('UPDATE "clusters_apikey"')]
    agent_key.refresh_from_db()
    assert agent_key.last_used_at == T0
    with time_machine.travel(T0 + timedelta(seconds=61), tick=False):
        agent_client.post(HEARTBEAT, payload, format="json")
    agent_key.refresh_from_db()
    assert agent_key.last_used_at == T0 + timedelta(seconds=61)


def test_it_refuses_a_known_prefix_with_a_wrong_secret(agent_key, payload):
    wrong = f"sfk_{agent_key.prefix}_{'x' * 43}"
    response = client_with_key(wrong).post(HEARTBEAT, payload, format="json")
    assert response.status_code == 401
    assert response.json()["detail"] == "Invalid API key."
    agent_key.refresh_from_db()
    assert agent_key.last_used_at is None


@pytest.mark.parametrize("header", [
    "Api-Key sfk_nosuchprefix_secret", "Api-Key garbage", "Api-Key", "Api-Key a b", "Api-Key sfk__x",
])
def test_it_refuses_unknown_or_malformed_keys(agent_key, payload, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    assert client.post(HEARTBEAT, payload, format="json").status_code == 401


def test_it_refuses_a_missing_key_with_401(db, payload):
    response = APIClient().post(HEARTBEAT, payload, format="json")
    assert response.status_code == 401
    assert set(response.json()) == {"detail", "errors"}


def test_it_refuses_a_user_jwt_on_the_agent_route(root, agent_key, payload):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(root).access_token}")
    assert client.get("/api/me/").status_code == 200  # the token itself is good
    assert client.post(HEARTBEAT, payload, format="json").status_code == 401


def test_it_refuses_a_user_session_on_the_agent_route(root, agent_key, payload, client):
    client.force_login(root)
    response = client.post(HEARTBEAT, payload, content_type="application/json")
    assert response.status_code == 401


@pytest.mark.parametrize("url", ["/api/users/", "/api/me/", "/api/clusters/"])
def test_it_refuses_an_agent_key_on_user_routes(agent_client, url):
    assert agent_client.get(url).status_code == 401


def test_it_gives_an_agent_principal_no_user_rights(cluster, agent_key):
    agent = AgentPrincipal(cluster, agent_key)
    assert agent.is_authenticated
    predicates = [permissions.is_moderator, permissions.is_admin, permissions.can_use_science,
                  permissions.can_approve_calculations, permissions.can_view_users, permissions.can_create_users,
                  permissions.can_manage_clusters, permissions.can_delete_logs, permissions.can_manage_models]
    assert not any(predicate(agent) for predicate in predicates)
    assert not agent.has_perm("clusters.view_cluster")
