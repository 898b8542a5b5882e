"""The dashboard: clusters online or offline, calculation counts, the user's own calculations."""

import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from calculations import ingest, services
from calculations.models import Calculation
from calculations.states import State
from tests.factories import ClusterFactory, HeartbeatFactory, MoleculeFactory

pytestmark = pytest.mark.browser


@pytest.fixture
def world(alice, bob, transactional_db):
    """hpc1 heard from just now, hpc2 never; alice's queued calculation, bob's failed one."""
    hpc1 = ClusterFactory(name="hpc1", engines=["pyscf"], heartbeat_interval=10, last_heartbeat_at=timezone.now())
    HeartbeatFactory(cluster=hpc1, cpu_percent=55.0)
    ClusterFactory(name="hpc2")
    water = MoleculeFactory(name="water")
    submit = lambda owner, name, basis: services.submit_calculation(  # noqa: E731 - a local shorthand
        owner=owner, name=name, cluster=hpc1, engine="pyscf", molecule=water, config={"options": {"basis": basis}})
    failed = submit(bob, "bob's water", "6-31g")
    ingest.claim(cluster=hpc1, max_count=1)
    ingest.record_event(calc=failed, seq=1, state=State.RUNNING, step=0)
    ingest.record_event(calc=failed, seq=2, state=State.FAILED, step=0, reason="SCF not converged")
    submit(alice, "alice's water", "sto-3g")


def section(page, heading: str):
    return page.locator("section", has=page.get_by_role("heading", name=heading, exact=True))


def test_it_shows_clusters_counts_and_my_calculations(page_of, world):
    page = page_of("alice")
    counts = page.get_by_role("region", name="Calculations")
    expect(counts).to_contain_text("0 running")
    expect(counts).to_contain_text("1 queued")
    expect(counts).to_contain_text("1 failed")
    clusters = section(page, "Clusters")
    expect(clusters.get_by_role("row", name="hpc1")).to_contain_text("online")
    expect(clusters.get_by_role("row", name="hpc2")).to_contain_text("never heard from")
    mine = section(page, "My calculations")
    expect(mine.get_by_role("row")).to_have_count(2)  # the header and alice's one calculation
    expect(mine).to_contain_text("alice's water")
    expect(mine).not_to_contain_text("bob's water")

    counts.get_by_role("link", name="1 failed").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Calculations")
    expect(page.get_by_role("link", name="bob's water")).to_be_visible()
    expect(page.get_by_role("link", name="alice's water")).to_have_count(0)


def test_it_keeps_itself_current_without_a_reload(page_of, alice):
    cluster = ClusterFactory(name="hpc1")
    tab = page_of("alice")
    tab.clock.install()
    tab.goto("/")
    counts = tab.get_by_role("region", name="Calculations")
    expect(counts).to_contain_text("0 failed")
    tab.evaluate("window.stillTheSamePage = true")
    Calculation.objects.create(name="calc failed", owner=alice, cluster=cluster, engine="command",
                               inputs_hash="failed", state="failed")
    tab.clock.fast_forward(31_000)
    expect(counts).to_contain_text("1 failed")
    expect(tab.get_by_role("link", name="hpc1", exact=True)).to_be_visible()
    expect(tab.get_by_role("row", name=re.compile("calc .* Failed hpc1"))).to_be_visible()  # under My calculations
    assert tab.evaluate("window.stillTheSamePage") is True
