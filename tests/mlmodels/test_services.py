"""Services of ML models against a fake engine: registry, start/stop, readiness, supervision
(restarts with backoff, crash loops), invocations and the health graph."""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from mlmodels import docker, invocations, services, tasks
from mlmodels.models import MLModel, ModelHeartbeat, Prediction

State = MLModel.State


# --- Registry ---------------------------------------------------------------------------


def test_it_registers_a_model_stopped_for_admins_only(root, alice, mod, fake_docker):
    model = services.register_model(actor=root, name="energy", image="energy:1", version="1.0",
                                    environment={"THREADS": "2"}, dataset_snapshot={"sha256": "ab", "rows": 25})
    assert (model.state, model.created_by, model.dataset_snapshot["rows"]) == (State.STOPPED, root, 25)
    for actor in (alice, mod, None):
        with pytest.raises(PermissionDenied):
            services.register_model(actor=actor, name="x", image="energy:1")


def test_it_refuses_an_image_the_engine_does_not_have(root, fake_docker):
    with pytest.raises(ValidationError) as error:
        services.register_model(actor=root, name="energy", image="nope:1")
    assert "not on the Docker engine" in str(error.value.message_dict["image"])


def test_it_registers_without_checking_the_image_when_no_engine_answers(root, fake_docker):
    fake_docker.available = False
    assert services.register_model(actor=root, name="energy", image="later:1").pk


@pytest.mark.parametrize(("fields", "field"), [
    ({"image": "Not An Image"}, "image"),
    ({"environment": {"1BAD": "x"}}, "environment"),
    ({"environment": {"N": 3}}, "environment"),
    ({"environment": {"SAGEMAKER_BIND_TO_PORT": "9"}}, "environment"),
    ({"cpus": 0}, "cpus"),
    ({"memory_mb": 4}, "memory_mb"),
])
def test_it_validates_what_a_container_is_made_of(root, fake_docker, fields, field):
    fake_docker.images.add("Not An Image")
    with pytest.raises(ValidationError) as error:
        services.register_model(actor=root, **{"name": "m", "image": "energy:1", **fields})
    assert field in error.value.message_dict


def test_it_changes_the_image_only_without_a_container(root, running_model):
    with pytest.raises(services.WrongState, match="Stop model energy before changing its image"):
        services.update_model(actor=root, model=running_model, image="energy:2")
    services.update_model(actor=root, model=running_model, description="Ridge on composition")
    services.stop_model(actor=root, model=running_model)
    assert services.update_model(actor=root, model=running_model, image="energy:2").image == "energy:2"


def test_it_deletes_a_model_with_its_container_and_keeps_its_predictions(root, alice, running_model, fake_docker):
    invocations.invoke(actor=alice, model=running_model, body=b"[1]", content_type="application/json")
    container = running_model.container_id
    services.delete_model(actor=root, model=running_model, remove_image=True)
    assert container in fake_docker.stopped and fake_docker.removed_images == ["energy:1"]
    assert not MLModel.objects.exists()
    assert Prediction.objects.get().model_name == "energy"


def test_it_keeps_an_image_another_model_uses(root, make_model, fake_docker):
    first, _second = make_model("a"), make_model("b")
    services.delete_model(actor=root, model=first, remove_image=True)
    assert fake_docker.removed_images == []


def test_it_does_not_delete_a_model_whose_container_it_cannot_stop(root, running_model, fake_docker):
    fake_docker.available = False
    with pytest.raises(docker.DockerUnavailable):
        services.delete_model(actor=root, model=running_model)
    assert MLModel.objects.filter(pk=running_model.pk).exists()


# --- Start, stop, readiness ---------------------------------------------------------------


