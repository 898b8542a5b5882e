"""Issue 3's bad input, over HTTP: a clear 4xx naming the field, and nothing stored half-way.

Unparseable fdf, a species with no pseudopotential, a chain without values, analyses with a
missing dependency, a cluster that does not offer the engine, files over the size limit,
path traversal in file names, malformed agent payloads and a revoked key.
"""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from calculations.models import Calculation, CalculationEvent, CalculationFile, LogLine, Result
from calculations.states import State
from clusters import services as cluster_services
from tests.calculations.conftest import H2O_FDF

AGENT = "/api/agent/v1"
TOO_BIG = 2**31  # one past what a sequence number or a step may be


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def body(cluster, water, pseudos):
    return {"name": "water", "cluster": cluster.pk, "engine": "siesta", "molecule": water.pk,
            "config": {"fdf": H2O_FDF, "options": {}}, "pseudopotentials": [p.pk for p in pseudos],
            "analyses": ["energy_summary"]}


def _stored_nothing(media_root) -> bool:
    """No calculation, no attached file row, no file written under media/calculations/."""
    files = [p for p in (media_root / "calculations").rglob("*") if p.is_file()]
    return not Calculation.objects.exists() and not CalculationFile.objects.exists() and not files


# changes to a valid body, the field at fault, words of its message
BAD_CALCULATIONS = [
    ({"config": {"fdf": "SystemLabel x\n%endblock Foo\n"}}, "config", "cannot be read"),
    ({"config": {"fdf": "%block ChemicalSpeciesLabel\n 1 8 O\n"}}, "config", "never closed"),
    ({"config": {"fdf": "   "}}, "config", "needs an fdf"),
    ({"config": "SystemLabel x"}, "config", "dictionary"),
    ({"pseudopotentials": "only O"}, "pseudopotentials", "No pseudopotential for species H"),
    ({"chain": {"parameter": "TS.Voltage", "values": []}}, "chain", "empty"),
    ({"chain": {"parameter": "TS.Voltage"}}, "chain", "required"),
    ({"chain": {"parameter": "TS.Voltage", "values": [0.1], "carry": ["../*.DM"]}}, "chain", "without folders"),
    ({"chain": {"parameter": "rotation", "values": [0, "ninety"]}}, "chain", "angles in degrees"),
    ({"chain": {"parameter": "rotation", "values": [0, 90], "axis": "w"}}, "chain", "non-zero vector"),
    ({"chain": {"parameter": "rotation", "values": [0, 90], "axis": [0, 0, 0]}}, "chain", "non-zero vector"),
    ({"chain": {"parameter": "rotation", "values": [0, 90]}, "molecule": None}, "molecule", "turns the molecule"),
    ({"analyses": ["iv_curve"], "chain": {"parameter": "TS.Voltage", "values": [0, 0.1]}},
     "analyses", "'iv_curve' requires 'transmission'"),
    ({"analyses": ["iv_curve", "transmission"]}, "analyses", "chain"),
    ({"analyses": ["no_such_analysis"]}, "analyses", "unknown analysis"),
    ({"engine": "gaussian"}, "engine", "Unknown engine"),
    ({"engine": "pyscf", "molecule": None}, "molecule", "needs a molecule"),
    ({"cluster": 999999}, "cluster", "does not exist"),
    ({"priority": 10**6}, "priority", "less than or equal"),
    ({"name": ""}, "name", "blank"),
]


@pytest.mark.parametrize(("change", "field", "words"), BAD_CALCULATIONS, ids=[str(c) for c, _f, _w in BAD_CALCULATIONS])
def test_it_refuses_a_bad_calculation_naming_the_field_and_stores_nothing(
        api_as, body, pseudos, _media_root, change, field, words):
    body.update(change)
    if body["pseudopotentials"] == "only O":
        body["pseudopotentials"] = [pseudos[0].pk]
    response = api_as("alice").post("/api/calculations/", body, format="json")
    assert response.status_code == 400, response.content
    assert words in json.dumps(response.json()[field]), response.json()
    assert _stored_nothing(_media_root)


