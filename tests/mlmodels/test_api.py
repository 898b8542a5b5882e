"""The REST API of ML models against a fake engine: registry, actions, the invocation proxy,
predictions and the health graph."""

import json
import re
from datetime import timedelta

import pytest
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import DatabaseError, close_old_connections, connection
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken

from mlmodels import docker, invocations, services
from mlmodels.comparison import dft_comparison
from mlmodels.models import MLModel, ModelHeartbeat, Prediction
from tests.factories import PASSWORD


def _invoke(client, model, body=b'{"instances": ["H2O"]}', content_type="application/json", **extra):
    return client.generic("POST", f"/api/models/{model.pk}/invocations/", body, content_type=content_type, **extra)


def _jwt(user) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")


on_postgresql = pytest.mark.skipif("connection.vendor != 'postgresql'", reason="a PostgreSQL setting")


# --- Registry ---------------------------------------------------------------------------


def test_it_lists_models_in_constant_queries(api_as, make_model, django_assert_max_num_queries):
    for n in range(5):
        make_model(f"m{n}")
    with django_assert_max_num_queries(3):
        response = api_as("alice").get("/api/models/")
    assert response.status_code == 200 and response.json()["count"] == 5


def test_it_shows_the_environment_to_admins_only(api_as, make_model):
    model = make_model(environment={"API_TOKEN": "s3cret"})
    assert "environment" not in api_as("alice").get(f"/api/models/{model.pk}/").json()
    assert api_as("root").get(f"/api/models/{model.pk}/").json()["environment"] == {"API_TOKEN": "s3cret"}


def test_it_registers_a_model(api_as, fake_docker):
    body = {"name": "energy", "image": "energy:1", "version": "1.0", "environment": {"THREADS": "2"},
            "example_input": {"instances": ["H2O"]}, "memory_mb": 256, "cpus": 0.5,
            "dataset_snapshot": {"file": "export.jsonl", "sha256": "ab12", "rows_used": 25}}
    response = api_as("root").post("/api/models/", body, format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert (data["state"], data["created_by"], data["example_input"]) == ("stopped", "root", {"instances": ["H2O"]})
    assert data["dataset_snapshot"]["rows_used"] == 25


def test_it_refuses_an_unknown_image_and_a_duplicate_name(api_as, make_model):
    response = api_as("root").post("/api/models/", {"name": "x", "image": "no-such-image:1"}, format="json")
    assert response.status_code == 400 and "not on the Docker engine" in response.json()["image"][0]
    make_model("energy")
    response = api_as("root").post("/api/models/", {"name": "energy", "image": "energy:1"}, format="json")
    assert response.status_code == 400 and "name" in response.json()


def test_it_refuses_to_change_a_running_models_image(api_as, running_model):
    response = api_as("root").patch(f"/api/models/{running_model.pk}/", {"image": "energy:2"}, format="json")
    assert response.status_code == 409 and "Stop model energy" in response.json()["detail"]


def test_it_deletes_a_model_and_its_image_on_request(api_as, running_model, fake_docker):
    response = api_as("root").delete(f"/api/models/{running_model.pk}/?remove_image=true")
    assert response.status_code == 204 and fake_docker.removed_images == ["energy:1"]


# --- Start and stop -------------------------------------------------------------------


def test_it_starts_and_stops_a_model(api_as, make_model, fake_docker):
    model = make_model()
    response = api_as("alice").post(f"/api/models/{model.pk}/start/")
    assert response.status_code == 200 and response.json()["state"] == "starting"
    response = api_as("alice").post(f"/api/models/{model.pk}/stop/")
    assert response.status_code == 200 and response.json()["state"] == "stopped"
    assert fake_docker.containers == {}


def test_it_answers_503_when_the_engine_is_down(api_as, make_model, fake_docker):
    model = make_model()
    fake_docker.available = False
    response = api_as("alice").post(f"/api/models/{model.pk}/start/")
    assert response.status_code == 503 and "No Docker engine answers" in response.json()["detail"]
    assert MLModel.objects.get().state == "stopped"


def test_it_answers_400_when_the_image_is_gone_at_start(api_as, make_model, fake_docker):
    model = make_model()
    fake_docker.images.clear()
    response = api_as("alice").post(f"/api/models/{model.pk}/start/")
    assert response.status_code == 400 and "not on the Docker engine" in response.json()["image"][0]


# --- Invocations --------------------------------------------------------------------------


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="a PostgreSQL setting")
def test_it_records_a_prediction_without_waiting_for_the_disk(api_as, running_model, fake_docker):
    with CaptureQueriesContext(connection) as queries:
        assert _invoke(api_as("alice"), running_model).status_code == 200
    inserts = [q["sql"] for q in queries.captured_queries if q["sql"].startswith('INSERT INTO "mlmodels_prediction"')]
    assert len(inserts) == 1 and "set_config('synchronous_commit', 'off', true)" in inserts[0]
    assert not any(q["sql"] in ("BEGIN", "COMMIT") or "SET LOCAL" in q["sql"] for q in queries.captured_queries)
    assert Prediction.objects.get().status == "ok"


