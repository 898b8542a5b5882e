"""Creating, editing and duplicating calculations through the page form: the same services and
validators as the API, errors next to their fields, nothing the user typed lost."""

import html
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from calculations.forms import CalculationForm
from calculations.models import Calculation
from calculations.states import State
from tests.calculations.conftest import H2O_FDF
from tests.calculations.test_reports import run


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def data(cluster, water, pseudos):
    return {"name": "water from the page", "description": "", "cluster": cluster.pk, "engine": "siesta",
            "molecule": water.pk, "fdf": H2O_FDF, "options": "{}", "priority": "0",
            "pseudopotentials": [p.pk for p in pseudos], "analyses": ["scf_convergence", "energy_summary"],
            "chain_parameter": "", "chain_unit": "", "chain_values": "", "chain_carry": ""}


def field_errors(page: str, field: str) -> str:
    """The text of the errors shown next to ``field`` ("" when none)."""
    match = re.search(rf'<(div|fieldset) class="field[^"]*invalid"[^>]*>(?:(?!</fieldset>|<div class="field).)*?'
                      rf'name="{field}".*?<div class="errors" role="alert">(.*?)</div>', page, re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", match.group(2))) if match else ""


# --- create ---------------------------------------------------------------------------------------


def test_it_submits_a_calculation_through_the_service(page_as, data, alice):
    response = page_as("alice").post("/calculations/new/", data)
    calc = Calculation.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/calculations/{calc.pk}/"
    assert calc.owner == alice and calc.state == State.QUEUED and calc.config == {"fdf": H2O_FDF, "options": {}}
    assert calc.analyses == ["energy_summary", "scf_convergence"]  # dependency order, by the shared validator
    assert calc.pseudopotentials.count() == 2 and calc.structure["species"] == ["O", "H", "H"]


def test_it_names_the_missing_dependency_next_to_the_analyses(page_as, data):
    data.update(analyses=["iv_curve"], chain_parameter="TS.Voltage", chain_values="0 0.1")
    response = page_as("alice").post("/calculations/new/", data)
    assert response.status_code == 400 and Calculation.objects.count() == 0
    assert "'iv_curve' requires 'transmission'" in field_errors(response.content.decode(), "analyses")


def test_it_keeps_what_the_user_typed_when_the_form_comes_back(page_as, data):
    data.update(name="", fdf="SystemLabel x\n%endblock Foo\n", chain_parameter="TS.Voltage",
                chain_values="0 0.1 0.2", chain_carry="*.DM", description="my notes")
    page = page_as("alice").post("/calculations/new/", data).content.decode()
    assert "This field is required." in field_errors(page, "name")
    assert "%endblock Foo" in page and "my notes" in page and 'value="0 0.1 0.2"' in page
    assert 'value="*.DM"' in page and 'value="TS.Voltage"' in page
    assert re.search(r'value="scf_convergence"[^>]*checked', page)


def test_it_shows_the_services_fdf_error_next_to_the_fdf(page_as, data):
    data["fdf"] = "SystemLabel x\n%endblock Foo\n"
    page = page_as("alice").post("/calculations/new/", data).content.decode()
    assert "line 2" in field_errors(page, "fdf")
    assert Calculation.objects.count() == 0


def test_it_shows_a_missing_pseudopotential_next_to_the_pseudopotentials(page_as, data):
    data["pseudopotentials"] = []
    page = page_as("alice").post("/calculations/new/", data).content.decode()
    assert "No pseudopotential for species O, H" in field_errors(page, "pseudopotentials")


def test_it_takes_the_fdf_from_an_uploaded_file_and_keeps_it_in_the_text_area(page_as, data):
    data.update(fdf="", name="", fdf_file=SimpleUploadedFile("h2o.fdf", H2O_FDF.encode()))
    page = page_as("alice").post("/calculations/new/", data).content.decode()
    assert "SystemLabel h2o" in page  # the file's text, shown back although the name was missing
    data.update(name="uploaded", fdf_file=SimpleUploadedFile("h2o.fdf", H2O_FDF.encode()))
    page_as("alice").post("/calculations/new/", data)
    assert Calculation.objects.get().config["fdf"] == H2O_FDF


def test_it_refuses_an_fdf_file_that_is_not_text(page_as, data):
    data.update(fdf="", fdf_file=SimpleUploadedFile("h2o.fdf", b"\xff\xfe\x00binary"))
    page = page_as("alice").post("/calculations/new/", data).content.decode()
    assert "not UTF-8 text" in field_errors(page, "fdf_file")


def test_it_attaches_uploaded_files_and_refuses_unsafe_names(page_as, data):
    data["files"] = [SimpleUploadedFile("elec.TSHS", b"abc"), SimpleUploadedFile("..hidden", b"x")]
    page = page_as("alice").post("/calculations/new/", data).content.decode()
    assert "is not an allowed file name" in field_errors(page, "files") and Calculation.objects.count() == 0
    data["files"] = [SimpleUploadedFile("elec.TSHS", b"abc")]
    page_as("alice").post("/calculations/new/", data)
    assert [f.name for f in Calculation.objects.get().files.all()] == ["elec.TSHS"]


def test_it_builds_a_chain_from_the_parameter_values_and_carried_files(page_as, data):
    data.update(chain_parameter="TS.Voltage", chain_unit="V", chain_values="0, 0.25 1 high", chain_carry="*.DM *.TSDE")
    page_as("alice").post("/calculations/new/", data)
    assert Calculation.objects.get().chain == {"parameter": "TS.Voltage", "unit": "V", "values": [0, 0.25, 1, "high"],
                                              "carry": ["*.DM", "*.TSDE"]}


@pytest.mark.parametrize(("axis", "stored"), [("", "z"), ("x", "x"), ("0 1 1", [0, 1, 1])])
def test_it_builds_a_rotation_chain_with_its_axis(page_as, data, axis, stored):
    data.update(chain_parameter="rotation", chain_values="0 45 90", chain_axis=axis)
    assert page_as("alice").post("/calculations/new/", data).status_code == 302
    assert Calculation.objects.get().chain == {"parameter": "rotation", "unit": "deg", "values": [0, 45, 90],
                                              "carry": [], "axis": stored}


def test_it_shows_a_bad_rotation_axis_next_to_the_chain(page_as, data):
    data.update(chain_parameter="rotation", chain_values="0 90", chain_axis="0 0 0")
    page = page_as("alice").post("/calculations/new/", data).content.decode()
    assert "non-zero vector" in page and not Calculation.objects.exists()


def test_it_asks_for_the_parameter_of_a_chain_next_to_it(page_as, data):
    data.update(chain_values="0 0.1")
    page = page_as("alice").post("/calculations/new/", data).content.decode()
    assert "needs the parameter it varies" in field_errors(page, "chain_parameter")


def test_it_marks_each_analysis_checkbox_with_what_it_requires(page_as):
    page = page_as("alice").get("/calculations/new/").content.decode()
    box = re.search(r'<input type="checkbox" name="analyses" value="iv_curve"[^>]*>', page).group(0)
    assert 'data-requires="transmission"' in box and 'data-chain-level="true"' in box
    assert "siestaflow/calculations.js" in page


def test_it_offers_the_catalogue_of_the_agent_package():
    from siestaflow_agent.analyses import catalogue

    assert [c[0] for c in CalculationForm().fields["analyses"].choices] == [a.id for a in catalogue.ANALYSES]


# --- edit -------------------------------------------------------------------------------------------


def test_it_prefills_the_edit_form_and_saves_through_the_service(page_as, submit, data):
    calc = submit()
    page = page_as("bob").get(f"/calculations/{calc.pk}/edit/").content.decode()
    assert 'value="water scf"' in page and "SystemLabel h2o" in page
    data.update(name="renamed", priority="5", cluster="")
    response = page_as("bob").post(f"/calculations/{calc.pk}/edit/", data)
    assert response.status_code == 302
    calc.refresh_from_db()
    assert calc.name == "renamed" and calc.priority == 5


def test_it_keeps_a_calculation_on_its_cluster_when_editing(page_as, submit, data, other_cluster):
    calc = submit()
    data["cluster"] = other_cluster.pk
    page_as("bob").post(f"/calculations/{calc.pk}/edit/", data)
    calc.refresh_from_db()
    assert calc.cluster.name == "hpc1"


def test_it_refuses_to_edit_a_started_calculation(page_as, submit, data):
    calc = run(submit(), State.RUNNING)
    response = page_as("alice").post(f"/calculations/{calc.pk}/edit/", {**data, "name": "late"}, follow=True)
    assert "can no longer be edited" in response.content.decode()
    calc.refresh_from_db()
    assert calc.name == "water scf"
    assert f'href="/calculations/{calc.pk}/edit/"' not in response.content.decode()


def test_it_shows_edit_errors_next_to_the_fields(page_as, submit, data):
    calc = submit()
    data.update(analyses=["iv_curve"])
    response = page_as("alice").post(f"/calculations/{calc.pk}/edit/", data)
    assert response.status_code == 400
    assert "'iv_curve' requires 'transmission'" in field_errors(response.content.decode(), "analyses")


# --- duplicate --------------------------------------------------------------------------------------


def test_it_prefills_a_copy_and_keeps_the_originals_files(page_as, submit, data):
    original = submit(files=[("elec.TSHS", b"electrode")])
    page = page_as("bob").get(f"/calculations/new/?from={original.pk}").content.decode()
    assert 'value="water scf (copy)"' in page and "SystemLabel h2o" in page and "elec.TSHS" in page
    response = page_as("bob").post(f"/calculations/new/?from={original.pk}", {**data, "name": "copy"})
    copy = Calculation.objects.get(name="copy")
    assert response.status_code == 302 and copy.owner.username == "bob"
    assert [(f.name, f.sha256) for f in copy.files.all()] == [(f.name, f.sha256) for f in original.files.all()]


def test_it_links_a_submission_to_a_succeeded_calculation_with_the_same_inputs(page_as, submit, data):
    first = run(submit(analyses=["energy_summary", "scf_convergence"]), State.RUNNING, State.VALIDATING,
                State.EXTRACTING, State.SUCCEEDED)
    response = page_as("alice").post("/calculations/new/", data, follow=True)
    assert f'Same inputs as <a href="/calculations/{first.pk}/">' in response.content.decode()


def test_it_keeps_invalid_options_json_and_says_so_next_to_it(page_as, data):
    data["options"] = '{"method": RKS'
    page = page_as("alice").post("/calculations/new/", data).content.decode()
    assert "Enter a valid JSON." in field_errors(page, "options")
    assert "{&quot;method&quot;: RKS</textarea>" in page
    assert Calculation.objects.count() == 0


def test_it_shows_the_required_fields_on_an_empty_post(page_as, cluster):
    response = page_as("alice").post("/calculations/new/", {})
    assert response.status_code == 400
    assert "This field is required." in field_errors(response.content.decode(), "name")


def test_it_keeps_the_program_of_a_command_calculation(page_as, data):
    data.update(engine="command", program="tiny", options='{"x": 1}', fdf="", analyses=[], molecule="")
    response = page_as("alice").post("/calculations/new/", data)
    assert response.status_code == 302, response.content.decode()
    assert Calculation.objects.get().config == {"fdf": "", "options": {"x": 1}, "program": "tiny"}
