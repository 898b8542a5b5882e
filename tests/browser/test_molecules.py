"""Importing a molecule in the browser: an uploaded XYZ file becomes a molecule with a preview."""

import re

import pytest
from playwright.sync_api import expect

from molecules.models import Molecule

pytestmark = pytest.mark.browser

WATER_XYZ_TEXT = "3\nwater from xyz\nO 0 0 0\nH 0.757 0.586 0\nH -0.757 0.586 0\n"
BROKEN_XYZ_TEXT = "3\nbroken\nO 0 0 0\nH 0.757 zero 0\nH -0.757 0.586 0\n"

WATER_XYZ = b"""3
water from a lab notebook
O   0.000000  -0.065564   0.000000
H   0.756950   0.520318   0.000000
H  -0.756950   0.520318   0.000000
"""


def test_it_imports_an_uploaded_xyz_file_and_shows_its_structure(page_of):
    page = page_of("alice")
    page.get_by_role("navigation", name="Sections").get_by_role("link", name="Molecules").click()
    page.get_by_role("link", name="Import a molecule").click()
    page.get_by_label("File").set_input_files({"name": "water.xyz", "mimeType": "chemical/x-xyz",
                                                 "buffer": WATER_XYZ})
    page.get_by_label("Tags").fill("water, test")
    page.get_by_role("button", name="Import").click()

    molecule = Molecule.objects.get()
    expect(page).to_have_url(re.compile(rf"/molecules/{molecule.pk}/$"))
    expect(page.get_by_role("status")).to_contain_text("imported: H2O")
    expect(page.get_by_role("heading", level=1)).to_contain_text("water from a lab notebook")
    preview = page.get_by_role("img", name=re.compile(r"^H2O, 3 atoms"))
    expect(preview.locator("circle")).to_have_count(3)
    expect(preview.locator("line")).to_have_count(2)  # the two O–H bonds
    assert molecule.species == ["O", "H", "H"] and molecule.tags == ["water", "test"]


def test_it_asks_for_the_format_of_pasted_text_and_keeps_it(page_of):
    page = page_of("alice")
    page.goto("/molecules/new/")
    page.get_by_label("Or paste the structure").fill(WATER_XYZ.decode())
    page.get_by_role("button", name="Import").click()

    field = page.locator(".field", has=page.get_by_label("Format"))
    expect(field.get_by_role("alert")).to_contain_text("Say which format the pasted text is in.")
    expect(page.get_by_label("Or paste the structure")).to_have_value(WATER_XYZ.decode())
    assert not Molecule.objects.exists()

    page.get_by_label("Format").select_option("xyz")
    page.get_by_role("button", name="Import").click()
    expect(page.get_by_role("status")).to_contain_text("imported: H2O")


def test_it_imports_a_pasted_structure_after_fixing_a_typo(page_of):
    tab = page_of("alice")
    tab.goto("/molecules/")
    tab.get_by_role("link", name="Import a molecule").click()
    text = tab.get_by_label("Or paste the structure")
    text.fill(BROKEN_XYZ_TEXT)
    tab.get_by_label("Format").select_option("xyz")
    tab.get_by_role("button", name="Import").click()
    expect(tab.locator(".field.invalid")).to_contain_text("Not valid xyz")
    expect(text).to_have_value(BROKEN_XYZ_TEXT)
    text.fill(WATER_XYZ_TEXT)
    tab.get_by_role("button", name="Import").click()
    expect(tab.get_by_role("heading", level=1)).to_contain_text("water from xyz")
    expect(tab.locator("svg.structure circle")).to_have_count(3)
    assert Molecule.objects.get().formula == "H2O"
