"""The Models pages in a real browser: an admin registers the example model built offline,
a user starts it and predicts from its page (real Docker engine); buttons by role."""

import json
import time

import pytest
from playwright.sync_api import expect

from mlmodels import services
from mlmodels.models import MLModel, Prediction

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _wait_running(model_id: int, timeout: float = 15) -> MLModel:
    """What the await_ready task does, until the model runs."""
    deadline = time.monotonic() + timeout
    while (model := services.check_ready(model_id=model_id)).state == MLModel.State.STARTING:
        assert time.monotonic() < deadline, model.last_error
        time.sleep(0.1)
    return model


@pytest.mark.docker
def test_it_registers_starts_and_predicts_with_the_example_model(page_of, example_image, real_engine, bob):
    page = page_of("root")
    page.get_by_role("navigation", name="Sections").get_by_role("link", name="Models").click()
    page.get_by_role("link", name="Register a model").click()
    page.get_by_label("Name").fill("energy")
    page.get_by_label("Image").fill(example_image)
    page.get_by_label("Version").fill("1.0")
    page.get_by_label("Example input").fill(json.dumps({"instances": ["H2O"]}))
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("energy")
    page.get_by_role("button", name="Start energy").click()
    expect(page.get_by_role("status").first).to_contain_text("Model energy is starting.")
    model = _wait_running(MLModel.objects.get(name="energy").pk)
    assert model.state == MLModel.State.RUNNING, model.last_error

    page.reload()
    expect(page.locator(".badge.state-running")).to_have_text("running")
    field = page.get_by_label("Input (JSON)")
    expect(field).to_have_value(json.dumps({"instances": ["H2O"]}, indent=2))
    field.fill('{"instances": ["NH3", "CH4"]}')
    page.get_by_role("button", name="Predict").click()
    expect(page.get_by_role("heading", name="The model's answer")).to_be_visible()
    expect(page.locator(".answer pre")).to_contain_text('"target": "energies.total"')
    assert len(Prediction.objects.get().output["predictions"]) == 2

    page.get_by_label("Input (JSON)").fill('{"instances": [NH3]}')
    page.get_by_role("button", name="Predict").click()
    expect(page.get_by_role("alert").filter(has_text="Enter a valid JSON.")).to_be_visible()
    expect(page.get_by_label("Input (JSON)")).to_have_value('{"instances": [NH3]}')
    assert Prediction.objects.count() == 1


def test_it_shows_a_user_start_but_not_the_admins_buttons(page_of, make_model):
    model = make_model()
    page = page_of("alice")
    page.goto("/models/")
    expect(page.get_by_role("link", name="Register a model")).to_have_count(0)
    expect(page.get_by_role("link", name="Edit energy")).to_have_count(0)
    page.get_by_role("link", name="energy").click()
    expect(page.get_by_role("button", name="Delete")).to_have_count(0)
    page.get_by_role("button", name="Start energy").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status").first).to_contain_text("Model energy is starting.")
    model.refresh_from_db()
    assert model.state == MLModel.State.STARTING
