"""A PySCF calculation run by a real ``siestaflow-agent``, watched in the browser: the detail
page follows its state without a reload, from queued to running to succeeded, and the Logs
page shows the run's log lines as they arrive.

The agent (tests/live.py) talks to this session's live server; its PySCF runs behind the
gate of tests/e2e/held_pyscf.py, so the test can see the calculation while it runs.
"""

import re

import pytest
from playwright.sync_api import expect

from calculations import services
from calculations.models import Calculation, LogLine
from clusters import services as cluster_services
from tests.browser.conftest import sign_in
from tests.factories import MoleculeFactory
from tests.live import HELD_PYSCF, Gate, write_agent_config

pytestmark = [pytest.mark.browser, pytest.mark.slow]

RUN_MS = 90_000  # starting the agent and PySCF on a busy two-core machine


@pytest.fixture
def gate(tmp_path):
    """While it holds, PySCF runs wait before computing."""
    path = tmp_path / "gate"
    path.mkdir()
    return Gate(path)


@pytest.fixture
def lab(root, transactional_db):
    """Cluster ``lab`` (heartbeat every second) and the text of its agent's API key."""
    cluster = cluster_services.create_cluster(actor=root, name="lab", heartbeat_interval=1)
    _key, text = cluster_services.create_key(actor=root, cluster=cluster, name="browser test agent")
    return cluster, text


@pytest.fixture
def start_agent(lab, live_server, gate, tmp_path, run_agent):
    """``start_agent()``: run ``siestaflow-agent`` for ``lab``, its PySCF behind the gate."""
    config = write_agent_config(
        tmp_path / "agent.toml", api_url=live_server.url, api_key=lab[1], work_dir=str(tmp_path / "work"),
        heartbeat_interval=0.5, poll_interval=0.2, claim_wait=2, max_concurrent=1, executor="local",
        request_timeout=10, engines={"pyscf": f"{{python}} {HELD_PYSCF}"})
    yield lambda: run_agent(config, SIESTAFLOW_TEST_GATE=str(gate.path))
    gate.release()  # a held run must not keep the agent from stopping


@pytest.fixture
def water_rhf(alice, lab):
    water = MoleculeFactory(name="water", species=["O", "H", "H"],
                            positions=[[0.0, -0.065564, 0.0], [0.75695, 0.520318, 0.0], [-0.75695, 0.520318, 0.0]])
    return services.submit_calculation(
        owner=alice, name="water rhf", cluster=lab[0], engine="pyscf", molecule=water,
        config={"options": {"method": "RHF", "basis": "sto-3g"}}, analyses=["energy_summary", "scf_convergence"])


def test_it_shows_the_run_progress_and_its_log_lines_without_reload(
        page_of, open_page, password, water_rhf, start_agent, gate):
    feed = open_page()  # a second window: the Logs page, filtered to this calculation
    sign_in(feed, "alice", password)
    feed.goto(f"/logs/?calculation={water_rhf.pk}")
    expect(feed.get_by_text("No log line matches yet")).to_be_visible()
    feed.evaluate("window.sameDocument = true")

    page = page_of("alice")
    page.goto(f"/calculations/{water_rhf.pk}/")
    state = page.locator("h1 .state")
    expect(state).to_have_text("Queued")
    expect(page.get_by_role("region", name="Why isn't it running?")).to_contain_text("offline")
    page.evaluate("window.sameDocument = true")  # gone if anything reloads the page

    gate.hold()
    start_agent()
    expect(state).to_have_text("Running", timeout=RUN_MS)
    progress = page.get_by_role("region", name="Progress")
    expect(progress.get_by_text("Running")).to_be_visible()
    expect(progress).to_contain_text("1 of 1")

    gate.release()  # PySCF computes now
    expect(state).to_have_text("Succeeded", timeout=RUN_MS)
    expect(page.get_by_text("The calculation has finished")).to_be_visible()
    assert page.evaluate("window.sameDocument") is True

    rows = feed.locator("#log-lines tbody tr")
    expect(rows.first).to_contain_text(f"#{water_rhf.pk} water rhf")
    expect(feed.get_by_text("No log line matches yet")).to_have_count(0)
    assert feed.evaluate("window.sameDocument") is True
    newest = LogLine.objects.filter(calculation=water_rhf).latest("id")  # later ones may still come
    expect(feed.locator(f'#log-lines tr[data-id="{newest.pk}"]')).to_contain_text(newest.message, timeout=4_000)

    page.get_by_role("link", name="reload").click()
    energy = page.locator("article.analysis", has=page.get_by_role("heading", name=re.compile("^Energy summary")))
    expect(energy.locator(".status")).to_have_text("Ok")
    expect(energy.get_by_role("row", name=re.compile(r"^total -2039\.\d+$"))).to_be_visible()  # RHF/STO-3G, eV
    expect(page.get_by_role("region", name="Plots").get_by_role("img")).not_to_have_count(0)
    expect(page.get_by_role("region", name="Timeline")).to_contain_text("Analysing → Succeeded")
    assert Calculation.objects.get(pk=water_rhf.pk).state == "succeeded"