def test_it_starts_a_container_and_checks_readiness_after_commit(alice, make_model, fake_docker, enqueued,
                                                                   django_capture_on_commit_callbacks):
    model = make_model(start_timeout=30)
    with django_capture_on_commit_callbacks(execute=True):
        model = services.start_model(actor=alice, model=model)
    assert model.state == State.STARTING and fake_docker.running() == [model.container_id]
    assert model.address.startswith("127.0.0.1:") and model.start_deadline_at > timezone.now()
    assert enqueued.of("mlmodels.tasks.await_ready") == [(model.pk,)]


def test_it_passes_the_environment_and_labels_its_container(alice, make_model, fake_docker, monkeypatch):
    seen = {}
    original = fake_docker.run_model
    monkeypatch.setattr(docker, "run_model", lambda **kw: seen.update(kw) or original(**kw))
    model = make_model(environment={"THREADS": "2"}, memory_mb=256, cpus=0.5)
    services.start_model(actor=alice, model=model)
    assert seen["environment"] == {"THREADS": "2"} and (seen["memory_mb"], seen["cpus"]) == (256, 0.5)
    assert seen["labels"][docker.LABEL_MODEL] == str(model.pk)
    assert seen["labels"][docker.LABEL_OWNER] == services.owner_label()


def test_it_leaves_a_started_model_alone_when_started_again(alice, running_model, fake_docker):
    again = services.start_model(actor=alice, model=running_model)
    assert (again.state, again.container_id) == (State.RUNNING, running_model.container_id)
    assert len(fake_docker.containers) == 1


def test_it_keeps_a_model_stopped_when_its_image_is_gone(alice, make_model, fake_docker):
    model = make_model()
    fake_docker.images.clear()
    with pytest.raises(docker.ImageNotFound):
        services.start_model(actor=alice, model=model)
    model.refresh_from_db()
    assert model.state == State.STOPPED and "not on the Docker engine" in model.last_error


def test_it_is_ready_only_once_ping_answers_200(alice, make_model, fake_docker):
    model = services.start_model(actor=alice, model=make_model())
    fake_docker.ping_reply = docker.Ping(False, 503, 0.5, "/ping answered 503: loading")
    assert services.check_ready(model_id=model.pk).state == State.STARTING
    assert MLModel.objects.get().last_error == "Not ready yet: /ping answered 503: loading"
    fake_docker.ping_reply = None
    model = services.check_ready(model_id=model.pk)
    assert (model.state, model.last_error, model.last_ping_ok) == (State.RUNNING, "", True)
    assert list(ModelHeartbeat.objects.values_list("ok", flat=True).order_by("time", "pk")) == [False, True]


def test_it_needs_the_example_input_answered_to_be_ready(alice, make_model, fake_docker):
    model = services.start_model(actor=alice, model=make_model(example_input={"instances": ["H2O"]}))
    fake_docker.invoke_reply = docker.Reply(400, b'{"error": "unknown element"}', "application/json", 1)
    assert services.check_ready(model_id=model.pk).state == State.STARTING
    assert "the example input answered 400: unknown element" in MLModel.objects.get().last_error
    fake_docker.invoke_reply = docker.Reply(200, b'{"predictions": [-463.5]}', "application/json", 1)
    assert services.check_ready(model_id=model.pk).state == State.RUNNING
    assert fake_docker.invocations[-1][1] == b'{"instances": ["H2O"]}'


def test_it_fails_a_model_not_ready_by_its_deadline(alice, make_model, fake_docker):
    model = services.start_model(actor=alice, model=make_model(start_timeout=5))
    fake_docker.ping_reply = docker.Ping(False, 503, 0.5, "/ping answered 503: loading")
    model = services.check_ready(model_id=model.pk, now=timezone.now() + timedelta(seconds=6))
    assert (model.state, model.container_id, model.address) == (State.FAILED, "", "")
    assert model.last_error == "Not ready within 5 s: /ping answered 503: loading"
    assert fake_docker.containers == {}