def test_it_reads_only_what_an_invocation_needs_of_the_model(api_as, running_model, fake_docker):
    with CaptureQueriesContext(connection) as queries:
        assert _invoke(api_as("alice"), running_model).status_code == 200
    model_reads = [q["sql"] for q in queries.captured_queries if 'FROM "mlmodels_mlmodel"' in q["sql"]]
    assert len(model_reads) == 1 and '"environment"' not in model_reads[0] and "JOIN" not in model_reads[0]


def test_a_jwt_call_reads_its_user_with_the_model_in_one_statement(running_model, alice, fake_docker):
    with CaptureQueriesContext(connection) as queries:
        response = _invoke(_jwt(alice), running_model)
    assert response.status_code == 200
    sql = [q["sql"] for q in queries.captured_queries]
    assert len(sql) == 2, sql  # the read, then the prediction
    assert 'FROM "mlmodels_mlmodel"' in sql[0] and 'FROM "accounts_user"' in sql[0]
    assert sql[1].startswith('INSERT INTO "mlmodels_prediction"')
    prediction = Prediction.objects.get()
    assert prediction.user == alice and response["X-Prediction-Id"] == str(prediction.pk)


@pytest.mark.parametrize(("change", "message"), [("block", "User is inactive"), ("delete", "User not found")])
def test_a_jwt_of_a_user_blocked_or_deleted_since_is_refused_before_the_model_is_called(
        running_model, alice, fake_docker, change, message):
    client = _jwt(alice)
    if change == "block":
        alice.is_active = False
        alice.save(update_fields=["is_active"])
    else:
        alice.delete()
    for model_id in (running_model.pk, running_model.pk + 1000):  # whether the model exists or not
        response = client.generic("POST", f"/api/models/{model_id}/invocations/", b"[]",
                                  content_type="application/json")
        assert response.status_code == 401 and response.json()["detail"] == message
    assert fake_docker.invocations == [] and not Prediction.objects.exists()


@pytest.mark.parametrize("model_id", ["999999", "abc", "99999999999999999999", "\u0663"])
def test_a_jwt_call_to_a_model_that_does_not_exist_is_404(running_model, alice, fake_docker, model_id):
    response = _jwt(alice).generic("POST", f"/api/models/{model_id}/invocations/", b"[]",
                                   content_type="application/json")
    assert response.status_code == 404 and fake_docker.invocations == []


@on_postgresql
def test_it_sends_the_answer_before_recording_the_prediction(running_model, alice, fake_docker):
    """As a WSGI server runs the app: the answer's bytes are sent, then ``close`` is called;
    the prediction's id is in the answer and its row is written at the close."""
    environ = RequestFactory().generic("POST", f"/api/models/{running_model.pk}/invocations/", b'["H2O"]',
                                       content_type="application/json",
                                       HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(alice)}").environ
    started = []
    # a server's request signals would close the test's connection (it is in a transaction)
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        answer = WSGIHandler()(environ, lambda status, headers: started.append((status, dict(headers))))
        body = b"".join(answer)
        status, headers = started[0]
        assert status.startswith("200") and json.loads(body) == json.loads(fake_docker.invoke_reply.body)
        assert not Prediction.objects.filter(pk=headers["X-Prediction-Id"]).exists()
        answer.close()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
    prediction = Prediction.objects.get(pk=headers["X-Prediction-Id"])
    assert prediction.status == "ok" and prediction.user == alice and prediction.input == ["H2O"]


@on_postgresql
def test_an_answer_whose_record_fails_is_still_given_and_the_failure_logged(
        running_model, alice, fake_docker, monkeypatch, caplog):
    def refuse(*args, **kwargs):
        raise DatabaseError("could not extend file: No space left on device")

    monkeypatch.setattr(Prediction, "save", refuse)
    response = _invoke(_jwt(alice), running_model)
    assert response.status_code == 200 and response.content == fake_docker.invoke_reply.body
    assert f"prediction {response['X-Prediction-Id']} of model energy answered but not recorded" in caplog.text
    assert "No space left on device" in caplog.text


