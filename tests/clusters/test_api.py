"""/api/clusters/, its resources graph and its keys."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from clusters.models import ApiKey, Cluster, Heartbeat
from tests.factories import ApiKeyFactory, ClusterFactory, HeartbeatFactory

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_it_lists_clusters_with_online_status_and_heartbeat_age(api_as, cluster):
    cluster.last_heartbeat_at = T0 - timedelta(seconds=12)
    cluster.save()
    ClusterFactory(name="old", last_heartbeat_at=T0 - timedelta(hours=1))
    with time_machine.travel(T0, tick=False):
        results = api_as("alice").get("/api/clusters/").json()["results"]
    by_name = {c["name"]: c for c in results}
    assert (by_name["hpc1"]["is_online"], by_name["hpc1"]["heartbeat_age"]) == (True, 12.0)
    assert (by_name["old"]["is_online"], by_name["old"]["heartbeat_age"]) == (False, 3600.0)


@pytest.mark.parametrize(("query", "names"), [
    ("online=true", ["live"]), ("online=false", ["dead", "off"]), ("enabled=false", ["off"]),
    ("name=LIV", ["live"]),
])
def test_it_filters_clusters(api_as, query, names):
    ClusterFactory(name="live", last_heartbeat_at=T0)
    ClusterFactory(name="dead", last_heartbeat_at=T0 - timedelta(minutes=5))
    ClusterFactory(name="off", enabled=False)
    with time_machine.travel(T0, tick=False):
        results = api_as("alice").get(f"/api/clusters/?{query}").json()["results"]
    assert [c["name"] for c in results] == names


@pytest.mark.parametrize("count", [3, 30])
def test_it_lists_clusters_in_constant_queries(api_as, count, django_assert_max_num_queries):
    ClusterFactory.create_batch(count)
    client = api_as("alice")
    with django_assert_max_num_queries(4):  # session/user, count, page
        assert len(client.get("/api/clusters/").json()["results"]) == count


def test_it_lets_an_admin_create_a_cluster(api_as):
    response = api_as("root").post("/api/clusters/", {"name": "hpc2", "max_concurrent": 8,
                                                      "requires_approval": True}, format="json")
    assert response.status_code == 201, response.content
    cluster = Cluster.objects.get(name="hpc2")
    assert (cluster.max_concurrent, cluster.needs_approval, cluster.enabled) == (8, True, True)


@pytest.mark.parametrize("body", [{"name": "hpc1"}, {"name": "x", "max_concurrent": 0},
                                  {"name": "x", "heartbeat_interval": 0}, {"name": ""}])
def test_it_refuses_a_bad_cluster(api_as, cluster, body):
    response = api_as("root").post("/api/clusters/", body, format="json")
    assert response.status_code == 400
    assert set(response.json()) & {"name", "max_concurrent", "heartbeat_interval"}


def test_it_ignores_what_only_the_agent_reports(api_as, cluster):
    response = api_as("root").patch(f"/api/clusters/{cluster.pk}/", {"engines": ["x"], "agent_version": "9",
                                                                     "description": "GPU"}, format="json")
    assert response.status_code == 200
    cluster.refresh_from_db()
    assert (cluster.engines, cluster.agent_version, cluster.description) == ([], "", "GPU")


def test_it_disables_and_enables_a_cluster(api_as, cluster):
    assert api_as("root").post(f"/api/clusters/{cluster.pk}/disable/").json()["enabled"] is False
    cluster.refresh_from_db()
    assert cluster.enabled is False
    assert api_as("root").post(f"/api/clusters/{cluster.pk}/enable/").json()["enabled"] is True


def test_it_deletes_a_cluster_with_its_keys_and_points(api_as, cluster, agent_key):
    HeartbeatFactory(cluster=cluster)
    assert api_as("root").delete(f"/api/clusters/{cluster.pk}/").status_code == 204
    assert not (Cluster.objects.exists() or ApiKey.objects.exists() or Heartbeat.objects.exists())


# --- resources --------------------------------------------------------------------------


@pytest.mark.parametrize("window", ["hour", "day", "week", "month"])
def test_it_answers_the_resource_graph_of_a_window(api_as, cluster, window):
    HeartbeatFactory(cluster=cluster, time=T0 - timedelta(seconds=30), cpu_percent=42)
    with time_machine.travel(T0, tick=False):
        response = api_as("alice").get(f"/api/clusters/{cluster.pk}/resources/?window={window}")
    assert response.status_code == 200
    series = response.json()
    assert len(series["points"]) == 1 and series["points"][0]["cpu_percent"] == 42
    assert series["end"] == "2026-03-01T12:00:00Z"


def test_it_answers_the_resource_graph_between_two_times(api_as, cluster):
    HeartbeatFactory(cluster=cluster, time=T0, cpu_percent=42)
    HeartbeatFactory(cluster=cluster, time=T0 + timedelta(hours=2), cpu_percent=1)
    with time_machine.travel(T0 + timedelta(hours=3), tick=False):
        series = api_as("alice").get(f"/api/clusters/{cluster.pk}/resources/", {
            "start": "2026-03-01T11:30:00Z", "end": "2026-03-01T12:30:00Z", "max_points": 10}).json()
    assert [p["cpu_percent"] for p in series["points"]] == [42]
    assert len(series["points"]) <= 10


@pytest.mark.parametrize("query", ["window=year", "start=2026-03-01T12:00:00Z&end=2026-03-01T11:00:00Z",
                                   "end=2026-03-01T11:00:00Z", "window=day&start=2026-03-01T11:00:00Z",
                                   "max_points=1", "start=yesterday"])
def test_it_refuses_a_bad_window(api_as, cluster, query):
    assert api_as("alice").get(f"/api/clusters/{cluster.pk}/resources/?{query}").status_code == 400


# --- keys -------------------------------------------------------------------------------


def test_it_answers_a_new_key_once(api_as, cluster):
    response = api_as("root").post(f"/api/clusters/{cluster.pk}/keys/", {"name": "main"}, format="json")
    assert response.status_code == 201
    key = response.json()["key"]
    assert key.startswith("sfk_") and response["Cache-Control"] == "no-store"
    listed = api_as("root").get(f"/api/clusters/{cluster.pk}/keys/").content.decode()
    assert key not in listed and key.split("_")[1] in listed
    assert "key_hash" not in listed and ApiKey.objects.get().key_hash not in listed


def test_it_rotates_a_key_through_the_api(api_as, cluster, agent_key):
    response = api_as("root").post(f"/api/clusters/{cluster.pk}/keys/{agent_key.pk}/rotate/")
    assert response.status_code == 201
    assert response.json()["key"].startswith("sfk_") and response.json()["name"] == agent_key.name
    agent_key.refresh_from_db()
    assert agent_key.is_revoked
    assert api_as("root").post(f"/api/clusters/{cluster.pk}/keys/{agent_key.pk}/rotate/").status_code == 400


def test_it_revokes_a_key_through_the_api(api_as, cluster, agent_key):
    response = api_as("root").post(f"/api/clusters/{cluster.pk}/keys/{agent_key.pk}/revoke/")
    assert response.status_code == 200 and response.json()["is_revoked"] is True
    assert "key" not in response.json()


def test_it_finds_no_key_of_another_cluster(api_as, cluster):
    other = ApiKeyFactory()
    assert api_as("root").post(f"/api/clusters/{cluster.pk}/keys/{other.pk}/revoke/").status_code == 404
    assert api_as("root").get("/api/clusters/999999/keys/").status_code == 404
    assert api_as("root").post("/api/clusters/999999/keys/", {"name": "x"}, format="json").status_code == 404


def test_it_refuses_a_key_without_name(api_as, cluster):
    response = api_as("root").post(f"/api/clusters/{cluster.pk}/keys/", {"name": ""}, format="json")
    assert response.status_code == 400 and "name" in response.json()


@pytest.mark.parametrize("count", [3, 30])
def test_it_lists_keys_in_constant_queries(api_as, root, cluster, count, django_assert_max_num_queries):
    ApiKeyFactory.create_batch(count, cluster=cluster, created_by=root)
    client = api_as("root")
    with django_assert_max_num_queries(4):  # cluster, count, page (with creators)
        assert len(client.get(f"/api/clusters/{cluster.pk}/keys/").json()["results"]) == count