def test_it_stops_a_model_and_removes_its_container(alice, running_model, fake_docker):
    container = running_model.container_id
    model = services.stop_model(actor=alice, model=running_model)
    assert (model.state, model.container_id, model.address) == (State.STOPPED, "", "")
    assert fake_docker.stopped == [container] and services.stop_model(actor=alice, model=model).state == State.STOPPED


def test_it_stops_the_container_the_supervisor_made_meanwhile(alice, running_model, fake_docker, monkeypatch):
    """A restart between reading the model and recording the stop must not orphan the new container."""
    real_stop, raced = fake_docker.stop, []

    def stop_racing_a_restart(container_id, *, timeout=None):
        real_stop(container_id)
        if not raced:  # the supervisor restarts it now, once
            raced.append(container_id)
            new = fake_docker.run_model(name="n", image="energy:1", environment={}, labels={})
            MLModel.objects.filter(pk=running_model.pk).update(container_id=new.container_id, address=new.address)

    monkeypatch.setattr(docker, "stop", stop_racing_a_restart)
    model = services.stop_model(actor=alice, model=running_model)
    assert model.state == State.STOPPED and fake_docker.containers == {}


# --- Supervision --------------------------------------------------------------------------


def test_it_pings_running_models_and_records_heartbeats(running_model, fake_docker):
    assert services.supervise_all() == {"running": 1, "orphans_removed": 0}
    beat = ModelHeartbeat.objects.order_by("-time", "-pk").first()
    assert (beat.ok, beat.status, beat.latency_ms) == (True, 200, 0.4)


def test_it_restarts_a_dead_container_at_once_the_first_time(running_model, fake_docker):
    fake_docker.crash(running_model.container_id)
    model = services.supervise_model(model_id=running_model.pk)
    assert (model.state, model.restart_count) == (State.STARTING, 1)
    assert model.container_id != running_model.container_id and fake_docker.running() == [model.container_id]
    assert "exited with code 137" in model.last_error and "Traceback: boom" in model.last_error
    assert services.supervise_model(model_id=model.pk).state == State.RUNNING


def test_it_restarts_a_hung_server_whose_container_still_runs(running_model, fake_docker):
    fake_docker.ping_reply = docker.Ping(False, None, None, "/ping did not answer within 2 s")
    model = services.supervise_model(model_id=running_model.pk)
    assert model.state == State.STARTING and running_model.container_id in fake_docker.killed
    assert model.last_error == "/ping did not answer within 2 s"


def test_it_backs_off_exponentially_between_restarts(settings, running_model, fake_docker):
    settings.MODEL_PING_INTERVAL, settings.MODEL_CRASH_LOOP_FAILURES = 10, 10
    assert [services.backoff_seconds(n) for n in range(1, 6)] == [0, 10, 20, 40, 80]
    now = timezone.now()
    fake_docker.crash(running_model.container_id)
    services.supervise_model(model_id=running_model.pk, now=now)  # 1st failure: restarted at once
    model = MLModel.objects.get()
    fake_docker.crash(model.container_id)
    model = services.supervise_model(model_id=model.pk, now=now + timedelta(seconds=1))  # 2nd: wait 10 s
    assert model.state == State.UNHEALTHY and model.next_restart_at == now + timedelta(seconds=11)
    assert services.supervise_model(model_id=model.pk, now=now + timedelta(seconds=5)).state == State.UNHEALTHY
    model = services.supervise_model(model_id=model.pk, now=now + timedelta(seconds=11))
    assert (model.state, model.restart_count) == (State.STARTING, 2)


def test_it_takes_an_unhealthy_model_back_when_it_answers_again_before_the_restart(settings, running_model,
                                                                                   fake_docker):
    settings.MODEL_CRASH_LOOP_FAILURES = 10
    MLModel.objects.filter(pk=running_model.pk).update(
        state=State.UNHEALTHY, next_restart_at=timezone.now() + timedelta(minutes=1))
    model = services.supervise_model(model_id=running_model.pk)
    assert (model.state, model.container_id) == (State.RUNNING, running_model.container_id)


