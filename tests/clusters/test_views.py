"""The Clusters pages: who sees and does what, the list's query budget, adding a cluster
(the key shown once with its agent's configuration), keys, enable/disable, the status
endpoint the key page polls, and the resource graphs' script."""

import re
import tomllib
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from siestaflow_agent.config import build

from calculations.models import Calculation
from clusters.models import ApiKey, Cluster, hash_key
from tests.clusters.conftest import client_with_key
from tests.factories import ApiKeyFactory, ClusterFactory, HeartbeatFactory

R = 302  # anonymous visitors are sent to sign in
HEARTBEAT = "/api/agent/v1/heartbeat/"
NEW = {"name": "hpc9", "description": "the new one", "max_concurrent": "3", "heartbeat_interval": "5",
       "requires_approval": "unknown"}

# method, url, body, (anon, alice, mod, root)
MATRIX = [
    ("get", "/clusters/", None, (R, 200, 200, 200)),
    ("get", "/clusters/{c}/", None, (R, 200, 200, 200)),
    ("get", "/clusters/999999/", None, (R, 404, 404, 404)),
    ("get", "/clusters/{c}/status/", None, (R, 200, 200, 200)),
    ("get", "/clusters/new/", None, (R, 403, 403, 200)),
    ("post", "/clusters/new/", NEW, (R, 403, 403, 302)),
    ("get", "/clusters/{c}/edit/", None, (R, 403, 403, 200)),
    ("post", "/clusters/{c}/edit/", {**NEW, "name": "renamed"}, (R, 403, 403, 302)),
    ("post", "/clusters/{c}/disable/", None, (R, 403, 403, 302)),
    ("post", "/clusters/{c}/enable/", None, (R, 403, 403, 302)),
    ("get", "/clusters/{c}/disable/", None, (405, 405, 405, 405)),
    ("get", "/clusters/{c}/key/", None, (R, 403, 403, 200)),
    ("post", "/clusters/{c}/keys/", {"name": "login2"}, (R, 403, 403, 302)),
    ("post", "/clusters/{c}/keys/{k}/rotate/", None, (R, 403, 403, 302)),
    ("post", "/clusters/{c}/keys/{k}/revoke/", None, (R, 403, 403, 302)),
    ("post", "/clusters/{c}/keys/{k}/explode/", None, (R, 403, 403, 403)),
    ("post", "/clusters/{c}/keys/999999/revoke/", None, (R, 403, 403, 404)),
]


@pytest.mark.parametrize("persona", ["anon", "alice", "mod", "root"])
@pytest.mark.parametrize(("method", "url", "body", "expected"), MATRIX, ids=[f"{m} {u}" for m, u, *_ in MATRIX])
def test_it_lets_each_role_do_only_what_it_may(page_as, persona, method, url, body, expected):
    cluster = ClusterFactory(name="hpc1")
    key = ApiKeyFactory(cluster=cluster)
    response = getattr(page_as(persona), method)(url.format(c=cluster.pk, k=key.pk), body or {})
    want = expected[["anon", "alice", "mod", "root"].index(persona)]
    assert response.status_code == want, response.content[:300]
    if want == 403 and method == "post":  # nothing changed behind a refusal
        assert Cluster.objects.count() == 1 and ApiKey.objects.count() == 1
        assert Cluster.objects.get().enabled and not ApiKey.objects.get().is_revoked


def test_it_shows_buttons_only_to_admins(page_as):
    cluster = ClusterFactory()
    ApiKeyFactory(cluster=cluster)
    for persona, shown in [("alice", False), ("mod", False), ("root", True)]:
        html = page_as(persona).get(f"/clusters/{cluster.pk}/").content.decode()
        assert ("Disable" in html) is shown and ("API keys" in html) is shown and ("Rotate" in html) is shown
        listing = page_as(persona).get("/clusters/").content.decode()
        assert ("Add a cluster" in listing) is shown


def _with_calculations(cluster, owner, running: int):
    for n in range(running):
        Calculation.objects.create(name=f"c{n}", owner=owner, cluster=cluster, engine="command",
                                   inputs_hash=f"{cluster.pk}-{n}", state="running")


def _list_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/clusters/").status_code == 200
    return len(queries)


def test_it_lists_clusters_in_the_same_number_of_queries_at_5_and_50_rows(page_as, alice):
    client = page_as("alice")
    for _ in range(5):
        _with_calculations(ClusterFactory(), alice, 2)
    few = _list_queries(client)
    for _ in range(45):
        _with_calculations(ClusterFactory(), alice, 2)
    assert _list_queries(client) == few <= 6


