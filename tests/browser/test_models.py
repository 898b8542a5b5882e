"""The Models pages in the browser: what each role is offered."""

import pytest
from playwright.sync_api import expect

from mlmodels.models import MLModel

pytestmark = pytest.mark.browser


@pytest.fixture
def energy_model(transactional_db):
    return MLModel.objects.create(name="energy", image="energy-model:1.0", version="1.0")


def test_it_offers_a_plain_user_start_but_no_management(page_of, energy_model):
    page = page_of("alice")
    page.get_by_role("navigation", name="Sections").get_by_role("link", name="Models").click()
    row = page.get_by_role("row", name="energy")
    expect(row).to_contain_text("stopped")
    expect(row.get_by_role("button", name="Start energy")).to_be_visible()
    expect(row.get_by_role("link", name="Edit energy")).to_have_count(0)
    expect(page.get_by_role("link", name="Register a model")).to_have_count(0)
    page.get_by_role("link", name="energy", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("energy")
    expect(page.get_by_role("button", name="Delete")).to_have_count(0)
    assert page.goto("/models/new/").status == 403


def test_it_offers_an_admin_registering_editing_and_deleting(page_of, energy_model):
    page = page_of("root")
    page.goto("/models/")
    expect(page.get_by_role("link", name="Register a model")).to_be_visible()
    row = page.get_by_role("row", name="energy")
    row.get_by_role("link", name="Edit energy").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Edit energy")
    page.get_by_label("Description").fill("Total energy from the structure.")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("Model energy saved.")
    expect(page.get_by_role("button", name="Delete")).to_be_visible()
    energy_model.refresh_from_db()
    assert energy_model.description == "Total energy from the structure."