def test_it_detects_a_crash_loop_and_mails_the_admins_once(settings, running_model, fake_docker, root, mod, enqueued,
                                                            django_capture_on_commit_callbacks):
    settings.MODEL_CRASH_LOOP_FAILURES, settings.MODEL_CRASH_LOOP_WINDOW = 3, 600
    now = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        for second in range(0, 100, 10):
            model = MLModel.objects.get()
            if model.state == State.CRASH_LOOP:
                break
            if model.container_id in fake_docker.containers:
                fake_docker.crash(model.container_id, code=3)
            services.supervise_all(now=now + timedelta(seconds=second))
    model = MLModel.objects.get()
    assert (model.state, model.container_id, len(model.failure_times)) == (State.CRASH_LOOP, "", 3)
    assert model.last_error.startswith("3 failures within 600 s; the last: The container exited with code 3.")
    assert fake_docker.containers == {}
    assert enqueued.of("mlmodels.tasks.mail_crash_loop") == [(model.pk,)]
    assert tasks.mail_crash_loop(model.pk) == 1 and tasks.mail_crash_loop(model.pk) == 0
    (message,) = mail.outbox
    assert message.to == [root.email] and message.subject == "[siestaflow] Model energy is in a crash loop"
    assert "failed 3 times within 600 seconds" in message.body and "exited with code 3" in message.body


def test_it_forgets_failures_older_than_the_window(settings, running_model, fake_docker):
    settings.MODEL_CRASH_LOOP_FAILURES, settings.MODEL_CRASH_LOOP_WINDOW, settings.MODEL_PING_INTERVAL = 2, 60, 1
    long_ago = (timezone.now() - timedelta(minutes=5)).isoformat()
    MLModel.objects.filter(pk=running_model.pk).update(failure_times=[long_ago])
    fake_docker.crash(running_model.container_id)
    model = services.supervise_model(model_id=running_model.pk)
    assert model.state == State.STARTING and len(model.failure_times) == 1


def test_it_starts_a_crash_looping_model_afresh(settings, alice, running_model, fake_docker):
    MLModel.objects.filter(pk=running_model.pk).update(state=State.CRASH_LOOP, container_id="", address="",
                                                        failure_times=["2026-01-01T00:00:00+00:00"] * 5,
                                                        alerted_at=timezone.now())
    model = services.start_model(actor=alice, model=running_model)
    assert (model.state, model.failure_times, model.alerted_at, model.restart_count) == (State.STARTING, [], None, 0)


def test_it_fails_a_model_whose_image_vanished_instead_of_restarting_it(running_model, fake_docker):
    fake_docker.images.clear()
    fake_docker.crash(running_model.container_id)
    model = services.supervise_model(model_id=running_model.pk)
    assert model.state == State.FAILED and "Could not restart" in model.last_error


def test_it_marks_a_model_unhealthy_when_neither_it_nor_the_engine_answer(running_model, fake_docker):
    fake_docker.ping_reply = docker.Ping(False, None, None, "/ping failed: refused")
    fake_docker.available = False
    assert services.supervise_all() == {"engine_error": 1}
    model = MLModel.objects.get()
    assert model.state == State.UNHEALTHY and "No Docker engine answers" in model.last_error


def test_it_removes_orphan_containers_only_once_they_are_old(running_model, fake_docker):
    now = timezone.now()
    fake_docker.listed = [docker.Listed(running_model.container_id, str(running_model.pk), now - timedelta(hours=1)),
                          docker.Listed("orphan-old", "99", now - timedelta(minutes=5)),
                          docker.Listed("being-started", "98", now - timedelta(seconds=5))]
    fake_docker.containers["orphan-old"] = fake_docker.containers[running_model.container_id].__class__(
        "orphan-old", "energy:1", "127.0.0.1:1", {})
    assert services.reap_orphans(now=now) == 1 and fake_docker.killed == ["orphan-old"]