def test_it_lists_online_state_heartbeat_age_enabled_and_running_over_cap(page_as, alice):
    online = ClusterFactory(name="up", max_concurrent=4, last_heartbeat_at=timezone.now())
    ClusterFactory(name="down", enabled=False, last_heartbeat_at=timezone.now() - timedelta(hours=2))
    ClusterFactory(name="new")
    _with_calculations(online, alice, 3)
    html = page_as("alice").get("/clusters/").content.decode()
    rows = {re.search(r">(\w+)</a>", row).group(1): row for row in re.findall(r"<tr>(.*?)</tr>", html, re.S)[1:]}
    assert "online" in rows["up"] and "3 / 4" in rows["up"] and "yes" in rows["up"]
    assert "offline" in rows["down"] and "2\xa0hours ago" in rows["down"] and "<td>no</td>" in rows["down"]
    assert "never heard from" in rows["new"] and "never" in rows["new"]


def test_it_filters_the_list_with_the_shared_filterset(page_as):
    ClusterFactory(name="alpha", enabled=True)
    ClusterFactory(name="beta", enabled=False)
    html = page_as("alice").get("/clusters/?enabled=false").content.decode()
    assert ">beta</a>" in html and ">alpha</a>" not in html


# --- adding a cluster ---------------------------------------------------------------------


def _add(client, **fields):
    return client.post("/clusters/new/", {**NEW, **fields})


def test_it_adds_a_cluster_and_shows_its_key_once_with_the_agent_config(page_as, root):
    client = page_as("root")
    response = _add(client)
    cluster = Cluster.objects.get(name="hpc9")
    assert response["Location"] == f"/clusters/{cluster.pk}/key/"
    assert (cluster.max_concurrent, cluster.heartbeat_interval, cluster.requires_approval) == (3, 5, None)
    shown = client.get(response["Location"])
    html = shown.content.decode()
    text = re.search(r'id="key-text"[^>]*value="([^"]+)"', html).group(1)
    key = ApiKey.objects.get(cluster=cluster)
    assert key.key_hash == hash_key(text) and key.created_by == root
    assert text not in str(ApiKey.objects.filter(pk=key.pk).values().get())  # stored only hashed
    assert "no-store" in shown["Cache-Control"] and "max-age=0" in shown["Cache-Control"]
    assert text not in response["Location"]
    again = client.get(response["Location"]).content.decode()
    assert text not in again and "shown once and is not shown again" in again
    secret = text.split("_", 2)[2]
    assert not any(secret in str(s.get_decoded()) for s in Session.objects.all())  # gone from the session


def test_it_gives_a_config_the_agent_accepts(page_as, tmp_path):
    client = page_as("root")
    html = client.get(_add(client)["Location"]).content.decode()
    import html as html_lib

    config = tomllib.loads(html_lib.unescape(re.search(r'<pre id="agent-config">(.*?)</pre>', html, re.S).group(1)))
    assert config["api_url"] == settings.SITE_URL
    assert config["api_key"].startswith("sfk_") and config["executor"] == "local"
    assert set(config["engines"]) == {"siesta", "tbtrans", "pyscf"}
    config["work_dir"] = str(tmp_path)
    agent = build(config)  # the agent's own validation
    assert agent.api_key == config["api_key"] and agent.heartbeat_interval == 5
    install = re.search(r'<pre id="install-commands">(.*?)</pre>', html, re.S).group(1)
    assert "python3 -m venv" in install and "pip install ./agent" in install and "siestaflow-agent check" in install


def test_it_flips_the_status_after_the_agents_first_heartbeat(page_as, payload):
    client = page_as("root")
    location = _add(client)["Location"]
    html = client.get(location).content.decode()
    text = re.search(r'id="key-text"[^>]*value="([^"]+)"', html).group(1)
    status_url = re.search(r'data-status-url="([^"]+)"', html).group(1)
    before = client.get(status_url)
    assert before.json()["online"] is False and before.json()["last_heartbeat_at"] is None
    assert client_with_key(text).post(HEARTBEAT, payload, format="json").status_code == 200
    after = client.get(status_url).json()
    assert after["online"] is True and after["agent_version"] == "0.1.0" and after["heartbeat_age"] < 5


def test_it_keeps_the_input_and_shows_errors_next_to_fields(page_as):
    ClusterFactory(name="taken")
    response = _add(page_as("root"), name="taken", max_concurrent="0", description="kept text")
    html = response.content.decode()
    assert response.status_code == 400
    assert Cluster.objects.count() == 1 and not ApiKey.objects.exists()
    name_field = re.search(r'<div class="field invalid">\s*<label for="id_name">.*?</div>\s*</div>',
                           html, re.S).group(0)
    assert "already exists" in name_field and 'value="taken"' in name_field
    assert "kept text" in html and re.search(r'id="id_max_concurrent"', html)
    assert "greater than or equal to 1" in html


