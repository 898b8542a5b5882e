"""Bad input to the clusters API and the heartbeat: a 4xx naming the field, nothing stored.

(The heartbeat's field ranges and types are in test_heartbeat; these are the edges past
what the database holds, and admins' cluster settings.)
"""

import pytest

from clusters.models import ApiKey, Cluster, Heartbeat

TOO_BIG = 2**63  # past every integer column


# Raw JSON text: Python's json reads 1e400 as infinity, which no client library would send.
@pytest.mark.parametrize(("text", "field"), [
    (f'{{"agent_version": "1", "running": [{TOO_BIG}]}}', "running"),
    (f'{{"agent_version": "1", "memory_used": {TOO_BIG}}}', "memory_used"),
    (f'{{"agent_version": "1", "disk_free": {TOO_BIG}}}', "disk_free"),
    ('{"agent_version": "1", "load": [1e400]}', "load"),
    ('{"agent_version": "1", "cpu_percent": 1e400}', "cpu_percent"),
])
def test_it_refuses_numbers_past_what_is_stored(cluster, agent_client, text, field):
    response = agent_client.generic("POST", "/api/agent/v1/heartbeat/", text, content_type="application/json")
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]
    assert not Heartbeat.objects.exists()


def test_it_refuses_nan_as_a_json_parse_error(cluster, agent_client):
    text = '{"agent_version": "1", "cpu_percent": NaN}'
    response = agent_client.generic("POST", "/api/agent/v1/heartbeat/", text, content_type="application/json")
    assert response.status_code == 400 and "JSON parse error" in response.json()["detail"]
    assert not Heartbeat.objects.exists()


@pytest.mark.parametrize(("body", "field"), [
    ({"max_concurrent": 0}, "max_concurrent"),
    ({"max_concurrent": 2**31}, "max_concurrent"),
    ({"heartbeat_interval": 0}, "heartbeat_interval"),
    ({"heartbeat_interval": 2**31}, "heartbeat_interval"),
    ({"name": ""}, "name"),
    ({"name": "x" * 1000}, "name"),
    ({"enabled": "maybe"}, "enabled"),
])
def test_it_refuses_a_bad_cluster_setting_and_keeps_the_old_one(api_as, cluster, body, field):
    before = Cluster.objects.filter(pk=cluster.pk).values().get()
    response = api_as("root").patch(f"/api/clusters/{cluster.pk}/", body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert Cluster.objects.filter(pk=cluster.pk).values().get() == before


@pytest.mark.parametrize("url", ["/api/clusters/{big}/keys/", "/api/clusters/{big}/keys/1/revoke/",
                                 "/api/clusters/{c}/keys/{big}/rotate/", "/api/clusters/{big}/"])
def test_it_answers_404_for_ids_past_the_database_range(api_as, cluster, url):
    method = "get" if url.endswith(("keys/", "}/")) else "post"
    response = getattr(api_as("root"), method)(url.format(big=TOO_BIG * 10, c=cluster.pk))
    assert response.status_code == 404


def test_it_refuses_a_key_with_a_blank_name_and_stores_none(api_as, cluster):
    response = api_as("root").post(f"/api/clusters/{cluster.pk}/keys/", {"name": "  "}, format="json")
    assert response.status_code == 400 and "name" in response.json()
    assert not ApiKey.objects.exists()
