"""The Analyses section: pick calculations and compare their results side by side."""

import re

import pytest
from playwright.sync_api import expect

from calculations import services
from tests.browser.conftest import succeed
from tests.factories import ClusterFactory, MoleculeFactory

pytestmark = pytest.mark.browser


@pytest.fixture
def three(alice, transactional_db):
    """Three succeeded water calculations, at three basis sets."""
    cluster, water = ClusterFactory(name="hpc1", engines=["pyscf"]), MoleculeFactory(name="water")
    return [succeed(services.submit_calculation(
        owner=alice, name=f"water {basis}", cluster=cluster, engine="pyscf", molecule=water,
        config={"options": {"basis": basis}}, analyses=["energy_summary"]), total=total)
        for basis, total in [("sto-3g", -2039.84), ("6-31g", -2064.12), ("cc-pvdz", -2065.50)]]


def test_it_compares_the_picked_calculations_side_by_side(page_of, three):
    sto, _631g, ccpvdz = three
    page = page_of("alice")
    page.get_by_role("navigation", name="Sections").get_by_role("link", name="Analyses").click()
    expect(page.get_by_text("3 calculations with analysis results")).to_be_visible()
    page.get_by_label(f"Compare #{sto.pk} water sto-3g").check()
    page.get_by_label(f"Compare #{ccpvdz.pk} water cc-pvdz").check()
    page.get_by_role("button", name="Compare selected").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Compare analyses")
    table = page.get_by_role("table", name=re.compile("^Key results"))
    headers = table.get_by_role("columnheader")
    expect(headers).to_have_count(3)  # the row labels and one column per picked calculation
    expect(headers.filter(has_text=f"#{sto.pk} water sto-3g")).to_have_count(1)
    expect(headers.filter(has_text=f"#{ccpvdz.pk} water cc-pvdz")).to_have_count(1)
    expect(table).to_contain_text("-2039.84")
    expect(table).to_contain_text("-2065.5")
    expect(table).not_to_contain_text("-2064.12")  # the one left unticked