def test_it_prunes_old_heartbeats_hourly(settings, running_model):
    from django.core.cache import cache

    cache.delete(f"mlmodels:prune-heartbeats:{services.owner_label()}")
    now = timezone.now()
    ModelHeartbeat.objects.create(model=running_model, time=now - timedelta(days=30), ok=True)
    ModelHeartbeat.objects.create(model=running_model, time=now, ok=True)
    assert services.prune_heartbeats(now=now) == 1
    ModelHeartbeat.objects.create(model=running_model, time=now - timedelta(days=30), ok=True)
    assert services.prune_heartbeats(now=now) == 0  # not again within the hour


def test_the_supervise_task_skips_while_a_tick_runs(running_model):
    from django.core.cache import cache

    lock = f"mlmodels:supervise:{services.owner_label()}"
    cache.delete(lock)
    assert tasks.supervise()["running"] == 1
    cache.add(lock, 1, 60)
    try:
        assert tasks.supervise() == {}
    finally:
        cache.delete(lock)


def test_the_readiness_task_checks_again_until_ready(alice, make_model, fake_docker, monkeypatch):
    later = []
    monkeypatch.setattr(tasks.await_ready, "apply_async", lambda args, countdown: later.append((args, countdown)))
    model = services.start_model(actor=alice, model=make_model())
    fake_docker.ping_reply = docker.Ping(False, 503, 1, "/ping answered 503")
    assert tasks.await_ready(model.pk) == "starting" and later == [((model.pk,), 1.0)]
    fake_docker.ping_reply = None
    assert tasks.await_ready(model.pk) == "running" and len(later) == 1
    assert tasks.await_ready(12345) is None


# --- Invocations --------------------------------------------------------------------------


def test_it_forwards_an_invocation_and_records_the_prediction(alice, running_model, fake_docker):
    result = invocations.invoke(actor=alice, model=running_model, body=b'{"instances": ["H2O"]}',
                             content_type="application/json")
    assert result.reply.body == b'{"predictions": [1.5]}'
    assert fake_docker.invocations == [(running_model.address, b'{"instances": ["H2O"]}', "application/json")]
    p = result.prediction
    assert (p.model, p.model_version, p.user, p.status, p.http_status) == (running_model, "1.0", alice, "ok", 200)
    assert (p.input, p.output, p.latency_ms) == ({"instances": ["H2O"]}, {"predictions": [1.5]}, 3.0)


def test_it_keeps_text_of_non_json_bodies_and_a_summary_of_large_ones(alice, running_model):
    p = invocations.invoke(actor=alice, model=running_model, body=b"1,2,3", content_type="text/csv").prediction
    assert p.input == "1,2,3"
    big = b"[" + b"1," * 200_000 + b"1]"
    p = invocations.invoke(actor=alice, model=running_model, body=big, content_type="application/json").prediction
    assert p.input["truncated"] is True and p.input["bytes"] == len(big)


def test_it_refuses_a_body_over_the_limit(settings, alice, running_model, fake_docker):
    settings.MODEL_MAX_PAYLOAD_BYTES = 1024
    with pytest.raises(invocations.PayloadTooLarge):
        invocations.invoke(actor=alice, model=running_model, body=b"x" * 1025, content_type="text/plain")
    assert fake_docker.invocations == [] and not Prediction.objects.exists()


@pytest.mark.parametrize(("state", "retry_after", "text"), [
    (State.STOPPED, None, "is stopped: start it first"),
    (State.UNHEALTHY, 31, "is unhealthy"),
    (State.CRASH_LOOP, None, "crash loop"),
    (State.FAILED, None, "failed"),
])
def test_it_answers_not_ready_unless_running(alice, running_model, state, retry_after, text):
    MLModel.objects.filter(pk=running_model.pk).update(state=state,
                                                        next_restart_at=timezone.now() + timedelta(seconds=30))
    with pytest.raises(invocations.NotReady, match=text) as error:
        invocations.invoke(actor=alice, model=running_model, body=b"[]", content_type="application/json")
    assert error.value.retry_after in ((retry_after,) if retry_after is None else (retry_after, retry_after - 1))


