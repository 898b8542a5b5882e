"""ML models against a real Docker engine: the example image built offline by
``examples/models/build.sh`` and a misbehaving one (``tests/mlmodels/misbehaving``).

The Celery countdowns are played by the tests: they call the supervision code itself
(``services.check_ready``, ``tasks.supervise``, ``tasks.mail_crash_loop``) until the model
reaches the state under test. Without an engine these skip, unless SIESTAFLOW_REQUIRE_DOCKER=1.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable

import pytest

from mlmodels import docker, services, tasks
from mlmodels.models import MLModel, Prediction
from tests.mlmodels.conftest import docker_cli

pytestmark = [pytest.mark.docker, pytest.mark.django_db]
State = MLModel.State
H2O = {"instances": ["H2O"]}

# Run inside a container: SIGKILL its server (tini, PID 1, then exits with the child's 137).
# argv[1] is the script the kernel ran through the shebang; the killer's own argv never matches.
KILL_SERVER = """
import os, signal
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\\0")
    except OSError:
        continue
    if int(pid) != os.getpid() and len(argv) > 1 and argv[1] == b"/opt/program/serve":
        os.kill(int(pid), signal.SIGKILL)
"""


def until(step: Callable[[], object], model: MLModel, states: set[str], timeout: float = 15) -> MLModel:
    """Run ``step`` (a supervision step) every 0.1 s until the model is in one of ``states``."""
    deadline = time.monotonic() + timeout
    while True:
        step()
        model.refresh_from_db()
        if model.state in states:
            return model
        assert time.monotonic() < deadline, f"still {model.state} after {timeout} s: {model.last_error}"
        time.sleep(0.1)


def ready(model: MLModel) -> MLModel:
    """What the await_ready task does, until the starting model is running (or not)."""
    return until(lambda: services.check_ready(model_id=model.pk), model, {State.RUNNING, State.FAILED})


def started(api_as, model: MLModel, user: str = "alice") -> MLModel:
    response = api_as(user).post(f"/api/models/{model.pk}/start/")
    assert response.status_code == 200, response.content
    assert response.json()["state"] == "starting"
    return ready(model)


def invoke(api_as, model: MLModel, body, user: str = "alice", content_type: str = "application/json"):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return api_as(user).generic("POST", f"/api/models/{model.pk}/invocations/", data, content_type=content_type)


def engine_state(container_id: str) -> str:
    return docker.inspect(container_id).status


@pytest.fixture
def example_model(real_engine, example_image, root) -> MLModel:
    return services.register_model(actor=root, name="energy", image=example_image, version="1.0",
                                   example_input=H2O, start_timeout=20)


@pytest.fixture
def misbehaving(real_engine, misbehaving_image, root) -> Callable[..., MLModel]:
    def make(mode: str, **fields) -> MLModel:
        environment = {"MODE": mode, **fields.pop("environment", {})}
        return services.register_model(actor=root, name=f"misbehaving-{mode}", image=misbehaving_image,
                                       environment=environment, **fields)

    return make


# --- Register, start, readiness, predict ------------------------------------------------------


def test_it_refuses_to_register_an_image_the_engine_does_not_have(real_engine, api_as):
    response = api_as("root").post("/api/models/", {"name": "ghost", "image": "siestaflow-no-such-image:1"},
                                   format="json")
    assert response.status_code == 400 and "not on the Docker engine" in response.json()["image"][0]
    assert not MLModel.objects.exists()


def test_it_says_why_published_ports_fail_on_an_engine_without_a_bridge(api_as, example_model, settings):
    settings.MODEL_NETWORK_MODE = "published"  # this engine runs with --bridge=none
    response = api_as("alice").post(f"/api/models/{example_model.pk}/start/")
    assert response.status_code == 502 and "use MODEL_NETWORK_MODE=host" in response.json()["detail"]
    example_model.refresh_from_db()
    assert example_model.state == State.STOPPED and example_model.container_id == ""
    assert "Could not start: The engine published no host port" in example_model.last_error
    assert docker.list_model_containers(services.owner_label()) == []  # the container was removed again


def test_it_starts_the_example_model_and_finds_it_ready(api_as, example_model):
    model = started(api_as, example_model)
    assert model.state == State.RUNNING, model.last_error
    assert engine_state(model.container_id) == "running"
    assert docker.ping(model.address).status == 200
    # ready means the example input was answered too: here it is, asked directly
    reply = docker.invoke(model.address, json.dumps(H2O).encode(), content_type="application/json", timeout=5,
                          max_bytes=10_000)
    assert reply.ok and json.loads(reply.body)["target"] == "energies.total"
    assert model.heartbeats.filter(ok=True).exists() and model.last_ping_ok is True


def test_it_predicts_through_the_proxy_and_records_the_prediction(api_as, example_model, alice):
    model = started(api_as, example_model)
    response = invoke(api_as, model, {"instances": ["H2O", {"species": ["C", "H", "H", "H", "H"]}]})
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    predictions = response.json()["predictions"]
    assert len(predictions) == 2 and -470 < predictions[0] < -455 and -215 < predictions[1] < -205
    recorded = Prediction.objects.get(pk=response["X-Prediction-Id"])
    assert (recorded.user, recorded.model_version, recorded.status, recorded.http_status) == (alice, "1.0", "ok", 200)
    assert recorded.input["instances"][0] == "H2O" and recorded.output["predictions"] == predictions


def test_it_passes_the_models_refusal_of_bad_input_on_as_400(api_as, example_model, settings):
    model = started(api_as, example_model)
    response = invoke(api_as, model, {"instances": ["XeF2"]})
    assert response.status_code == 400
    assert "elements not in the training data: F, Xe" in response.json()["detail"]
    assert response.json()["model_status"] == 400
    response = invoke(api_as, model, b"H2O", content_type="text/plain")
    assert response.status_code == 400 and "send application/json" in response.json()["detail"]
    settings.MODEL_MAX_PAYLOAD_BYTES = 1024
    response = invoke(api_as, model, {"instances": ["H2O"] * 300})
    assert response.status_code == 413
    assert Prediction.objects.filter(model=model).count() == 2  # the refused bodies; not the oversized one
    model.refresh_from_db()
    assert model.state == State.RUNNING


def test_it_predicts_from_the_models_page(api_as, page_as, example_model, bob):
    model = started(api_as, example_model)
    page = page_as("bob").get(f"/models/{model.pk}/").content.decode()
    assert "&quot;H2O&quot;" in page  # the form is prefilled with the example input
    response = page_as("bob").post(f"/models/{model.pk}/", {"input": '{"instances": ["NH3"]}'})
    assert response.status_code == 200
    assert "&quot;target&quot;: &quot;energies.total&quot;" in response.content.decode()
    assert Prediction.objects.get(user=bob).output["model"] == "ridge-composition"
    response = page_as("bob").post(f"/models/{model.pk}/", {"input": '{"instances": ["Xe"]}'})
    assert response.status_code == 400
    assert "elements not in the training data: Xe" in response.content.decode()


# --- Supervision ----------------------------------------------------------------------------


def test_it_restarts_a_model_whose_server_was_killed(api_as, example_model):
    model = started(api_as, example_model)
    first = model.container_id
    docker_cli("exec", first, "python3", "-c", KILL_SERVER, check=False)  # killed too, as the container ends
    assert docker_cli("wait", first).stdout.strip() == "137"  # tini exits with its killed child

    model = until(tasks.supervise, model, {State.STARTING, State.RUNNING})
    assert model.restart_count == 1 and model.container_id != first
    assert "exited with code 137" in model.last_error
    assert engine_state(first) == "missing"  # the dead container was removed
    model = ready(model)
    assert model.state == State.RUNNING
    assert invoke(api_as, model, H2O).status_code == 200


def test_it_puts_a_model_that_keeps_dying_in_a_crash_loop_and_mails_the_admins(
        misbehaving, api_as, settings, enqueued, mailoutbox, django_capture_on_commit_callbacks):
    settings.MODEL_CRASH_LOOP_FAILURES = 3
    settings.MODEL_PING_INTERVAL = 1  # backoff: at once, then 1 s
    model = misbehaving("die")
    assert api_as("bob").post(f"/api/models/{model.pk}/start/").status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        model = until(tasks.supervise, model, {State.CRASH_LOOP})
    assert model.restart_count == 2 and len(model.failure_times) == 3
    assert "3 failures within 600 s" in model.last_error and "exited with code 3" in model.last_error
    assert "misbehaving: dying at once" in model.last_error  # the container's last output
    assert model.container_id == "" and docker.list_model_containers(services.owner_label()) == []
    assert enqueued.of("mlmodels.tasks.mail_crash_loop") == [(model.pk,)]

    assert tasks.mail_crash_loop(model.pk) == 1
    assert tasks.mail_crash_loop(model.pk) == 0  # once
    assert [m.to for m in mailoutbox] == [["root@example.org"]]
    assert "misbehaving-die" in mailoutbox[0].subject
    assert invoke(api_as, model, H2O).status_code == 503


def test_it_fails_a_model_that_never_becomes_ready_with_the_reason(misbehaving, api_as):
    model = misbehaving("never-ready", start_timeout=1)
    model = started(api_as, model)
    assert model.state == State.FAILED
    assert model.last_error == "Not ready within 1 s: /ping answered 503: still loading the weights"
    assert model.container_id == "" and docker.list_model_containers(services.owner_label()) == []
    response = invoke(api_as, model, H2O)
    assert response.status_code == 503 and "still loading the weights" in response.json()["detail"]


# --- A model's errors -----------------------------------------------------------------------


def test_it_answers_502_with_the_models_message_when_it_fails(misbehaving, api_as):
    model = started(api_as, misbehaving("error"))
    response = invoke(api_as, model, H2O)
    assert response.status_code == 502
    assert response.json()["detail"] == ("Model misbehaving-error failed (HTTP 500): boom: the model crashed on "
                                         "this input")
    recorded = Prediction.objects.get(pk=response.json()["prediction"])
    assert (recorded.status, recorded.http_status) == ("error", 500)
    model.refresh_from_db()
    assert model.state == State.RUNNING  # one bad answer says nothing about its health


def test_it_answers_502_when_the_model_times_out(misbehaving, api_as, settings):
    settings.MODEL_INVOKE_TIMEOUT = 1
    model = started(api_as, misbehaving("slow", environment={"SLOW_SECONDS": "10"}))
    began = time.monotonic()
    response = invoke(api_as, model, H2O)
    assert time.monotonic() - began < 5  # cut at 1 s, not waited for the 10 s
    assert response.status_code == 502 and "did not answer within 1 s" in response.json()["detail"]
    assert Prediction.objects.get(pk=response.json()["prediction"]).status == "error"


# --- Stop and delete ------------------------------------------------------------------------


def test_it_stops_with_sigterm_and_kills_after_the_timeout(api_as, example_model, misbehaving, settings):
    settings.MODEL_STOP_TIMEOUT = 3
    polite = started(api_as, example_model)
    stubborn = started(api_as, misbehaving("stubborn"))
    timings = {}
    for model in (polite, stubborn):
        container, began = model.container_id, time.monotonic()
        response = api_as("alice").post(f"/api/models/{model.pk}/stop/")
        timings[model.name] = time.monotonic() - began
        assert response.status_code == 200 and response.json()["state"] == "stopped"
        assert engine_state(container) == "missing"
        model.refresh_from_db()
        assert (model.container_id, model.address) == ("", "")
    assert timings["energy"] < 2.5  # it exits on SIGTERM, long before the SIGKILL
    assert 3 <= timings["misbehaving-stubborn"] < 10  # it ignores SIGTERM: SIGKILL after 3 s


def test_it_deletes_the_container_and_on_request_the_image(api_as, example_image, real_engine, root):
    image = f"siestaflow-delete-me:{uuid.uuid4().hex[:12]}"
    docker_cli("tag", example_image, image)
    model = started(api_as, services.register_model(actor=root, name="doomed", image=image))
    container = model.container_id
    assert api_as("alice").delete(f"/api/models/{model.pk}/?remove_image=true").status_code == 403
    assert engine_state(container) == "running"

    assert api_as("root").delete(f"/api/models/{model.pk}/?remove_image=true").status_code == 204
    assert engine_state(container) == "missing"
    assert not docker.image_exists(image) and docker.image_exists(example_image)
    assert not MLModel.objects.filter(pk=model.pk).exists()
