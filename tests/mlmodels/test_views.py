"""The Models pages against the fake engine: the list, a model's page (health graph,
predictions, the prediction form), start and stop, and the admins' register, edit, delete."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from mlmodels import docker, invocations
from mlmodels.models import MLModel, ModelHeartbeat, Prediction

pytestmark = pytest.mark.django_db

FORM = {"name": "energy", "description": "", "image": "energy:1", "version": "2.0", "environment": '{"THREADS": "2"}',
        "example_input": '{"instances": ["H2O"]}', "memory_mb": "256", "cpus": "0.5", "start_timeout": "60",
        "dataset_snapshot": ""}


def _predict(client, model, text):
    return client.post(f"/models/{model.pk}/", {"input": text})


# --- Who may do what ------------------------------------------------------------------------


def test_it_sends_anonymous_visitors_to_sign_in(page_as, make_model):
    model = make_model()
    client = page_as("anon")
    for url in ("/models/", f"/models/{model.pk}/", "/models/new/", f"/models/{model.pk}/edit/"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), url
    for url in (f"/models/{model.pk}/start/", f"/models/{model.pk}/delete/", f"/models/{model.pk}/"):
        assert client.post(url, {"input": "{}"}).status_code == 302, url
    model.refresh_from_db()
    assert model.state == MLModel.State.STOPPED and not Prediction.objects.exists()


@pytest.mark.parametrize("persona", ["alice", "mod"])
def test_it_hides_and_refuses_register_edit_and_delete_to_non_admins(page_as, make_model, persona, fake_docker):
    model = make_model()
    client = page_as(persona)
    page = client.get("/models/").content.decode() + client.get(f"/models/{model.pk}/").content.decode()
    assert "Register a model" not in page and "/edit/" not in page and "/delete/" not in page
    assert ">Start</button>" in page  # users start and stop models
    assert client.get("/models/new/").status_code == 403
    assert client.post("/models/new/", {**FORM, "name": "other"}).status_code == 403
    assert client.get(f"/models/{model.pk}/edit/").status_code == 403
    assert client.post(f"/models/{model.pk}/edit/", {**FORM, "description": "mine"}).status_code == 403
    assert client.post(f"/models/{model.pk}/delete/", {"remove_image": "on"}).status_code == 403
    assert list(MLModel.objects.values_list("name", "description")) == [("energy", "")]
    assert fake_docker.removed_images == []


def test_it_shows_register_edit_and_delete_to_admins(page_as, make_model):
    model = make_model()
    client = page_as("root")
    assert "Register a model" in client.get("/models/").content.decode()
    detail = client.get(f"/models/{model.pk}/").content.decode()
    assert f"/models/{model.pk}/edit/" in detail and f"/models/{model.pk}/delete/" in detail
    assert client.get("/models/new/").status_code == 200


def test_it_answers_404_for_an_unknown_model_or_action(page_as, make_model):
    model = make_model()
    client = page_as("alice")
    assert client.get("/models/999/").status_code == 404
    assert client.post("/models/999/start/").status_code == 404
    assert client.post(f"/models/{model.pk}/explode/").status_code == 404
    assert client.get(f"/models/{model.pk}/start/").status_code == 405


# --- The list ---------------------------------------------------------------------------------


def test_it_lists_models_with_their_state_and_health(page_as, running_model, make_model):
    MLModel.objects.filter(pk=running_model.pk).update(restart_count=3)
    make_model("idle")
    page = page_as("bob").get("/models/").content.decode()
    assert "energy" in page and "idle" in page
    assert 'class="badge state-running">running' in page and 'class="badge state-stopped">stopped' in page
    assert "<td>3</td>" in page and "ago</time> ok" in page and "never" in page


def test_it_lists_5_and_50_models_in_the_same_number_of_queries(page_as, make_model, django_assert_max_num_queries):
    client = page_as("alice")
    counts = []
    for total in (5, 50):
        for n in range(MLModel.objects.count(), total):
            make_model(f"m{n:02d}")
        with CaptureQueriesContext(connection) as ctx:
            response = client.get("/models/")
        assert response.status_code == 200 and response.content.decode().count("<tr>") == total + 1
        counts.append(len(ctx))
    assert counts[0] == counts[1]
    with django_assert_max_num_queries(5):
        client.get("/models/")


# --- Start and stop ---------------------------------------------------------------------------


def test_it_lets_a_user_start_and_stop_a_model(page_as, make_model, fake_docker):
    model = make_model()
    client = page_as("alice")
    response = client.post(f"/models/{model.pk}/start/", {"next": "list"}, follow=True)
    assert response.redirect_chain[-1][0] == "/models/"
    assert "Model energy is starting." in response.content.decode()
    model.refresh_from_db()
    assert model.state == MLModel.State.STARTING and fake_docker.running() == [model.container_id]
    response = client.post(f"/models/{model.pk}/stop/", follow=True)
    assert response.redirect_chain[-1][0] == f"/models/{model.pk}/"
    model.refresh_from_db()
    assert model.state == MLModel.State.STOPPED and fake_docker.running() == []


def test_it_shows_why_a_model_could_not_start(page_as, make_model, fake_docker):
    model = make_model()
    fake_docker.images.clear()
    response = page_as("alice").post(f"/models/{model.pk}/start/", follow=True)
    assert "Could not start model energy: Image energy:1 is not on the Docker engine" in response.content.decode()
    model.refresh_from_db()
    assert model.state == MLModel.State.STOPPED


# --- Register, edit, delete (admins) ------------------------------------------------------------


def test_it_registers_a_model_from_the_form(page_as, fake_docker, root):
    response = page_as("root").post("/models/new/", FORM)
    model = MLModel.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/models/{model.pk}/"
    assert (model.environment, model.example_input, model.memory_mb, model.cpus) == (
        {"THREADS": "2"}, {"instances": ["H2O"]}, 256, 0.5)
    assert model.created_by == root and model.dataset_snapshot is None and model.state == "stopped"


def test_it_keeps_bad_json_and_an_unknown_image_next_to_their_fields(page_as, fake_docker):
    client = page_as("root")
    response = client.post("/models/new/", {**FORM, "environment": '{"THREADS": 2'})
    assert response.status_code == 400
    assert "Enter a valid JSON." in response.content.decode() and "{&quot;THREADS&quot;: 2</textarea>" in (
        response.content.decode())
    response = client.post("/models/new/", {**FORM, "image": "missing:1"})
    assert response.status_code == 400
    assert response.context["form"].errors["image"] == [
        "Image missing:1 is not on the Docker engine: build it there, or pull it, first."]
    response = client.post("/models/new/", {**FORM, "environment": '{"SAGEMAKER_BIND_TO_PORT": "1"}'})
    assert "siestaflow sets SAGEMAKER_BIND_TO_PORT itself." in response.context["form"].errors["environment"]
    assert not MLModel.objects.exists()


def test_it_edits_a_model_but_not_the_image_of_a_running_one(page_as, running_model):
    client = page_as("root")
    url = f"/models/{running_model.pk}/edit/"
    response = client.post(url, {**FORM, "version": "1.0", "environment": "{}", "memory_mb": "",
                                 "cpus": "", "start_timeout": "120", "description": "Ridge on composition"})
    assert response.status_code == 302, response.context["form"].errors
    running_model.refresh_from_db()
    assert running_model.description == "Ridge on composition"
    response = client.post(url, {**FORM, "image": "energy:2"})
    assert response.status_code == 400 and "Stop model energy before changing its" in response.content.decode()
    running_model.refresh_from_db()
    assert running_model.image == "energy:1"


def test_it_deletes_a_model_with_its_container_and_image_on_request(page_as, running_model, fake_docker):
    container = running_model.container_id
    response = page_as("root").post(f"/models/{running_model.pk}/delete/", {"remove_image": "on"})
    assert response.status_code == 302 and response["Location"] == "/models/"
    assert not MLModel.objects.exists()
    assert container in fake_docker.stopped and fake_docker.removed_images == ["energy:1"]


def test_it_keeps_a_model_the_engine_could_not_stop(page_as, running_model, fake_docker):
    fake_docker.available = False
    response = page_as("root").post(f"/models/{running_model.pk}/delete/", follow=True)
    assert "Model energy was not deleted: No Docker engine answers" in response.content.decode()
    assert MLModel.objects.filter(pk=running_model.pk, state="running").exists()


# --- A model's page: health, predictions, the prediction form ------------------------------------


def test_it_graphs_the_models_heartbeats(page_as, running_model):
    now = timezone.now()
    ModelHeartbeat.objects.bulk_create([
        ModelHeartbeat(model=running_model, time=now - timedelta(minutes=m), ok=m != 30,
                       status=200 if m != 30 else None, latency_ms=0.5 + m / 100 if m != 30 else None)
        for m in range(1, 60)])
    page = page_as("alice").get(f"/models/{running_model.pk}/").content.decode()
    assert 'class="heartbeats"' in page and '<polyline class="latency"' in page
    assert page.count('<rect class="failed"') == 1
    assert "60 pings, 98.3 % answered 200" in page  # 59 here and the one of the readiness check
    day = page_as("alice").get(f"/models/{running_model.pk}/?window=day").content.decode()
    assert "Pings over the last day" in day


def test_it_says_when_there_are_no_pings(page_as, make_model):
    page = page_as("alice").get(f"/models/{make_model().pk}/").content.decode()
    assert "No pings in the last hour" in page and "<svg" not in page


def test_it_prefills_the_prediction_form_with_the_example_input(page_as, make_model):
    model = make_model(example_input={"instances": ["H2O"]})
    page = page_as("alice").get(f"/models/{model.pk}/").content.decode()
    assert '{\n  &quot;instances&quot;: [\n    &quot;H2O&quot;\n  ]\n}</textarea>' in page


def test_it_predicts_from_the_page_through_the_proxys_service(page_as, running_model, fake_docker, alice):
    response = _predict(page_as("alice"), running_model, '{"instances": ["CH4"]}')
    assert response.status_code == 200
    page = response.content.decode()
    prediction = Prediction.objects.get()
    assert "The model's answer" in page and "&quot;predictions&quot;: [\n    1.5\n  ]" in page
    assert f"Recorded as prediction {prediction.pk}." in page
    assert (prediction.user, prediction.status, prediction.input) == (alice, "ok", {"instances": ["CH4"]})
    assert fake_docker.invocations[-1][1:] == (b'{"instances": ["CH4"]}', "application/json")


def test_it_keeps_bad_json_typed_in_the_prediction_form(page_as, running_model, fake_docker):
    calls = len(fake_docker.invocations)
    response = _predict(page_as("alice"), running_model, '{"instances": [H2O]}')
    assert response.status_code == 400
    page = response.content.decode()
    assert "Enter a valid JSON." in page and "{&quot;instances&quot;: [H2O]}</textarea>" in page
    assert len(fake_docker.invocations) == calls and not Prediction.objects.exists()


def test_it_shows_the_models_error_on_the_page(page_as, running_model, fake_docker):
    fake_docker.invoke_reply = docker.Reply(500, b'{"error": "boom: NaN in layer 3"}', "application/json", 2.0)
    response = _predict(page_as("alice"), running_model, '{"instances": ["H2O"]}')
    assert response.status_code == 502
    assert "Model energy failed (HTTP 500): boom: NaN in layer 3" in response.content.decode()
    assert Prediction.objects.get().status == "error"


def test_it_says_a_stopped_model_must_be_started_first(page_as, make_model):
    model = make_model()
    response = _predict(page_as("alice"), model, '{"instances": ["H2O"]}')
    assert response.status_code == 503 and "Model energy is stopped: start it first." in response.content.decode()
    assert "&quot;H2O&quot;\n  ]\n}</textarea>" in response.content.decode()  # the input stays in the form
    assert not Prediction.objects.exists()


def test_it_shows_users_their_own_predictions_and_moderators_all(page_as, running_model, alice, bob):
    for user, text in ((alice, "alice-input"), (bob, "bob-input")):
        invocations.invoke(actor=user, model=running_model, body=f'["{text}"]'.encode(),
                           content_type="application/json")
    url = f"/models/{running_model.pk}/"
    alices = page_as("alice").get(url).content.decode()
    assert "alice-input" in alices and "bob-input" not in alices
    mods = page_as("mod").get(url).content.decode()
    assert "alice-input" in mods and "bob-input" in mods