def test_it_passes_the_body_and_content_type_through(api_as, running_model, fake_docker):
    fake_docker.invoke_reply = docker.Reply(200, b"energy\n-463.5\n", "text/csv", 2.0)
    response = _invoke(api_as("alice"), running_model, b"H2O\n", "text/csv", HTTP_ACCEPT="text/csv")
    assert response.status_code == 200 and response.content == b"energy\n-463.5\n"
    assert response["Content-Type"] == "text/csv"
    assert fake_docker.invocations == [(running_model.address, b"H2O\n", "text/csv")]
    prediction = Prediction.objects.get()
    assert response["X-Prediction-Id"] == str(prediction.pk) and prediction.output == "energy\n-463.5\n"


def test_it_takes_a_jwt_or_a_session(running_model, alice, fake_docker):
    client = Client()
    token = client.post("/api/auth/token/", {"username": "alice", "password": PASSWORD},
                        content_type="application/json").json()["access"]
    assert _invoke(Client(), running_model, HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200
    session = Client()
    session.force_login(alice)
    assert _invoke(session, running_model).status_code == 200
    assert _invoke(Client(), running_model).status_code == 401


def test_it_refuses_a_session_post_without_the_csrf_token(running_model, alice):
    session = Client(enforce_csrf_checks=True)
    session.force_login(alice)
    response = _invoke(session, running_model)
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]


def test_it_answers_413_for_a_body_over_the_limit(settings, api_as, running_model, fake_docker):
    settings.MODEL_MAX_PAYLOAD_BYTES = 1024
    response = _invoke(api_as("alice"), running_model, b"[" + b"1," * 600 + b"1]")
    assert response.status_code == 413 and "1024" in response.json()["detail"]
    assert fake_docker.invocations == [] and not Prediction.objects.exists()


def test_it_answers_503_with_retry_after_while_starting(api_as, alice, make_model, fake_docker):
    model = services.start_model(actor=alice, model=make_model())
    fake_docker.ping_reply = docker.Ping(False, 503, 1, "/ping answered 503: loading")
    response = _invoke(api_as("alice"), model)
    assert response.status_code == 503 and response["Retry-After"] == "1"
    assert "is starting" in response.json()["detail"]


def test_it_answers_503_for_a_stopped_model(api_as, make_model):
    response = _invoke(api_as("alice"), make_model())
    assert response.status_code == 503 and "is stopped: start it first" in response.json()["detail"]


def test_it_answers_400_with_the_models_message_when_it_rejects_the_input(api_as, running_model, fake_docker):
    fake_docker.invoke_reply = docker.Reply(400, b'{"error": "invalid JSON: Expecting value"}', "application/json", 1)
    response = _invoke(api_as("alice"), running_model, b"not json")
    assert response.status_code == 400
    data = response.json()
    assert data["detail"] == "Model energy rejected the input (HTTP 400): invalid JSON: Expecting value"
    assert data["model_status"] == 400 and data["prediction"] == Prediction.objects.get().pk


def test_it_answers_502_with_the_models_message_when_it_fails(api_as, running_model, fake_docker):
    fake_docker.invoke_reply = docker.Reply(500, b'{"error": "boom"}', "application/json", 1)
    response = _invoke(api_as("alice"), running_model)
    assert response.status_code == 502 and response.json()["detail"] == "Model energy failed (HTTP 500): boom"
    fake_docker.invoke_reply = docker.ContainerTimeout("The model did not answer within 60 s.")
    response = _invoke(api_as("alice"), running_model)
    assert response.status_code == 502 and "did not answer within 60 s" in response.json()["detail"]


# --- Predictions and heartbeats ------------------------------------------------------------


def test_it_lists_a_users_own_predictions_and_all_to_moderators(api_as, running_model, alice, bob, root):
    for actor in (alice, bob, alice):
        invocations.invoke(actor=actor, model=running_model, body=b'["H2O"]', content_type="application/json")
    url = f"/api/models/{running_model.pk}/predictions/"
    mine = api_as("alice").get(url).json()
    assert mine["count"] == 2 and {p["user"] for p in mine["results"]} == {"alice"}
    assert mine["results"][0]["input"] == ["H2O"] and mine["results"][0]["model_version"] == "1.0"
    assert api_as("mod").get(url).json()["count"] == 3
    assert api_as("root").get(url + "?status=error").json()["count"] == 0


def test_it_lists_predictions_in_constant_queries(api_as, running_model, alice, django_assert_max_num_queries):
    for _ in range(5):
        invocations.invoke(actor=alice, model=running_model, body=b"[]", content_type="application/json")
    with django_assert_max_num_queries(4):
        assert api_as("mod").get(f"/api/models/{running_model.pk}/predictions/").json()["count"] == 5


