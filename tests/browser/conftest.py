"""Browser tests: Playwright for Python driving Debian's Chromium against a live server.

One Chromium for the browser tests (per xdist worker), a fresh context and page per test, the
pages served by pytest-django's ``live_server`` (its own thread and database per worker).
A failing test leaves a screenshot and the page's HTML under ``var/test-artifacts/``.

Without /usr/bin/chromium these tests skip, unless SIESTAFLOW_REQUIRE_BROWSER=1 (CI), which
makes them fail instead.
"""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from calculations import ingest
from calculations.states import State
from tests.live import LiveAgent

CHROMIUM = Path(os.environ.get("SIESTAFLOW_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "var" / "test-artifacts"
TIMEOUT_MS = 10_000  # every wait of a page; a live-agent test passes longer ones explicitly


def skip_or_fail(problem: str) -> None:
    """Skip for ``problem``, or fail when SIESTAFLOW_REQUIRE_BROWSER=1 (CI has a browser)."""
    if os.environ.get("SIESTAFLOW_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{problem}; SIESTAFLOW_REQUIRE_BROWSER=1 demands a real Chromium")
    pytest.skip(problem)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so fixtures can tell whether the test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="package")
def browser():
    """One headless Chromium for the browser tests of this session (of this xdist worker).

    Package scope rather than session scope: Playwright's sync API keeps an asyncio loop marked
    as running in this thread, and Django refuses ORM calls under a running loop. Tests here do
    use the ORM (fixtures, assertions) from plain sync code, so the check is lifted while the
    browser lives, and only then: the rest of the suite runs with the browser closed.
    """
    if not CHROMIUM.exists():
        skip_or_fail(f"no Chromium at {CHROMIUM} (apt-get install chromium)")

    expect.set_options(timeout=TIMEOUT_MS)
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        # launch() gives Chromium a fresh temporary profile: parallel workers share nothing
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def open_page(browser, live_server, request):
    """``open_page(**context_options)``: a page in a fresh context (own cookies) on the live
    server, e.g. ``java_script_enabled=False``. A failing test leaves each page's screenshot
    and HTML in ``var/test-artifacts/``."""
    contexts = []

    def make(**options):
        context = browser.new_context(base_url=live_server.url, accept_downloads=True, **options)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield make
    for number, context in enumerate(contexts):
        if failed(request):
            for tab in context.pages:
                save_artifacts(tab, request.node.nodeid + (f"-{number}" if number else ""))
        context.close()


@pytest.fixture
def page(open_page):
    """A fresh page on the live server, signed in as nobody."""
    return open_page()


def failed(request) -> bool:
    """Whether the test (its call phase) failed."""
    report = getattr(request.node, "report_call", None)
    return report is not None and report.failed


def artifact_stem(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid)[-150:]


def save_artifacts(tab, nodeid: str) -> None:
    """``var/test-artifacts/<test>.png`` and ``.html``: what the page showed when the test failed."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    stem = artifact_stem(nodeid)
    try:
        tab.screenshot(path=str(ARTIFACTS / f"{stem}.png"), full_page=True)
        (ARTIFACTS / f"{stem}.html").write_text(tab.content(), encoding="utf-8")
    except Exception as exc:  # a crashed page must not hide the test's own failure
        (ARTIFACTS / f"{stem}.txt").write_text(f"could not save the page: {exc!r}\n", encoding="utf-8")


def sign_in(tab, username: str, password: str) -> None:
    """Sign in through the real login form, as a person would."""
    tab.goto("/accounts/login/")
    tab.get_by_label("Username").fill(username)
    tab.get_by_label("Password").fill(password)
    tab.get_by_role("button", name="Sign in").click()
    tab.wait_for_url(lambda url: "/accounts/login/" not in url)


@pytest.fixture
def page_of(page, personas, password):
    """``page_of("mod")``: the page, signed in as that persona through the login form."""

    def make(name: str):
        sign_in(page, personas[name].username, password)
        return page

    return make


@pytest.fixture
def run_agent(transactional_db, live_server, tmp_path, settings, request):
    """``run_agent(config_path, **env)``: a started ``siestaflow-agent run`` (tests/live.py)
    working in ``tmp_path``; stopped before the test database is flushed, its log kept in
    ``var/test-artifacts/`` if the test failed. The live server stores what the agent sends
    (artifacts) under ``tmp_path`` too."""
    settings.MEDIA_ROOT = tmp_path / "media"
    agents = []

    def start(config: Path, **env: str):
        agent = LiveAgent(config, tmp_path / f"agent{len(agents)}" / "work", **env)
        agents.append(agent)
        return agent.start()

    yield start
    for number, agent in enumerate(agents):
        agent.stop(signal.SIGTERM, timeout=5)  # a long poll in flight may hold it up; then SIGKILL
        if failed(request):
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            (ARTIFACTS / f"{artifact_stem(request.node.nodeid)}-agent{number}.log").write_text(agent.output())


def succeed(calc, *, total: float, analyses=()):
    """Run ``calc`` (queued) to success as its agent would, through the agent API's services:
    claim, running, its results (an energy summary of ``total`` eV, plus ``analyses``), done."""
    assert [c.pk for c in ingest.claim(cluster=calc.cluster, max_count=1)] == [calc.pk]
    calc.refresh_from_db()
    ingest.record_event(calc=calc, seq=1, state=State.RUNNING, step=0)
    summary = {"name": "energy_summary", "status": "ok",
               "data": {"total": total, "free": None, "fermi": None, "n_atoms": 3, "unit": "eV"}}
    ingest.store_results(calc=calc, step=0, key="extracted", analyses=[summary, *analyses], artifacts=[],
                         data={"energies": {"total": total}, "system": {"n_atoms": 3}})
    for seq, state in enumerate([State.VALIDATING, State.EXTRACTING, State.SUCCEEDED], start=2):
        ingest.record_event(calc=calc, seq=seq, state=state, step=0)
    calc.refresh_from_db()
    return calc