def test_it_checks_a_starting_model_at_once_before_refusing(alice, make_model, fake_docker):
    model = services.start_model(actor=alice, model=make_model())
    assert invocations.invoke(actor=alice, model=model, body=b"[]", content_type="application/json").prediction.pk
    fake_docker.ping_reply = docker.Ping(False, 503, 1, "/ping answered 503")
    model = services.start_model(actor=alice, model=make_model("other"))
    with pytest.raises(invocations.NotReady, match="is starting") as error:
        invocations.invoke(actor=alice, model=model, body=b"[]", content_type="application/json")
    assert error.value.retry_after == 1


def test_it_answers_400_with_the_models_message_for_its_4xx(alice, running_model, fake_docker):
    fake_docker.invoke_reply = docker.Reply(415, b'{"error": "send application/json, not text/plain"}',
                                            "application/json", 1)
    with pytest.raises(invocations.InvocationFailed) as error:
        invocations.invoke(actor=alice, model=running_model, body=b"hello", content_type="text/plain")
    failed = error.value
    assert (failed.status, failed.model_status) == (400, 415)
    assert str(failed) == "Model energy rejected the input (HTTP 415): send application/json, not text/plain"
    assert (failed.prediction.status, failed.prediction.input) == ("rejected", "hello")


@pytest.mark.parametrize(("reply", "message"), [
    (docker.Reply(500, b'{"error": "boom"}', "application/json", 1), "Model energy failed (HTTP 500): boom"),
    (docker.Reply(503, b"<html>Bad Gateway</html>", "text/html", 1), "Model energy failed (HTTP 503): <html>"),
    (docker.ContainerTimeout("The model did not answer within 60 s."), "did not answer within 60 s"),
    (docker.ResponseTooLarge("The model's answer is over the 1024 bytes allowed."), "over the 1024 bytes"),
])
def test_it_answers_502_when_the_model_fails(alice, running_model, fake_docker, reply, message):
    fake_docker.invoke_reply = reply
    with pytest.raises(invocations.InvocationFailed, match=re.escape(message)) as error:
        invocations.invoke(actor=alice, model=running_model, body=b"[]", content_type="application/json")
    assert error.value.status == 502 and error.value.prediction.status == "error"


def test_it_supervises_at_once_a_model_that_stopped_accepting_connections(alice, running_model, fake_docker):
    fake_docker.crash(running_model.container_id)
    fake_docker.invoke_reply = docker.ContainerUnreachable("The model's server does not accept connections")
    with pytest.raises(invocations.InvocationFailed):
        invocations.invoke(actor=alice, model=running_model, body=b"[]", content_type="application/json")
    assert MLModel.objects.get().state == State.STARTING  # restarted, not left "running"


# --- Graph ----------------------------------------------------------------------------------


def test_it_buckets_heartbeats_into_uptime_and_latency(running_model):
    from datetime import UTC, datetime

    start = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    for second, ok, latency in [(0, True, 1.0), (20, True, 3.0), (40, False, None), (70, True, 2.0)]:
        ModelHeartbeat.objects.create(model=running_model, time=start + timedelta(seconds=second), ok=ok,
                                      latency_ms=latency)
    series = services.series(model=running_model, start=start, end=start + timedelta(minutes=2), max_points=3)
    assert series["step"] == 60
    first, second = series["points"]
    assert (first["samples"], first["ok"], first["uptime"], first["latency_ms"], first["latency_ms_max"]) == (
        3, 2, 2 / 3, 2.0, 3.0)
    assert (second["time"], second["samples"], second["uptime"]) == (start + timedelta(minutes=1), 1, 1.0)
    with pytest.raises(ValidationError):
        services.series(model=running_model, start=start, end=start)