def test_it_refuses_an_engine_the_cluster_does_not_offer(api_as, body, cluster, _media_root):
    cluster.engines = ["pyscf"]
    cluster.save()
    response = api_as("alice").post("/api/calculations/", body, format="json")
    assert response.status_code == 400
    assert "does not offer siesta" in response.json()["engine"][0]
    assert _stored_nothing(_media_root)


def _multipart(api_as, body, *files):
    return api_as("alice").post("/api/calculations/", {"spec": json.dumps(body), "files": list(files)},
                                format="multipart")


def test_it_refuses_a_file_over_the_size_limit_and_stores_nothing(api_as, body, settings, _media_root):
    settings.UPLOAD_MAX_BYTES = 1024
    response = _multipart(api_as, body, SimpleUploadedFile("small.DM", b"x"), SimpleUploadedFile("elec.TSHS",
                                                                                                 b"x" * 2048))
    assert response.status_code == 400
    assert "over the limit" in response.json()["files"][0]
    assert _stored_nothing(_media_root)


@pytest.mark.parametrize("name", [".hidden", "a b.fdf", "in|put.fdf"])
def test_it_refuses_a_file_name_that_is_not_plain(api_as, body, _media_root, name):
    response = _multipart(api_as, body, SimpleUploadedFile(name, b"x"))
    assert response.status_code == 400
    assert "not an allowed file name" in response.json()["files"][0]
    assert _stored_nothing(_media_root)


def test_it_keeps_a_traversing_upload_inside_the_calculations_folder(api_as, body, _media_root):
    response = _multipart(api_as, body, SimpleUploadedFile("../../../etc/passwd", b"x"))
    if response.status_code == 201:  # the multipart parser keeps only the base name
        assert [f["name"] for f in response.json()["files"]] == ["passwd"]
        stored = [p for p in (_media_root / "calculations").rglob("*") if p.is_file()]
        assert [p.name for p in stored] == ["passwd"]
    else:
        assert response.status_code == 400 and _stored_nothing(_media_root)


def test_it_refuses_the_same_file_twice(api_as, body, _media_root):
    response = _multipart(api_as, body, SimpleUploadedFile("a.DM", b"x"), SimpleUploadedFile("a.DM", b"y"))
    assert response.status_code == 400 and "twice" in response.json()["files"][0]
    assert _stored_nothing(_media_root)


@pytest.mark.parametrize("payload", ["[1, 2]", '"text"', "null", '{"name": '])
def test_it_refuses_a_body_that_is_no_json_object(api_as, payload, _media_root):
    response = api_as("alice").generic("POST", "/api/calculations/", payload, content_type="application/json")
    assert response.status_code == 400 and response.json()
    assert _stored_nothing(_media_root)


def test_it_keeps_the_old_configuration_when_an_edit_is_bad(api_as, submit, pseudos):
    calc = submit()
    response = api_as("alice").patch(f"/api/calculations/{calc.pk}/", {
        "name": "renamed", "pseudopotentials": [pseudos[0].pk], "config": {"fdf": H2O_FDF}}, format="json")
    assert response.status_code == 400 and "No pseudopotential for species H" in response.json()["pseudopotentials"][0]
    calc.refresh_from_db()
    assert calc.name == "water scf" and set(calc.pseudopotentials.all()) == set(pseudos)


def test_it_refuses_to_edit_a_started_calculation(api_as, submit):
    calc = submit()
    Calculation.objects.filter(pk=calc.pk).update(state=State.RUNNING)
    response = api_as("alice").patch(f"/api/calculations/{calc.pk}/", {"priority": 3}, format="json")
    assert response.status_code == 400 and "no longer be edited" in response.json()["state"][0]
    assert Calculation.objects.get(pk=calc.pk).priority == 0


@pytest.mark.parametrize("query", ["?attempt=x", "?attempt=-1", f"?attempt={2**70}"])
def test_it_answers_results_for_a_bad_attempt_without_error(api_as, submit, query):
    calc = submit()
    assert api_as("alice").get(f"/api/calculations/{calc.pk}/results/{query}").status_code == 200


# --- the agent API ----------------------------------------------------------------------------


@pytest.fixture
def claimed(submit, agent_client):
    calc = submit()
    assert agent_client.post(f"{AGENT}/claim/", {"max": 1}, format="json").status_code == 200
    return Calculation.objects.get(pk=calc.pk)


