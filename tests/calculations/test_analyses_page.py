"""The Analyses pages: the list of calculations with analysis results, the comparison and
its plots, on results stored the way agents store them (real SIESTA outputs, extracted and
analysed by the agent's own code)."""

from __future__ import annotations

import functools
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from siestaflow_agent.analyses.run import run_chain, run_step
from siestaflow_agent.engines.siesta.extract import extract

from calculations import ingest
from calculations.models import AnalysisResult

SAMPLES = Path(__file__).resolve().parents[1] / "agent" / "data" / "siesta-samples"
PERSONAS = ["alice", "mod", "root"]


@pytest.fixture(autouse=True)
def _own_cache(settings):
    """A private in-memory cache: compared data and plots are cached per data version."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                   "LOCATION": "analyses-page-tests"}}
    from django.core.cache import cache

    cache.clear()


@functools.cache
def extracted(case: str) -> dict:
    return extract(SAMPLES / case)


def store(calc, cases: list[str], analyses: list[str], outdir: Path, values=None) -> None:
    """Store results as the agent does: each step's extracted dict, then its analyses, then
    the chain-level ones."""
    steps = [extracted(case) for case in cases]
    for k, data in enumerate(steps):
        ingest.store_results(calc=calc, step=k, key="extracted", data=data, analyses=[], artifacts=[])
        outcome = run_step(analyses, data, outdir / f"step-{k}")
        ingest.store_results(calc=calc, step=k, key="analyses", data={}, analyses=outcome, artifacts=[])
    chain = run_chain(analyses, steps, outdir / "chain", values)
    if chain:
        ingest.store_results(calc=calc, step=None, key="analyses", data={}, analyses=chain, artifacts=[])


@pytest.fixture
def srtio3(submit, tmp_path):
    calc = submit(name="SrTiO3 spin", analyses=["energy_summary", "band_structure", "dos"])
    store(calc, ["srtio3_spin_polarized_v5.1"], ["energy_summary", "band_structure", "dos"], tmp_path / "a")
    return calc


@pytest.fixture
def silicon(submit, tmp_path):
    calc = submit(name="Si bulk pdos", analyses=["energy_summary", "dos"])
    store(calc, ["si_bulk_pdos_k_v5.1"], ["energy_summary", "dos"], tmp_path / "b")
    return calc


@pytest.fixture
def gold_sweep(submit, tmp_path):
    chain = {"parameter": "TS.Voltage", "unit": "V", "values": [0.0, 0.25]}
    analyses = ["energy_summary", "transmission", "iv_curve"]
    calc = submit(name="Au(100) bias sweep", analyses=analyses, chain=chain)
    store(calc, ["au100_transiesta_bias_0_0.25V_v4.1/V0.00", "au100_transiesta_bias_0_0.25V_v4.1/V0.25"],
          analyses, tmp_path / "c", values=[0.0, 0.25])
    return calc


def compare_url(*calcs) -> str:
    return "/analyses/compare/?" + "&".join(f"ids={c.pk}" for c in calcs)


def plot_urls(html: str) -> list[str]:
    return [url.replace("&amp;", "&") for url in re.findall(r'<img src="([^"]+\.svg\?[^"]+)"', html)]


# --- permissions -----------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/analyses/", "/analyses/compare/?ids=1", "/analyses/compare/dos.svg?ids=1"])
def test_it_sends_anonymous_visitors_to_sign_in(page_as, url):
    response = page_as("anon").get(url)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("persona", PERSONAS)
def test_it_lets_every_signed_in_role_see_and_compare_analyses(page_as, persona, srtio3):
    client = page_as(persona)
    assert client.get("/analyses/").status_code == 200
    html = client.get(compare_url(srtio3)).content.decode()
    assert "SrTiO3 spin" in html
    response = client.get(plot_urls(html)[0])
    assert response.status_code == 200 and response["Content-Type"] == "image/svg+xml"


def test_it_refuses_blocked_users(page_as, alice, srtio3):
    client = page_as("alice")
    alice.is_active = False
    alice.save()
    assert client.get("/analyses/").status_code == 302
    assert client.get(compare_url(srtio3)).status_code == 302


# --- the list --------------------------------------------------------------------------------


def test_it_lists_only_calculations_with_analysis_results(page_as, submit, srtio3):
    submit(name="never analysed")
    failed = submit(name="analysis failed")
    AnalysisResult.objects.create(calculation=failed, attempt=1, step=0, name="dos", status="failed")
    html = page_as("alice").get("/analyses/").content.decode()
    assert "SrTiO3 spin" in html and "never analysed" not in html and "analysis failed" not in html
    assert "<td>Energy summary, Band structure, Density of states</td>" in html  # catalogue order
    assert f'name="ids" value="{srtio3.pk}"' in html


def test_it_filters_with_the_shared_calculation_filter(page_as, srtio3, silicon):
    html = page_as("alice").get("/analyses/?search=SrTiO3").content.decode()
    assert "SrTiO3 spin" in html and "Si bulk pdos" not in html


def test_it_shows_a_bad_filter_next_to_its_field(page_as, srtio3):
    response = page_as("alice").get("/analyses/?created_after=yesterday")
    assert response.status_code == 400
    html = response.content.decode()
    assert re.search(r'<div class="field invalid">\s*<label for="id_created_after"', html)
    assert "SrTiO3 spin" not in html


@pytest.mark.parametrize("count", [5, 50])
def test_it_lists_in_a_constant_number_of_queries(page_as, submit, django_assert_max_num_queries, count):
    for n in range(count):
        calc = submit(name=f"calc {n}")
        AnalysisResult.objects.create(calculation=calc, attempt=1, step=0, name="energy_summary", status="ok")
    client = page_as("alice")
    with django_assert_max_num_queries(9):
        response = client.get("/analyses/")
    assert response.content.decode().count('name="ids"') == min(count, 25)


# --- the comparison --------------------------------------------------------------------------


def test_it_compares_key_results_side_by_side(page_as, srtio3, silicon):
    html = page_as("alice").get(compare_url(srtio3, silicon)).content.decode()
    table = re.search(r'<table class="compare">(.*?)</table>', html, re.S).group(1)
    assert "SrTiO3 spin" in table and "Si bulk pdos" in table
    total = re.search(r"Total energy \(eV\)</th>(.*?)</tr>", table, re.S).group(1)
    assert re.findall(r"<td>([^<]*)</td>", total) == ["-3891.899209", "-229.153103"]  # MANIFEST values
    fermi = re.search(r"Fermi energy \(eV\)</th>(.*?)</tr>", table, re.S).group(1)
    assert re.findall(r"<td>([^<]*)</td>", fermi)[0] == "-3.66344"
    converged = re.search(r"SCF converged</th>(.*?)</tr>", table, re.S).group(1)
    assert re.findall(r"<td>([^<]*)</td>", converged) == ["yes", "yes"]


def test_it_overlays_the_series_they_share_as_svg(page_as, srtio3, silicon):
    client = page_as("alice")
    html = client.get(compare_url(srtio3, silicon)).content.decode()
    urls = plot_urls(html)
    assert sorted(u.split("?")[0] for u in urls) == ["/analyses/compare/bands.svg", "/analyses/compare/dos.svg"]
    assert f"Not available for #{silicon.pk} Si bulk pdos" in html  # no .bands file for Si
    svg = client.get(next(u for u in urls if "dos.svg" in u)).content
    root = ET.fromstring(svg)  # noqa: S314 - the server's own SVG
    assert root.tag.endswith("svg")
    text = svg.decode()
    assert "E − E_F (eV)" in text and f"#{srtio3.pk} SrTiO3 spin" in text and f"#{silicon.pk} Si bulk pdos" in text


def test_it_plots_a_chain_its_transmission_and_iv_curve(page_as, gold_sweep):
    client = page_as("alice")
    html = client.get(compare_url(gold_sweep)).content.decode()
    kinds = sorted(u.split("?")[0].rsplit("/", 1)[1] for u in plot_urls(html))
    assert kinds == ["chain-energy.svg", "iv.svg", "transmission.svg"]
    iv = client.get(f"/analyses/compare/iv.svg?ids={gold_sweep.pk}").content.decode()
    assert "bias voltage (V)" in iv and "current (µA)" in iv  # 7.7 µA at 0.25 V: readable units
    chain = client.get(f"/analyses/compare/chain-energy.svg?ids={gold_sweep.pk}").content.decode()
    assert "TS.Voltage (V)" in chain


@pytest.mark.parametrize("steps", [5, 50])
def test_it_compares_chains_in_a_constant_number_of_queries(page_as, submit, django_assert_max_num_queries, steps):
    calcs = [submit(name=f"sweep {n}", chain={"parameter": "TS.Voltage", "unit": "V",
                                              "values": [0.1 * k for k in range(steps)]}) for n in range(2)]
    for n, calc in enumerate(calcs):
        for k in range(steps):
            data = {"energies": {"total": -100.0 - n - 0.01 * k * k, "fermi": -4.0}, "scf": {"all_converged": True}}
            ingest.store_results(calc=calc, step=k, key="extracted", data=data, analyses=[], artifacts=[])
    client = page_as("alice")
    with django_assert_max_num_queries(7):  # session, user, calculations, version, 3 for the data
        html = client.get(compare_url(*calcs)).content.decode()
    assert f"{steps} of {steps}" in html and "chain-energy.svg" in html


def test_it_sees_new_results_at_once_despite_the_cache(page_as, srtio3):
    client = page_as("alice")
    assert "-3891.899209" in client.get(compare_url(srtio3)).content.decode()
    data = dict(extracted("srtio3_spin_polarized_v5.1"), energies={"total": -3891.5, "fermi": -3.6})
    ingest.store_results(calc=srtio3, step=0, key="extracted", data=data, analyses=[], artifacts=[])
    html = client.get(compare_url(srtio3)).content.decode()
    assert "-3891.5" in html and "-3891.899209" not in html


def test_it_shows_a_new_state_at_once_despite_the_cache(page_as, alice, srtio3):
    from calculations import services

    client = page_as("alice")
    assert "<td>Queued</td>" in client.get(compare_url(srtio3)).content.decode()
    services.cancel(actor=alice, calc=srtio3)
    assert "<td>Cancelled</td>" in client.get(compare_url(srtio3)).content.decode()


def test_it_answers_a_cached_plot_without_reading_the_results_again(page_as, srtio3,
                                                                     django_assert_max_num_queries):
    client = page_as("alice")
    url = f"/analyses/compare/dos.svg?ids={srtio3.pk}"
    first = client.get(url).content
    with django_assert_max_num_queries(4):  # session, user, the calculations, the data version
        assert client.get(url).content == first


# --- bad requests ----------------------------------------------------------------------------


@pytest.mark.parametrize(("query", "message"), [
    ("", "Pick at least one calculation to compare."),
    ("?ids=abc", "“abc” is not a calculation id"),
    ("?ids=1&ids=-2", "“-2” is not a calculation id"),
    ("?ids=99999999999999999999", "is not a calculation id"),
    ("?ids=" + ",".join(str(n) for n in range(1, 11)), "Compare at most 8 calculations at once (10 were given)."),
])
def test_it_explains_malformed_ids(page_as, query, message):
    response = page_as("alice").get("/analyses/compare/" + query)
    assert response.status_code == 400
    assert message in response.content.decode()


def test_it_explains_unknown_ids(page_as, db):
    response = page_as("alice").get("/analyses/compare/?ids=424242")
    assert response.status_code == 404
    assert "No calculation #424242: it does not exist or you may not see it." in response.content.decode()


def test_it_compares_the_known_ids_and_names_the_unknown_ones(page_as, srtio3):
    response = page_as("alice").get(f"/analyses/compare/?ids={srtio3.pk}&ids=424242")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Not compared: #424242" in html and "SrTiO3 spin" in html


def test_it_says_when_there_is_nothing_to_plot(page_as, submit):
    calc = submit(name="water")
    response = page_as("alice").get(compare_url(calc))
    assert response.status_code == 200
    assert "These calculations have no series to plot" in response.content.decode()


@pytest.mark.parametrize(("url", "status"), [
    ("/analyses/compare/nonsense.svg?ids={pk}", 404),
    ("/analyses/compare/iv.svg?ids={pk}", 404),  # SrTiO3 has no I–V curve
    ("/analyses/compare/dos.svg?ids=x", 400),
    ("/analyses/compare/dos.svg?ids=424242", 404),
])
def test_it_refuses_plots_that_do_not_exist(page_as, srtio3, url, status):
    assert page_as("alice").get(url.format(pk=srtio3.pk)).status_code == status


def test_it_serves_plots_that_cannot_run_scripts(page_as, srtio3):
    response = page_as("alice").get(f"/analyses/compare/dos.svg?ids={srtio3.pk}")
    assert response["Content-Security-Policy"].startswith("default-src 'none'")
    assert b"<script" not in response.content


def test_it_survives_malformed_data_from_an_agent(page_as, submit, srtio3):
    broken = submit(name="broken")
    data = {"energies": {"total": -10.0, "fermi": "high"}, "system": {"n_atoms": "three"},
            "dos": {"energy": [0.0, 1.0, 2.0], "dos": [["a", "b", "c"]]}, "bands": {"eigenvalues": [[[1.0]]]}}
    ingest.store_results(calc=broken, step=0, key="extracted", data=data, analyses=[], artifacts=[])
    response = page_as("alice").get(compare_url(srtio3, broken))
    assert response.status_code == 200
    html = response.content.decode()
    assert f"Density of states: #{srtio3.pk} SrTiO3 spin. Not available for #{broken.pk} broken." in html
    assert f"Band structures: #{srtio3.pk} SrTiO3 spin. Not available for #{broken.pk} broken." in html
    per_atom = re.search(r"Energy per atom \(eV\)</th>(.*?)</tr>", html, re.S).group(1)
    assert re.findall(r"<td>([^<]*)</td>", per_atom)[1] == "—"
    assert page_as("alice").get(f"/analyses/compare/dos.svg?ids={srtio3.pk}&ids={broken.pk}").status_code == 200


# --- in a real browser -----------------------------------------------------------------------

from tests.browser import conftest as browser_tests  # noqa: E402 - only this test needs it

# The browser tests' page fixtures (a page signed in through the login form)...
open_page, page, page_of = browser_tests.open_page, browser_tests.page, browser_tests.page_of


@pytest.fixture(scope="module")
def browser():
    """...on a Chromium of this module's own: the ORM check that Playwright's loop forces us to
    lift (see tests/browser/conftest.py) is lifted for this module only, not the whole package."""
    if not browser_tests.CHROMIUM.exists():
        browser_tests.skip_or_fail(f"no Chromium at {browser_tests.CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        chromium = playwright.chromium.launch(executable_path=str(browser_tests.CHROMIUM),
                                              args=browser_tests.CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.mark.browser
def test_it_compares_the_ticked_calculations_in_a_browser(page_of, live_server, srtio3, silicon, gold_sweep):
    from playwright.sync_api import expect

    tab = page_of("alice")
    tab.get_by_role("navigation", name="Sections").get_by_role("link", name="Analyses").click()
    tab.get_by_label(f"Compare #{srtio3.pk} SrTiO3 spin").check()
    tab.get_by_label(f"Compare #{silicon.pk} Si bulk pdos").check()
    tab.get_by_role("button", name="Compare selected").click()

    expect(tab).to_have_url(re.compile(rf"/analyses/compare/\?ids={silicon.pk}&ids={srtio3.pk}$"))  # list order
    table = tab.get_by_role("table")
    expect(table.get_by_role("columnheader", name=f"#{srtio3.pk} SrTiO3 spin")).to_be_visible()
    expect(table.get_by_role("row", name=re.compile(r"^Total energy"))).to_contain_text("-229.153103")
    plots = tab.get_by_role("img")
    expect(plots).to_have_count(2)
    for n in range(2):
        plots.nth(n).scroll_into_view_if_needed()  # they load lazily
        expect(plots.nth(n)).to_have_js_property("complete", True)
        assert plots.nth(n).evaluate("img => img.naturalWidth") > 300  # the browser drew the SVG
