"""The Logs page's live feed: lines an agent sends appear without a reload, filters hold."""

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from calculations import ingest, services
from tests.factories import ClusterFactory, MoleculeFactory

pytestmark = pytest.mark.browser

FEED_MS = 4_000  # the feed polls every 1.5 s (lines show within 2 s); slack for a busy machine


@pytest.fixture
def cluster(transactional_db):
    return ClusterFactory(name="hpc1", engines=["pyscf"])


@pytest.fixture
def calc(alice, cluster):
    return services.submit_calculation(owner=alice, name="water rhf", cluster=cluster, engine="pyscf",
                                       molecule=MoleculeFactory(name="water"), config={"options": {}})


def send(cluster, calc, *messages, level="INFO"):
    """Log lines as the agent's log endpoint stores them."""
    ingest.store_logs(cluster=cluster, calc=calc, lines=[
        {"message": m, "level": level, "time": timezone.now()} for m in messages])


def lines(page):
    return page.locator("#log-lines tbody tr")


def test_it_shows_new_log_lines_without_reload(page_of, cluster, calc):
    send(cluster, calc, "step 1 submitted")
    page = page_of("alice")
    page.get_by_role("navigation", name="Sections").get_by_role("link", name="Logs").click()
    expect(lines(page)).to_have_count(1)
    expect(page.get_by_role("status")).to_have_text("Live: new lines appear automatically.")
    page.evaluate("window.sameDocument = true")

    send(cluster, calc, "SCF cycle 7 E=-74.96", "step 1 finished", level="WARNING")
    expect(lines(page)).to_have_count(3, timeout=FEED_MS)
    expect(lines(page).nth(1)).to_contain_text("SCF cycle 7 E=-74.96")
    expect(lines(page).nth(2)).to_contain_text("WARNING")
    expect(lines(page).nth(2)).to_contain_text(f"#{calc.pk} water rhf")
    expect(page.get_by_role("status")).to_contain_text("Live: 2 new lines")
    assert page.evaluate("window.sameDocument") is True


def test_it_keeps_the_filter_for_the_live_lines(page_of, alice, cluster, calc):
    other = services.submit_calculation(owner=alice, name="other", cluster=cluster, engine="pyscf",
                                        molecule=calc.molecule, config={"options": {"basis": "6-31g"}})
    page = page_of("alice")
    page.goto("/logs/")
    page.get_by_label("Calculation id").fill(str(calc.pk))
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_text("No log line matches yet")).to_be_visible()

    send(cluster, other, "not this one")
    send(cluster, calc, "this one")
    expect(lines(page)).to_have_count(1, timeout=FEED_MS)
    expect(lines(page).first).to_contain_text("this one")
    page.wait_for_timeout(2_000)  # one more poll: the other calculation's line stays out
    expect(lines(page)).to_have_count(1)
    expect(page.get_by_text("not this one")).to_have_count(0)


def test_it_stops_fetching_while_paused(page_of, cluster, calc):
    page = page_of("alice")
    page.goto("/logs/")
    page.get_by_role("button", name="Pause").click()
    expect(page.get_by_role("status")).to_have_text("Paused: new lines are not fetched.")
    send(cluster, calc, "while paused")
    page.wait_for_timeout(2_500)
    expect(lines(page)).to_have_count(0)

    page.get_by_role("button", name="Resume").click()
    expect(lines(page)).to_have_count(1, timeout=FEED_MS)
    expect(lines(page).first).to_contain_text("while paused")
