"""Calculations in the browser: the form's analysis checkboxes, submitting, approving."""

import re

import pytest
from playwright.sync_api import expect

from calculations import services
from calculations.models import Calculation
from tests.browser.conftest import sign_in
from tests.factories import ClusterFactory, MoleculeFactory

pytestmark = pytest.mark.browser


@pytest.fixture
def cluster(transactional_db):
    return ClusterFactory(name="hpc1", engines=["siesta", "pyscf"])


@pytest.fixture
def water(transactional_db):
    return MoleculeFactory(name="water")


def analysis(page, title: str):
    return page.get_by_role("group", name="Analyses").get_by_label(title, exact=True)


def test_it_checks_what_an_analysis_needs_and_unchecks_what_needs_a_removed_one(page_of, cluster):
    page = page_of("alice")
    page.goto("/calculations/new/")
    iv_curve, transmission = analysis(page, "I-V curve"), analysis(page, "Transmission")
    expect(transmission).not_to_be_checked()

    iv_curve.check()
    expect(transmission).to_be_checked()  # I-V curve needs the transmission

    transmission.uncheck()
    expect(iv_curve).not_to_be_checked()  # and cannot stay without it
    expect(analysis(page, "Energy summary")).not_to_be_checked()  # unrelated boxes are left alone


def test_it_submits_a_calculation_with_analyses_and_lands_on_its_page(page_of, cluster, water):
    page = page_of("alice")
    page.goto("/calculations/")
    page.get_by_role("link", name="New calculation").click()
    page.get_by_label("Name", exact=True).fill("water rhf")
    page.get_by_label("Molecule").select_option(label="water")
    page.get_by_label("Cluster").select_option(label="hpc1")
    page.get_by_label("Engine").select_option("pyscf")
    page.get_by_label("Options").fill('{"method": "RHF", "basis": "sto-3g"}')
    analysis(page, "Energy summary").check()
    analysis(page, "SCF convergence").check()
    page.get_by_role("button", name="Submit").click()

    calc = Calculation.objects.get(name="water rhf")
    expect(page).to_have_url(re.compile(rf"/calculations/{calc.pk}/$"))
    expect(page.get_by_role("status")).to_contain_text("Calculation water rhf submitted (queued)")
    expect(page.get_by_role("heading", level=1)).to_contain_text("water rhf")
    expect(page.locator("h1 .state")).to_have_text("Queued")
    facts = page.get_by_role("region", name="Configuration")
    expect(facts).to_contain_text("energy_summary, scf_convergence")
    assert (calc.engine, calc.molecule, calc.analyses) == ("pyscf", water, ["energy_summary", "scf_convergence"])


def test_it_refuses_a_missing_dependency_on_the_server_too(open_page, alice, password, cluster, water):
    # without JavaScript nothing checks the transmission box: the server must say so, keeping the input
    page = open_page(java_script_enabled=False)
    sign_in(page, "alice", password)
    page.goto("/calculations/new/")
    page.get_by_label("Name", exact=True).fill("sweep")
    page.get_by_label("Molecule").select_option(label="water")
    page.get_by_label("Engine").select_option("pyscf")
    analysis(page, "I-V curve").check()
    page.get_by_role("button", name="Submit").click()

    group = page.get_by_role("group", name="Analyses")
    expect(group.get_by_role("alert")).to_contain_text("'iv_curve' requires 'transmission'")
    expect(page.get_by_label("Name", exact=True)).to_have_value("sweep")
    expect(analysis(page, "I-V curve")).to_be_checked()
    assert not Calculation.objects.exists()


def test_it_lets_a_moderator_approve_a_calculation_waiting_for_approval(page_of, alice, cluster, water):
    cluster.requires_approval = True
    cluster.save()
    calc = services.submit_calculation(owner=alice, name="needs a nod", cluster=cluster, engine="pyscf",
                                       molecule=water, config={"options": {}})
    page = page_of("mod")
    page.goto(f"/calculations/{calc.pk}/")
    expect(page.locator("h1 .state")).to_have_text("Pending approval")
    expect(page.get_by_role("region", name="Why isn't it running?")).to_contain_text("Waiting for a moderator")

    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_role("status")).to_contain_text("needs a nod: done.")
    expect(page.locator("h1 .state")).to_have_text("Queued")
    expect(page.get_by_role("region", name="Configuration")).to_contain_text("Approved by mod")
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    calc.refresh_from_db()
    assert (calc.state, calc.approved_by.username) == ("queued", "mod")


def test_it_offers_no_approval_to_a_plain_user(page_of, alice, cluster, water):
    cluster.requires_approval = True
    cluster.save()
    calc = services.submit_calculation(owner=alice, name="needs a nod", cluster=cluster, engine="pyscf",
                                       molecule=water, config={"options": {}})
    page = page_of("alice")
    page.goto(f"/calculations/{calc.pk}/")
    expect(page.locator("h1 .state")).to_have_text("Pending approval")
    expect(page.get_by_role("button", name="Cancel")).to_be_visible()  # her own actions are there
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    expect(page.get_by_role("button", name="Reject")).to_have_count(0)
