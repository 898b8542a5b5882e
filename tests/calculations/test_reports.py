"""calculations/reports.py: the rows a report shows, its PDF and its ZIP, called directly.

The helpers at the top (``run``, ``store``, ``png_bytes``) drive calculations through the
agent-side services, as an agent would; test_views.py uses them too.
"""

import base64
import io
import json
import re
import zipfile

import pytest

from calculations import ingest, reports, services
from calculations.models import CHAIN_LEVEL
from calculations.states import State


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def png_bytes(colour: str = "red") -> bytes:
    """A small real PNG (matplotlib), as an agent's plot would be."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(2, 1.5))
    figure.subplots().plot([0, 1, 2], [2, 0, 1], color=colour)
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=40)
    return out.getvalue()


SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>'


def run(calc, *states, progress=None):
    """Claim ``calc`` (if queued) and report ``states`` as its agent."""
    if calc.state == State.QUEUED:
        assert [c.pk for c in ingest.claim(cluster=calc.cluster, max_count=10)] == [calc.pk]
    calc.refresh_from_db()
    for state in states:
        ingest.record_event(calc=calc, seq=calc.agent_seq + 1, state=state, step=calc.current_step,
                            progress=progress if state == State.RUNNING else None)
        calc.refresh_from_db()
    return calc


def artifact(name: str, content: bytes, content_type: str = "image/png") -> dict:
    return {"name": name, "content_type": content_type, "content_b64": base64.b64encode(content).decode()}


def store(calc, step=0, total=-465.1, analyses=None, artifacts=()):
    """A step's extracted data with an energy summary (and more analyses if given)."""
    summary = {"name": "energy_summary", "status": "ok",
               "data": {"total": total, "free": total - 0.01, "fermi": -4.2, "n_atoms": 3,
                        "total_per_atom": total / 3, "unit": "eV"}}
    return ingest.store_results(
        calc=calc, step=step, key="extracted",
        data={"energies": {"total": total, "free": total - 0.01, "fermi": -4.2}, "system": {"n_atoms": 3}},
        analyses=[summary, *(analyses or [])], artifacts=list(artifacts))


SCF = {"name": "scf_convergence", "status": "ok", "data": {"n_cycles": 1, "dDmax": [0.1, 0.01, 0.001]}}
RELAX = {"name": "relaxation", "status": "ok",
         "data": {"energy": [-465.0, -465.2, -465.3], "max_force": [0.3, 0.1, 0.02], "force_tolerance": 0.04}}


@pytest.fixture
def finished(submit):
    """A succeeded SIESTA calculation with two analyses, a PNG and an SVG plot and a CSV table."""
    calc = run(submit(analyses=["energy_summary", "scf_convergence", "relaxation"]), State.RUNNING)
    store(calc, analyses=[SCF, RELAX], artifacts=[
        artifact("scf_convergence.png", png_bytes()), artifact("scf_convergence.svg", SVG, "image/svg+xml"),
        artifact("relaxation.csv", b"step,energy\n1,-465.0\n", "text/csv")])
    return run(calc, State.VALIDATING, State.EXTRACTING, State.SUCCEEDED)


def pdf_pages(content: bytes) -> int:
    """Pages of a PDF, from its page objects (``/Type /Page``, not ``/Pages``)."""
    return len(re.findall(rb"/Type\s*/Page\b(?!s)", content))


def test_it_takes_each_step_from_its_newest_attempt(submit):
    calc = submit(chain={"parameter": "TS.Voltage", "unit": "V", "values": [0.0, 0.5]})
    calc = run(calc, State.RUNNING)
    store(calc, step=0, total=-1.0)
    calc = run(calc, State.FAILED)
    services.resume(actor=calc.owner, calc=calc)
    calc.refresh_from_db()
    store(run(calc, State.RUNNING), step=0, total=-2.0)
    rows = reports.energy_rows(reports.collect(calc))
    assert [(r["step"], r["total"]) for r in rows] == [(0, -2.0)]
    assert rows[0]["label"] == "step 1 of 2 (TS.Voltage = 0.0 V)"