def test_it_edits_a_cluster(page_as):
    cluster = ClusterFactory(name="old")
    response = page_as("root").post(f"/clusters/{cluster.pk}/edit/", {**NEW, "name": "new name",
                                                                        "requires_approval": "true"})
    assert response.status_code == 302
    cluster.refresh_from_db()
    assert (cluster.name, cluster.requires_approval, cluster.max_concurrent) == ("new name", True, 3)


# --- keys and switches ----------------------------------------------------------------------


def test_it_disables_and_enables_a_cluster(page_as):
    cluster = ClusterFactory()
    client = page_as("root")
    client.post(f"/clusters/{cluster.pk}/disable/")
    assert Cluster.objects.get(pk=cluster.pk).enabled is False
    client.post(f"/clusters/{cluster.pk}/enable/")
    assert Cluster.objects.get(pk=cluster.pk).enabled is True


def test_it_rotates_a_key_and_shows_the_new_one_once(page_as, payload):
    cluster = ClusterFactory()
    old = ApiKeyFactory(cluster=cluster, name="login1")
    client = page_as("root")
    response = client.post(f"/clusters/{cluster.pk}/keys/{old.pk}/rotate/")
    html = client.get(response["Location"]).content.decode()
    text = re.search(r'id="key-text"[^>]*value="([^"]+)"', html).group(1)
    assert ApiKey.objects.get(pk=old.pk).is_revoked
    new = ApiKey.objects.get(cluster=cluster, revoked_at__isnull=True)
    assert new.name == "login1" and new.key_hash == hash_key(text)
    assert client_with_key(old.plaintext).post(HEARTBEAT, payload, format="json").status_code == 401
    assert client_with_key(text).post(HEARTBEAT, payload, format="json").status_code == 200


def test_it_revokes_a_key_and_refuses_to_rotate_a_revoked_one(page_as):
    key = ApiKeyFactory()
    client = page_as("root")
    client.post(f"/clusters/{key.cluster_id}/keys/{key.pk}/revoke/")
    assert ApiKey.objects.get(pk=key.pk).is_revoked
    response = client.post(f"/clusters/{key.cluster_id}/keys/{key.pk}/rotate/", follow=True)
    assert "revoked already" in response.content.decode()
    assert ApiKey.objects.count() == 1


def test_it_creates_a_named_key(page_as):
    cluster = ClusterFactory()
    client = page_as("root")
    response = client.post(f"/clusters/{cluster.pk}/keys/", {"name": "login2"})
    assert response["Location"] == f"/clusters/{cluster.pk}/key/"
    assert ApiKey.objects.get(cluster=cluster).name == "login2"
    assert client.post(f"/clusters/{cluster.pk}/keys/", {"name": ""}).status_code == 302
    assert ApiKey.objects.count() == 1


def test_it_shows_another_clusters_key_on_no_page_but_its_own(page_as):
    first, second = ClusterFactory(), ClusterFactory()
    client = page_as("root")
    client.post(f"/clusters/{first.pk}/keys/", {"name": "k"})
    html = client.get(f"/clusters/{second.pk}/key/").content.decode()
    assert 'id="key-text"' not in html
    assert 'id="key-text"' in client.get(f"/clusters/{first.pk}/key/").content.decode()


# --- graphs -----------------------------------------------------------------------------------


def test_it_points_the_graphs_at_the_resources_endpoint_that_answers_the_windows(page_as):
    cluster = ClusterFactory()
    HeartbeatFactory(cluster=cluster, cpu_percent=42.0)
    client = page_as("alice")
    html = client.get(f"/clusters/{cluster.pk}/").content.decode()
    url = re.search(r'data-url="([^"]+)"', html).group(1)
    assert re.findall(r'name="window" value="(\w+)"', html) == ["hour", "day", "week", "month"]
    assert "siestaflow/chart.js" in html and not re.search(r'(src|href)="https?://', html)
    for window in ["hour", "day", "week", "month"]:
        series = client.get(f"{url}?window={window}").json()
        assert series["points"] and series["points"][-1]["cpu_percent"] == 42.0


def test_it_serves_the_chart_scripts_from_the_project():
    static = Path(settings.BASE_DIR) / "siestaflow" / "static" / "siestaflow"
    chart, poller = (static / "chart.js").read_text(), (static / "clusters.js").read_text()
    assert "createElementNS" in chart and "window=" in chart
    assert "setInterval(poll, 2000)" in poller