def test_it_graphs_the_models_heartbeats(api_as, running_model):
    now = timezone.now()
    ModelHeartbeat.objects.create(model=running_model, time=now - timedelta(minutes=5), ok=True, latency_ms=1.0)
    ModelHeartbeat.objects.create(model=running_model, time=now - timedelta(minutes=5), ok=False)
    response = api_as("alice").get(f"/api/models/{running_model.pk}/heartbeats/?window=hour&max_points=61")
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["step"] == 60
    ok = [p for p in data["points"] if p["samples"] == 2]
    assert len(ok) == 1 and ok[0]["uptime"] == 0.5 and ok[0]["latency_ms"] == 1.0


@pytest.mark.parametrize("query", ["window=year", "window=hour&start=2026-01-01T00:00:00Z", "end=2026-01-01T00:00Z",
                                   "start=2026-01-02T00:00:00Z&end=2026-01-01T00:00:00Z", "max_points=1"])
def test_it_refuses_a_bad_graph_window(api_as, running_model, query):
    response = api_as("alice").get(f"/api/models/{running_model.pk}/heartbeats/?{query}")
    assert response.status_code == 400, json.dumps(response.json())


# --- predictions of a calculation, compared with its DFT result ----------------------------------

ANSWER = docker.Reply(200, json.dumps({"predictions": [-463.5], "target": "energies.total"}).encode(),
                      "application/json", 1.0)


@pytest.fixture
def dft_calc(db):
    from calculations.models import Calculation
    from tests.factories import ClusterFactory, UserFactory

    return Calculation.objects.create(name="water scf", owner=UserFactory(), cluster=ClusterFactory(),
                                      engine="siesta", inputs_hash="w", state="running")


def test_it_records_the_calculation_a_prediction_is_for(api_as, running_model, fake_docker, dft_calc):
    fake_docker.invoke_reply = ANSWER
    response = api_as("alice").generic("POST", f"/api/models/{running_model.pk}/invocations/?calculation={dft_calc.pk}",
                                       b'{"instances": ["H2O"]}', content_type="application/json")
    assert response.status_code == 200
    assert Prediction.objects.get().calculation_id == dft_calc.pk
    listed = api_as("alice").get(f"/api/models/{running_model.pk}/predictions/").json()["results"]
    assert listed[0]["calculation"] == dft_calc.pk


@pytest.mark.parametrize("value", ["999999", "x", "-1", str(2**40)])
def test_it_refuses_an_unknown_calculation_before_calling_the_model(api_as, running_model, fake_docker, value):
    response = api_as("alice").generic("POST", f"/api/models/{running_model.pk}/invocations/?calculation={value}",
                                       b'{"instances": ["H2O"]}', content_type="application/json")
    assert response.status_code == 400 and "calculation" in response.json()
    assert fake_docker.invocations == [] and not Prediction.objects.exists()


@pytest.mark.parametrize(("output", "extracted", "expected"), [
    ({"predictions": [-463.5], "target": "energies.total"}, {"energies": {"total": -465.0}},
     {"target": "energies.total", "predicted": -463.5, "dft": -465.0, "difference": 1.5}),
    ({"predictions": [-463.5], "target": "energies.total"}, None,
     {"target": "energies.total", "predicted": -463.5, "dft": None, "difference": None}),  # not in yet
    ({"predictions": [-1.0, -2.0], "target": "energies.total"}, {"energies": {"total": -1.0}}, None),
    ({"predictions": [True], "target": "energies.total"}, {"energies": {"total": -1.0}}, None),
    ({"predictions": [-1.0]}, {"energies": {"total": -1.0}}, None),
    ("plain text", {"energies": {"total": -1.0}}, None),
])
def test_it_compares_a_single_predicted_value_with_the_dft_target(output, extracted, expected):
    assert dft_comparison(Prediction(output=output), extracted) == expected


def test_the_calculation_page_shows_its_predictions_beside_the_dft_result(page_as, running_model, fake_docker,
                                                                         dft_calc):
    from calculations.models import Result

    fake_docker.invoke_reply = ANSWER
    invocations.invoke(actor=dft_calc.owner, model=running_model, body=b'{"instances": ["H2O"]}',
                    content_type="application/json", calculation=dft_calc)
    page = page_as("alice").get(f"/calculations/{dft_calc.pk}/").content.decode()
    assert "ML predictions of this calculation" in page and "not yet" in page
    Result.objects.create(calculation=dft_calc, attempt=1, step=0, key="extracted",
                          data={"energies": {"total": -465.0}})
    page = page_as("alice").get(f"/calculations/{dft_calc.pk}/").content.decode()
    row = re.search(r"<tr><td>[^<]*</td><td>" + running_model.name + r".*?</tr>", page, re.S).group(0)
    assert re.findall(r'<td class="num">([^<]+)</td>', row) == ["-463.5", "-465.0", "1.5"]
