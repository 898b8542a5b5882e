"""Adding a cluster in the browser: the key shown once with a ready-to-paste agent
configuration, then the agent's first heartbeat shown as it arrives."""

import re
from datetime import timedelta

import pytest
import requests
from django.utils import timezone
from playwright.sync_api import expect

from clusters.models import Cluster
from tests.clusters.conftest import PAYLOAD
from tests.factories import ClusterFactory, HeartbeatFactory

pytestmark = pytest.mark.browser


def test_it_refuses_adding_clusters_to_a_plain_user(page_of):
    page = page_of("alice")
    page.get_by_role("navigation", name="Sections").get_by_role("link", name="Clusters").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Clusters")
    expect(page.get_by_role("link", name="Add a cluster")).to_have_count(0)
    assert page.goto("/clusters/new/").status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("Not allowed")


@pytest.mark.slow
def test_it_shows_the_agents_first_heartbeat_after_adding_a_cluster(page_of, live_server, settings, tmp_path,
                                                                    run_agent):
    settings.SITE_URL = live_server.url  # the address the pasted configuration points the agent to
    page = page_of("root")
    page.goto("/clusters/")
    page.get_by_role("link", name="Add a cluster").click()
    page.get_by_label("Name").fill("lab2")
    page.get_by_label("Heartbeat interval (s)").fill("1")
    page.get_by_role("button", name="Add the cluster").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("lab2: start its agent")
    cluster = Cluster.objects.get(name="lab2")
    key = page.get_by_label("Key").input_value()
    assert key.startswith("sfk_") and cluster.api_keys.get().key_hash not in key  # the key, not its hash
    status = page.get_by_role("status").filter(has_text="heartbeat")
    expect(status).to_contain_text("No heartbeat yet")
    page.evaluate("window.sameDocument = true")

    config = page.locator("#agent-config").inner_text()
    assert f'api_key = "{key}"' in config
    # what the operator edits: the work folder, and only engines this machine has
    config = re.sub(r"(?m)^work_dir = .*$", f'work_dir = "{tmp_path / "work"}"', config)
    config = re.sub(r"(?m)^(siesta|tbtrans) = .*\n", "", config)
    path = tmp_path / "agent.toml"
    path.write_text(config)
    path.chmod(0o600)
    run_agent(path)

    expect(status).to_contain_text("The agent is online", timeout=30_000)
    expect(status).to_contain_text("first heartbeat arrived")
    assert page.evaluate("window.sameDocument") is True
    page.reload()
    expect(page.get_by_label("Key")).to_have_count(0)  # shown once only
    expect(page.get_by_text("This key was shown once")).to_be_visible()


def test_it_shows_the_first_heartbeat_in_the_browser_without_a_reload(page_of, live_server):
    tab = page_of("root")
    tab.goto("/clusters/")
    tab.get_by_role("link", name="Add a cluster").click()
    tab.get_by_label("Name", exact=True).fill("hpc9")
    tab.get_by_role("button", name="Add the cluster").click()
    expect(tab).to_have_url(re.compile(r"/clusters/\d+/key/$"))
    key = tab.get_by_label("Key", exact=True).input_value()
    assert key.startswith("sfk_") and key not in tab.url
    status = tab.locator("#agent-status")
    expect(status).to_contain_text("No heartbeat yet")
    tab.evaluate("window.stillTheSamePage = true")  # gone if the page reloads
    answer = requests.post(live_server.url + "/api/agent/v1/heartbeat/", json=PAYLOAD,
                           headers={"Authorization": f"Api-Key {key}"}, timeout=10)
    assert answer.status_code == 200
    expect(status).to_contain_text("The agent is online (version 0.1.0)")
    assert tab.evaluate("window.stillTheSamePage") is True
    tab.reload()
    expect(tab.get_by_label("Key", exact=True)).to_have_count(0)
    expect(tab.get_by_text("shown once and is not shown again")).to_be_visible()


def test_it_draws_the_resource_graphs_and_switches_windows(page_of):
    cluster = ClusterFactory(name="hpc1")
    for minutes in (30, 20, 10, 1):
        HeartbeatFactory(cluster=cluster, time=timezone.now() - timedelta(minutes=minutes), cpu_percent=minutes)
    tab = page_of("alice")
    tab.goto(f"/clusters/{cluster.pk}/")
    charts = tab.locator("[data-charts]")
    expect(charts.locator("svg[role=img]")).to_have_count(3)
    expect(charts.locator("path.chart-line")).to_have_count(3)
    expect(charts.locator("figcaption").first).to_have_text("CPU — latest 1 %")
    expect(tab.locator("[data-chart-status]")).to_contain_text("(raw)")
    tab.get_by_label("last week").check()
    expect(tab.locator("[data-chart-status]")).to_contain_text("(minute)")
    expect(charts.locator("path.chart-line")).to_have_count(3)
