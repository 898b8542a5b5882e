"""The report of a finished calculation: its page, and the PDF downloaded from it."""

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from calculations import services
from calculations.states import State
from tests.browser.conftest import succeed
from tests.factories import ClusterFactory, MoleculeFactory

pytestmark = pytest.mark.browser

SCF = {"name": "scf_convergence", "status": "ok",
       "data": {"n_cycles": 1, "dDmax": [0.1, 0.01, 0.001], "e_ks": [-2039.1, -2039.7, -2039.8]}}


@pytest.fixture
def finished(alice, transactional_db, settings, tmp_path):
    """A succeeded PySCF calculation, its results stored through the agent's own services."""
    settings.MEDIA_ROOT = tmp_path / "media"
    cluster = ClusterFactory(name="hpc1", engines=["pyscf"])
    calc = services.submit_calculation(owner=alice, name="water rhf", cluster=cluster, engine="pyscf",
                                       molecule=MoleculeFactory(name="water"), config={"options": {}},
                                       analyses=["energy_summary", "scf_convergence"])
    calc = succeed(calc, total=-2039.84, analyses=[SCF])
    assert calc.state == State.SUCCEEDED
    return calc


def test_it_downloads_the_pdf_report_from_the_report_page(page_of, finished):
    page = page_of("alice")
    page.goto(f"/calculations/{finished.pk}/")
    page.get_by_role("region", name="Actions").get_by_role("link", name="Report").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"Report: #{finished.pk} water rhf")
    expect(page.get_by_role("region", name="Energy summary")).to_contain_text("-2039.84")

    with page.expect_download() as info:
        page.get_by_role("link", name="Download PDF").click()
    download = info.value
    assert download.failure() is None
    assert download.suggested_filename == f"calculation-{finished.pk}-report.pdf"
    pdf = Path(download.path()).read_bytes()
    assert pdf.startswith(b"%PDF-")
    assert b"siestaflow report: water rhf" in pdf  # the title in the document's metadata
    assert len(re.findall(rb"/Type\s*/Page\b", pdf)) == 2  # the title page and the SCF convergence page
