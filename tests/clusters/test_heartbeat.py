"""POST /api/agent/v1/heartbeat/: validation, what it stores, what it answers; online status."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone

from clusters import services
from clusters.models import Cluster, Heartbeat

HEARTBEAT = "/api/agent/v1/heartbeat/"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_it_stores_the_point_and_what_the_agent_reports(cluster, agent_client, payload):
    with time_machine.travel(T0, tick=False):
        response = agent_client.post(HEARTBEAT, payload, format="json")
    assert response.status_code == 200, response.content
    point = Heartbeat.objects.get()
    assert (point.cluster_id, point.time, point.cpu_percent, point.memory_percent) == (cluster.pk, T0, 12.5, 40.1)
    assert (point.memory_used, point.memory_total, point.disk_free) == (1234567, 9999999, 123456789)
    assert (point.load_1, point.running) == (0.5, 2)
    cluster.refresh_from_db()
    assert cluster.last_heartbeat_at == T0
    assert cluster.agent_version == "0.1.0"
    assert cluster.engines == ["siesta", "pyscf", "command"]
    assert cluster.analyses == ["energy_summary", "scf_convergence"]


def test_it_answers_the_cancel_list_settings_and_server_time(cluster, agent_client, payload):
    cluster.enabled, cluster.max_concurrent, cluster.heartbeat_interval = False, 2, 30
    cluster.save()
    with time_machine.travel(T0, tick=False):
        answer = agent_client.post(HEARTBEAT, payload, format="json").json()
    assert answer == {"cancel": [], "settings": {"enabled": False, "heartbeat_interval": 30, "max_concurrent": 2},
                      "server_time": "2026-03-01T12:00:00Z"}


def _claimed(cluster, owner, n: int) -> list:
    """``n`` calculations of ``cluster``, claimed by its agent."""
    from calculations import ingest
    from calculations.models import Calculation

    calcs = [Calculation.objects.create(name=f"c{i}", owner=owner, cluster=cluster, engine="command",
                                        inputs_hash=str(i)) for i in range(n)]
    ingest.claim(cluster=cluster, max_count=n)
    return list(Calculation.objects.filter(pk__in=[c.pk for c in calcs]).order_by("pk"))


def test_it_renews_leases_and_answers_cancel_requests(cluster, agent_client, payload, alice):
    from calculations import services
    from calculations.models import Calculation

    calcs = _claimed(cluster, alice, 2)
    Calculation.objects.update(lease_expires_at=timezone.now())
    services.cancel(actor=alice, calc=Calculation.objects.get(pk=calcs[0].pk))
    payload["running"] = [calcs[0].pk, calcs[0].pk, 999_999]
    answer = agent_client.post(HEARTBEAT, payload, format="json").json()
    assert answer["cancel"] == [calcs[0].pk]
    renewed = Calculation.objects.get(pk=calcs[0].pk).lease_expires_at
    assert renewed > timezone.now() + timedelta(seconds=60)
    assert Calculation.objects.get(pk=calcs[1].pk).lease_expires_at <= timezone.now()


def test_it_answers_only_the_cancels_of_what_the_agent_runs(cluster, agent_client, payload, alice):
    """An active calculation the agent does not list is one it never got: it cannot cancel
    it (its lease runs out instead), so the answer names only the listed ones."""
    from calculations import services

    calcs = _claimed(cluster, alice, 3)
    for calc in calcs:
        services.cancel(actor=alice, calc=calc)
    payload["running"] = [calcs[2].pk, calcs[0].pk]
    assert agent_client.post(HEARTBEAT, payload, format="json").json()["cancel"] == [calcs[0].pk, calcs[2].pk]
    payload["running"] = []
    assert agent_client.post(HEARTBEAT, payload, format="json").json()["cancel"] == []


def test_an_idle_agents_heartbeat_reads_no_calculation(cluster, agent_client, payload, alice):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from calculations import services

    services.cancel(actor=alice, calc=_claimed(cluster, alice, 1)[0])
    payload["running"] = []
    with CaptureQueriesContext(connection) as queries:
        answer = agent_client.post(HEARTBEAT, payload, format="json")
    assert answer.status_code == 200 and answer.json()["cancel"] == []
    assert not [q["sql"] for q in queries.captured_queries if "calculations_calculation" in q["sql"]]


def test_it_keeps_what_an_agent_does_not_report(cluster, agent_client):
    cluster.engines, cluster.analyses = ["siesta"], ["energy_summary"]
    cluster.save()
    response = agent_client.post(HEARTBEAT, {"agent_version": "0.2.0"}, format="json")
    assert response.status_code == 200
    cluster.refresh_from_db()
    assert (cluster.engines, cluster.analyses, cluster.agent_version) == (["siesta"], ["energy_summary"], "0.2.0")
    point = Heartbeat.objects.get()
    assert (point.cpu_percent, point.load_1, point.running) == (None, None, 0)


def test_it_does_not_overwrite_an_admins_change_made_meanwhile(cluster, agent_key, payload):
    Cluster.objects.filter(pk=cluster.pk).update(enabled=False)  # an admin, after the key was read
    services.record_heartbeat(cluster=agent_key.cluster, payload=payload)
    cluster.refresh_from_db()
    assert cluster.enabled is False


@pytest.mark.parametrize(("change", "field"), [
    ({"cpu_percent": 150}, "cpu_percent"),
    ({"cpu_percent": -1}, "cpu_percent"),
    ({"cpu_percent": "lots"}, "cpu_percent"),
    ({"memory_percent": 100.5}, "memory_percent"),
    ({"memory_used": -5}, "memory_used"),
    ({"memory_used": 10, "memory_total": 5}, "memory_used"),
    ({"disk_free": 2**64}, "disk_free"),
    ({"load": []}, "load"),
    ({"load": [1, 2, 3, 4]}, "load"),
    ({"load": [-0.5]}, "load"),
    ({"load": 0.5}, "load"),
    ({"running": "12"}, "running"),
    ({"running": ["12"]}, "running"),
    ({"running": [1.5]}, "running"),
    ({"running": [0]}, "running"),
    ({"running": [True]}, "running"),
    ({"engines": [1]}, "engines"),
    ({"engines": "siesta"}, "engines"),
    ({"analyses": ["x" * 65]}, "analyses"),
    ({"agent_version": None}, "agent_version"),
    ({"agent_version": ""}, "agent_version"),
])
def test_it_refuses_a_malformed_heartbeat_with_field_messages(cluster, agent_client, payload, change, field):
    payload.update(change)
    response = agent_client.post(HEARTBEAT, payload, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["detail"] and field in body["errors"], body
    assert not Heartbeat.objects.exists()
    cluster.refresh_from_db()
    assert cluster.last_heartbeat_at is None


def test_it_refuses_a_heartbeat_without_agent_version(cluster, agent_client, payload):
    del payload["agent_version"]
    response = agent_client.post(HEARTBEAT, payload, format="json")
    assert response.status_code == 400
    assert "agent_version" in response.json()["errors"]


@pytest.mark.parametrize("body", ['[1, 2]', '{"agent_version": "1", "cpu_percent": NaN}', "{not json"])
def test_it_refuses_a_body_that_is_no_json_object(cluster, agent_client, body):
    response = agent_client.post(HEARTBEAT, body, content_type="application/json")
    assert response.status_code == 400
    assert not Heartbeat.objects.exists()


def test_it_checks_the_ranges_in_the_service_too(cluster):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        services.record_heartbeat(cluster=cluster, payload={"agent_version": "1", "cpu_percent": 300})
    assert not Heartbeat.objects.exists()


def test_it_describes_the_heartbeat_in_the_openapi_schema(db, client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operation = schema["paths"]["/api/agent/v1/heartbeat/"]["post"]
    assert operation["operationId"] == "agent_heartbeat"
    assert operation["security"] == [{"clusterApiKey": []}]
    assert {"200", "400", "401"} <= set(operation["responses"])
    body = schema["components"]["schemas"]["HeartbeatRequest"]
    assert {"agent_version", "cpu_percent", "load", "running", "engines", "analyses"} <= set(body["properties"])


# --- online / offline -------------------------------------------------------------------


def test_it_is_online_until_three_intervals_are_missed(cluster):
    cluster.heartbeat_interval = 10
    cluster.save()
    with time_machine.travel(T0, tick=False):
        services.record_heartbeat(cluster=cluster, payload={"agent_version": "1"})
    for seconds, online in [(0, True), (29, True), (30, True), (31, False), (3600, False)]:
        with time_machine.travel(T0 + timedelta(seconds=seconds), tick=False):
            fresh = Cluster.objects.get(pk=cluster.pk)
            assert fresh.is_online is online, seconds
            assert Cluster.objects.online().filter(pk=cluster.pk).exists() is online, seconds
            assert Cluster.objects.offline().filter(pk=cluster.pk).exists() is not online, seconds


def test_it_follows_each_clusters_own_interval(db):
    from tests.factories import ClusterFactory

    fast = ClusterFactory(heartbeat_interval=5, last_heartbeat_at=T0)
    slow = ClusterFactory(heartbeat_interval=60, last_heartbeat_at=T0)
    never = ClusterFactory()
    now = T0 + timedelta(seconds=20)
    assert list(Cluster.objects.online(now)) == [slow]
    assert set(Cluster.objects.offline(now)) == {fast, never}


@pytest.mark.parametrize(("requires", "site", "expected"), [
    (None, True, True), (None, False, False), (True, False, True), (False, True, False)])
def test_it_resolves_the_approval_rule(cluster, settings, requires, site, expected):
    settings.REQUIRE_APPROVAL = site
    cluster.requires_approval = requires
    assert cluster.needs_approval is expected


def test_it_takes_only_json(cluster, agent_client):
    response = agent_client.post(HEARTBEAT, {"agent_version": "1"})  # a form
    assert response.status_code == 415
    assert set(response.json()) == {"detail", "errors"}