BAD_LOGS = [
    {"lines": []},
    {"lines": [{"level": "INFO"}]},
    {"lines": [{"message": "x", "level": "LOUD"}]},
    {"lines": [{"message": "x", "seq": TOO_BIG}]},
    {"lines": [{"message": "x", "seq": 0}]},
    {"lines": [{"message": "x", "time": "yesterday"}]},
    {"lines": "not a list"},
    {"lines": [{"message": "fine", "seq": 1}, {"message": "x", "seq": "one"}]},
]


@pytest.mark.parametrize("payload", BAD_LOGS, ids=[json.dumps(p) for p in BAD_LOGS])
def test_it_refuses_malformed_log_batches_and_stores_no_line(claimed, agent_client, payload):
    for url in (f"{AGENT}/calculations/{claimed.pk}/logs/", f"{AGENT}/logs/"):
        response = agent_client.post(url, payload, format="json")
        assert response.status_code == 400, response.content
        assert response.json()["detail"] and response.json()["errors"]
    assert not LogLine.objects.exists()


BAD_EVENTS = [
    {"seq": TOO_BIG, "state": "running"},
    {"seq": 1, "state": "running", "step": TOO_BIG},
    {"seq": 1, "state": "running", "progress": "half"},
    {"seq": True, "state": "running"},
]


@pytest.mark.parametrize("payload", BAD_EVENTS, ids=[json.dumps(p) for p in BAD_EVENTS])
def test_it_refuses_malformed_events_and_changes_nothing(claimed, agent_client, payload):
    events = CalculationEvent.objects.count()
    response = agent_client.post(f"{AGENT}/calculations/{claimed.pk}/events/", payload, format="json")
    assert response.status_code == 400, response.content
    calc = Calculation.objects.get(pk=claimed.pk)
    assert (calc.state, calc.agent_seq, CalculationEvent.objects.count()) == (State.CLAIMED, 0, events)


@pytest.mark.parametrize("payload", [{"step": TOO_BIG, "data": {}}, {"step": 0, "key": "no spaces"},
                                     {"step": 0, "data": [1, 2]}])
def test_it_refuses_malformed_results_and_stores_nothing(claimed, agent_client, payload):
    response = agent_client.post(f"{AGENT}/calculations/{claimed.pk}/results/", payload, format="json")
    assert response.status_code == 400, response.content
    assert not Result.objects.exists()


@pytest.mark.parametrize("payload", [{"max": 0}, {"max": "all"}, {"max": 101}, {"wait": 31}, {"wait": -1}])
def test_it_refuses_a_malformed_claim_and_claims_nothing(submit, agent_client, payload):
    calc = submit()
    response = agent_client.post(f"{AGENT}/claim/", payload, format="json")
    assert response.status_code == 400 and response.json()["errors"]
    assert Calculation.objects.get(pk=calc.pk).state == State.QUEUED


def test_it_takes_nothing_from_a_revoked_key(root, submit, agent_client, agent_key):
    calc = submit()
    key = cluster_services.ApiKey.objects.get(prefix=agent_key.split("_")[1])
    cluster_services.revoke_key(actor=root, key=key)
    for url, payload in [(f"{AGENT}/claim/", {"max": 1}), (f"{AGENT}/logs/", {"lines": [{"message": "x"}]}),
                         (f"{AGENT}/calculations/{calc.pk}/events/", {"seq": 1, "state": "running"})]:
        response = agent_client.post(url, payload, format="json")
        assert response.status_code == 401 and "revoked" in response.json()["detail"]
    assert Calculation.objects.get(pk=calc.pk).state == State.QUEUED and not LogLine.objects.exists()


def test_it_refuses_a_form_encoded_agent_body(claimed, agent_client):
    response = agent_client.post(f"{AGENT}/calculations/{claimed.pk}/logs/", {"lines": "x"})
    assert response.status_code == 415 and not LogLine.objects.exists()


def test_it_refuses_a_missing_key_before_reading_the_body(submit):
    calc = submit()
    response = APIClient().post(f"{AGENT}/calculations/{calc.pk}/events/", "{", content_type="application/json")
    assert response.status_code == 401
