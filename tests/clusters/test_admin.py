"""Clusters and API keys in the Django admin: through the services, the key shown once."""

import re

from clusters.models import ApiKey, Cluster, hash_key


def _shown_keys(response) -> list[str]:
    return re.findall(r"sfk_[0-9a-f]+_[A-Za-z0-9_-]{43,}", response.content.decode())


def test_it_shows_a_new_key_once_in_a_message(page_as, cluster):
    admin = page_as("root")
    response = admin.post("/admin/clusters/apikey/add/", {"cluster": cluster.pk, "name": "main"}, follow=True)
    key = ApiKey.objects.get()
    (plaintext,) = _shown_keys(response)
    assert hash_key(plaintext) == key.key_hash and key.created_by.username == "root"
    assert plaintext not in admin.get(f"/admin/clusters/apikey/{key.pk}/change/").content.decode()
    assert _shown_keys(admin.get("/admin/clusters/apikey/")) == []


def test_it_never_shows_the_key_hash(page_as, agent_key):
    for url in ("/admin/clusters/apikey/", f"/admin/clusters/apikey/{agent_key.pk}/change/",
                f"/admin/clusters/cluster/{agent_key.cluster_id}/change/"):
        html = page_as("root").get(url).content.decode()
        assert agent_key.key_hash not in html and "key_hash" not in html


def test_it_revokes_keys_with_the_admin_action(page_as, agent_key):
    page_as("root").post("/admin/clusters/apikey/", {"action": "revoke_keys", "_selected_action": [agent_key.pk]})
    agent_key.refresh_from_db()
    assert agent_key.is_revoked


def test_it_rotates_keys_with_the_admin_action_showing_the_new_key(page_as, agent_key):
    response = page_as("root").post("/admin/clusters/apikey/", {
        "action": "rotate_keys", "_selected_action": [agent_key.pk]}, follow=True)
    new = ApiKey.objects.exclude(pk=agent_key.pk).get()
    (plaintext,) = _shown_keys(response)
    assert hash_key(plaintext) == new.key_hash
    agent_key.refresh_from_db()
    assert agent_key.is_revoked


def test_it_adds_a_cluster_through_the_admin(page_as):
    response = page_as("root").post("/admin/clusters/cluster/add/", {
        "name": "hpc9", "description": "", "enabled": "on", "max_concurrent": 3, "heartbeat_interval": 10,
        "requires_approval": "unknown", "api_keys-TOTAL_FORMS": 0, "api_keys-INITIAL_FORMS": 0})
    assert response.status_code == 302, response.content.decode()[:2000]
    cluster = Cluster.objects.get(name="hpc9")
    assert (cluster.max_concurrent, cluster.requires_approval) == (3, None)


def test_it_disables_clusters_with_the_admin_action(page_as, cluster):
    page_as("root").post("/admin/clusters/cluster/", {"action": "disable_clusters",
                                                      "_selected_action": [cluster.pk]})
    cluster.refresh_from_db()
    assert cluster.enabled is False