def test_it_falls_back_to_extracted_energies_without_the_summary_analysis(submit):
    calc = run(submit(analyses=[]), State.RUNNING)
    ingest.store_results(calc=calc, step=0, key="extracted", data={"energies": {"total": -10.5}},
                         analyses=[], artifacts=[])
    rows = reports.energy_rows(reports.collect(calc))
    assert rows == [{"step": 0, "label": "result", "total": -10.5, "free": None, "fermi": None,
                     "total_per_atom": None}]


def test_it_labels_chain_level_rows(submit):
    calc = submit(chain={"parameter": "TS.Voltage", "values": [0.1]})
    assert reports.step_label(calc, CHAIN_LEVEL) == "whole chain"
    assert reports.step_label(calc, 0) == "step 1 of 1 (TS.Voltage = 0.1)"


def test_it_shows_one_plot_per_stem_preferring_svg(finished):
    plots = reports.plots(reports.collect(finished))
    assert [p.name for p in plots] == ["scf_convergence.svg"]


def test_it_lists_scalars_and_series_of_each_analysis(finished):
    tables = {t["analysis"].name: t for t in reports.analysis_tables(reports.collect(finished))}
    assert tables["relaxation"]["title"] == "Geometry relaxation"
    assert ("force_tolerance", 0.04) in tables["relaxation"]["scalars"]
    assert tables["relaxation"]["series"] == {"energy": 3, "max_force": 3}


def test_it_scales_a_polyline_into_its_box():
    assert reports.polyline([0, 5, 10], width=100, height=10) == "0.0,10.0 50.0,5.0 100.0,0.0"
    assert reports.polyline([1.0, None, 1.0], width=10, height=10) == "0.0,10.0 10.0,10.0"
    assert reports.polyline([None, None]) == "" and reports.polyline([3]) == ""
    assert reports.polyline([25, 75], width=10, height=100, bounds=(0, 100)) == "0.0,75.0 10.0,25.0"


def test_it_writes_a_pdf_with_a_title_page_and_one_page_per_analysis(finished):
    out = io.BytesIO()
    pages = reports.build_pdf(reports.collect(finished), out)
    content = out.getvalue()
    # title page + scf_convergence (its PNG) + relaxation (its series); energy_summary is on the title
    assert pages == 3
    assert content.startswith(b"%PDF-") and content.rstrip().endswith(b"%%EOF")
    assert pdf_pages(content) == 3


def test_it_writes_a_one_page_pdf_when_nothing_was_analysed(submit):
    out = io.BytesIO()
    assert reports.build_pdf(reports.collect(submit()), out) == 1
    assert pdf_pages(out.getvalue()) == 1


def test_it_zips_extracted_data_analyses_and_artifacts(finished):
    out = io.BytesIO()
    names = reports.build_zip(reports.collect(finished), out)
    base = f"calculation-{finished.pk}"
    with zipfile.ZipFile(io.BytesIO(out.getvalue())) as archive:
        assert sorted(archive.namelist()) == sorted(names) == sorted([
            f"{base}/extracted.json", f"{base}/extracted.csv", f"{base}/analyses.json", f"{base}/analyses.csv",
            f"{base}/artifacts/step-1/relaxation.csv", f"{base}/artifacts/step-1/scf_convergence.png",
            f"{base}/artifacts/step-1/scf_convergence.svg"])
        extracted = json.loads(archive.read(f"{base}/extracted.json"))
        assert extracted[0]["data"]["energies"]["total"] == -465.1
        header, row = archive.read(f"{base}/extracted.csv").decode().splitlines()[:2]
        assert "energies.total" in header.split(",") and "-465.1" in row.split(",")
        assert archive.read(f"{base}/artifacts/step-1/scf_convergence.png") == png_bytes()
        assert {a["name"] for a in json.loads(archive.read(f"{base}/analyses.json"))} == {
            "energy_summary", "scf_convergence", "relaxation"}
