"""The user API of calculations: create (JSON and multipart), edit, actions, reads,
downloads, the analyses catalogue, logs and the dataset export."""

import json

import pytest

from calculations.models import CHAIN_LEVEL, Calculation, LogLine, Result
from calculations.services import transition
from calculations.states import State
from tests.calculations.conftest import H2O_FDF


@pytest.fixture
def body(cluster, water, pseudos):
    return {"name": "water", "cluster": cluster.pk, "engine": "siesta", "molecule": water.pk,
            "config": {"fdf": H2O_FDF, "options": {}}, "pseudopotentials": [p.pk for p in pseudos],
            "analyses": ["energy_summary", "scf_convergence"]}


def test_it_creates_a_calculation_from_json(api_as, body):
    response = api_as("alice").post("/api/calculations/", body, format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["state"] == "queued" and data["owner"] == "alice" and data["processed"] is False
    assert data["analyses"] == ["energy_summary", "scf_convergence"]


def test_it_creates_a_calculation_with_attached_files_from_multipart(api_as, body):
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = api_as("alice").post("/api/calculations/", {
        "spec": json.dumps(body), "files": [SimpleUploadedFile("elec.TSHS", b"abc")]}, format="multipart")
    assert response.status_code == 201, response.content
    assert response.json()["files"][0]["name"] == "elec.TSHS"


@pytest.mark.parametrize("multipart", [False, True])
def test_it_answers_a_creation_as_a_read_of_it_would(api_as, body, multipart):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client = api_as("alice")
    created = (client.post("/api/calculations/", {"spec": json.dumps(body), "files": [
        SimpleUploadedFile("elec.TSHS", b"abc")]}, format="multipart") if multipart
        else client.post("/api/calculations/", body, format="json"))
    assert created.status_code == 201, created.content
    read = client.get(f"/api/calculations/{created.json()['id']}/")
    assert created.json() == read.json()
    assert created.json()["pseudopotentials"] and created.json()["molecule_name"]


def test_it_creates_in_a_bounded_number_of_queries(api_as, body, submit, django_assert_max_num_queries):
    client = api_as("alice")
    submit(engine="siesta")  # an earlier run of other inputs: the duplicate check reads an index
    with django_assert_max_num_queries(14):
        assert client.post("/api/calculations/", body, format="json").status_code == 201


def test_it_names_the_missing_dependency_of_an_analysis(api_as, body):
    body.update(analyses=["iv_curve"], chain={"parameter": "TS.Voltage", "values": [0.0, 0.1]})
    response = api_as("alice").post("/api/calculations/", body, format="json")
    assert response.status_code == 400
    assert response.json()["analyses"] == ["'iv_curve' requires 'transmission'"]
    assert Calculation.objects.count() == 0


def test_it_reports_unparseable_fdf_with_the_line(api_as, body):
    body["config"]["fdf"] = "SystemLabel x\n%endblock Foo\n"
    response = api_as("alice").post("/api/calculations/", body, format="json")
    assert response.status_code == 400
    assert "line 2" in response.json()["config"][0]


def test_it_refuses_malformed_json_and_a_bad_multipart_spec(api_as):
    client = api_as("alice")
    assert client.generic("POST", "/api/calculations/", "{", content_type="application/json").status_code == 400
    response = client.post("/api/calculations/", {"spec": "{nope"}, format="multipart")
    assert response.status_code == 400 and "spec" in response.json()


def test_it_edits_a_queued_calculation(api_as, submit):
    calc = submit()
    response = api_as("bob").patch(f"/api/calculations/{calc.pk}/", {"priority": 9}, format="json")
    assert response.status_code == 200 and response.json()["priority"] == 9


def test_it_cancels_resumes_approves_and_rejects_through_actions(api_as, submit, settings):
    calc = submit()
    assert api_as("alice").post(f"/api/calculations/{calc.pk}/cancel/").json()["state"] == "cancelled"
    assert api_as("alice").post(f"/api/calculations/{calc.pk}/resume/").status_code == 409
    settings.REQUIRE_APPROVAL = True
    waiting = submit(name="needs approval")
    assert api_as("alice").post(f"/api/calculations/{waiting.pk}/approve/").status_code == 403
    assert api_as("mod").post(f"/api/calculations/{waiting.pk}/reject/", {}, format="json").status_code == 400
    rejected = api_as("mod").post(f"/api/calculations/{waiting.pk}/reject/", {"reason": "too big"}, format="json")
    assert rejected.json()["approval"] == "rejected"


def test_it_answers_why_a_calculation_waits(api_as, submit):
    calc = submit()
    answer = api_as("alice").get(f"/api/calculations/{calc.pk}/why/").json()
    assert answer["waiting"] is True and any("offline" in r for r in answer["reasons"])


def test_it_filters_the_list_with_the_shared_filterset(api_as, submit, other_cluster):
    submit(name="a")
    submit(name="b", priority=3)
    Calculation.objects.filter(name="b").update(state=State.FAILED)
    client = api_as("alice")
    assert [c["name"] for c in client.get("/api/calculations/?state=failed").json()["results"]] == ["b"]
    assert client.get(f"/api/calculations/?cluster={other_cluster.pk}").json()["count"] == 0
    assert client.get("/api/calculations/?search=a&owner=alice").json()["count"] == 1
    assert client.get("/api/calculations/?created_after=2100-01-01T00:00:00Z").json()["count"] == 0


@pytest.mark.parametrize("rows", [3, 30])
def test_it_lists_calculations_in_a_constant_number_of_queries(api_as, submit, rows, django_assert_max_num_queries):
    for n in range(rows):
        submit(name=f"c{n}", files=[(f"f{n}.txt", b"x")])
    client = api_as("alice")
    with django_assert_max_num_queries(6):
        assert client.get("/api/calculations/").json()["count"] == rows


def test_it_serves_events_results_and_downloads(api_as, submit):
    calc = submit()
    Result.objects.create(calculation=calc, attempt=1, step=0, key="extracted",
                          data={"energies": {"total": -465.1, "fermi": -4.2}, "scf": [1, 2]})
    client = api_as("alice")
    assert client.get(f"/api/calculations/{calc.pk}/events/").json()[0]["reason"] == "submitted"
    assert client.get(f"/api/calculations/{calc.pk}/results/").json()["results"][0]["data"]["energies"]
    csv_text = client.get(f"/api/calculations/{calc.pk}/download/extracted/?format=csv").content.decode()
    assert csv_text.splitlines()[0] == "step,key,energies.fermi,energies.total"  # identity, then sorted
    fdf = client.get(f"/api/calculations/{calc.pk}/download/config/?format=fdf").content.decode()
    assert "SystemLabel h2o" in fdf
    assert client.get(f"/api/calculations/{calc.pk}/download/config/?format=pdf").status_code == 400


def test_it_serves_the_analyses_catalogue_with_dependencies(api_as):
    catalogue = {a["id"]: a for a in api_as("alice").get("/api/analyses/").json()}
    assert catalogue["iv_curve"]["requires"] == ["transmission"] and catalogue["iv_curve"]["chain_level"]


def test_it_exports_the_dataset_of_succeeded_calculations_streamed(api_as, submit):
    done, pending = submit(name="done"), submit(name="pending")
    for state in (State.CLAIMED, State.RUNNING, State.VALIDATING, State.EXTRACTING, State.SUCCEEDED):
        transition(done, state)
    Result.objects.create(calculation=done, attempt=1, step=0, key="extracted", data={"energies": {"total": -1.5}})
    Result.objects.create(calculation=done, attempt=1, step=CHAIN_LEVEL, key="summary", data={"n": 1})
    client = api_as("alice")
    response = client.get("/api/datasets/export/?format=jsonl")
    rows = [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]
    assert [r["name"] for r in rows] == ["done"] and pending.pk not in [r["id"] for r in rows]
    assert rows[0]["structure"]["species"] == ["O", "H", "H"]
    assert rows[0]["results"][0]["step"] is None or rows[0]["results"][1]["data"] == {"energies": {"total": -1.5}}
    csv_rows = b"".join(client.get("/api/datasets/export/?format=csv").streaming_content).decode().splitlines()
    assert csv_rows[0].startswith("id,name,engine,molecule,structure,step,key") and len(csv_rows) == 3
    assert client.get("/api/datasets/export/?format=xlsx").status_code == 400


def test_it_feeds_logs_after_an_id_and_lets_only_admins_delete(api_as, submit, cluster):
    calc = submit()
    lines = LogLine.objects.bulk_create([
        LogLine(cluster=cluster, calculation=calc, level="INFO", message=f"m{n}", time="2026-01-01T00:00:00Z")
        for n in range(3)])
    first = LogLine.objects.order_by("id").first()
    feed = api_as("alice").get(f"/api/logs/?after={first.pk}").json()["results"]
    assert [line["message"] for line in feed] == ["m1", "m2"]
    assert api_as("mod").delete(f"/api/logs/{first.pk}/").status_code == 403
    assert api_as("root").delete(f"/api/logs/{first.pk}/").status_code == 204
    assert api_as("root").post("/api/logs/purge/").status_code == 400
    assert api_as("root").post(f"/api/logs/purge/?calculation={calc.pk}").json() == {"deleted": 2}
    assert len(lines) == 3
