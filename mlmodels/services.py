"""Every change to ML models: registering (admins), starting and stopping (users), the
supervisor's step, readiness, and the health graph (invocations: ``mlmodels.invocations``).

Views, the API, the admin and the tasks parse input and call these. State changes are
conditional updates (``filter(pk, state, container_id).update(...)``): when another
process changed the model meanwhile, the loser cleans up the container it made and the
row keeps the winner's truth. Nothing here sleeps: waiting is the tasks' countdown.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.utils import timezone

from accounts import permissions as perms
from accounts.emails import send_templated
from accounts.models import User
from mlmodels import docker
from mlmodels.models import MLModel, ModelHeartbeat

log = logging.getLogger(__name__)
State = MLModel.State

EDITABLE_FIELDS = ("name", "description", "image", "version", "environment", "example_input", "memory_mb",
                   "cpus", "start_timeout", "dataset_snapshot")
# What the running container was made from: changed only while the model has no container.
RUNTIME_FIELDS = ("image", "version", "environment", "memory_mb", "cpus")
PING_TIMEOUT = 2.0  # seconds: a ready server answers /ping in well under a millisecond
READY_INVOKE_TIMEOUT = 10.0  # seconds for the example input during readiness
MAX_BACKOFF = 3600  # seconds between restarts at most
REAP_AFTER = timedelta(minutes=2)  # an unknown container this old is an orphan (not one being started)


class WrongState(Exception):
    """The model's state does not allow this (answered 409)."""

    http_status = 409


# --- Helpers ------------------------------------------------------------------------------


def _check_manager(actor) -> None:
    if not perms.can_manage_models(actor):
        raise PermissionDenied("Only admins register, edit and delete ML models.")


def _check_user(actor) -> None:
    if not perms.can_use_science(actor):
        raise PermissionDenied("Sign in to use ML models.")


def _editable(fields: dict[str, Any]) -> dict[str, Any]:
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise TypeError(f"not editable model fields: {', '.join(sorted(unknown))}")
    return fields


def owner_label() -> str:
    """Labels this siestaflow's containers (its database), so that siestaflows sharing an
    engine (or parallel test runs) never take each other's containers for orphans."""
    s = connection.settings_dict
    key = f"{connection.vendor}:{s.get('HOST')}:{s.get('PORT')}:{s['NAME']}"
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _fresh(model: MLModel) -> MLModel:
    return MLModel.objects.get(pk=model.pk)


def _update(model: MLModel, *, expect_state: str, expect_container: str, **fields) -> bool:
    """Write ``fields`` if the model still is in ``expect_state`` with ``expect_container``;
    False when another process changed it first (then ``model`` is left as it was)."""
    fields["updated_at"] = timezone.now()
    changed = MLModel.objects.filter(pk=model.pk, state=expect_state, container_id=expect_container).update(**fields)
    if changed:
        for name, value in fields.items():
            setattr(model, name, value)
    return bool(changed)


def _enqueue(task, *args) -> None:
    """After commit; a broker outage must never break the change that asked for it."""

    def send():
        try:
            task.delay(*args)
        except Exception:  # kombu raises many kinds of errors when the broker is down
            log.exception("could not enqueue %s%r", task.name, args)

    transaction.on_commit(send)


def _enqueue_ready(model_id: int) -> None:
    from mlmodels.tasks import await_ready

    _enqueue(await_ready, model_id)


def _run(model: MLModel) -> docker.Started:
    """A new container for the model (its name is unique: a leftover never blocks a start)."""
    ports = [m.port for m in MLModel.objects.exclude(address="").exclude(pk=model.pk).only("address")]
    return docker.run_model(
        name=f"siestaflow-model-{model.pk}-{timezone.now():%Y%m%d%H%M%S%f}", image=model.image,
        environment=model.environment, memory_mb=model.memory_mb, cpus=model.cpus, avoid_ports=ports,
        labels={docker.LABEL_MODEL: str(model.pk), docker.LABEL_OWNER: owner_label(),
                "org.siestaflow.model-name": model.name})


def _check_image(image: str) -> None:
    """The image must be on the engine; when no engine answers, the start will tell."""
    try:
        exists = docker.image_exists(image)
    except docker.DockerUnavailable as exc:
        log.warning("cannot check image %s: %s", image, exc)
        return
    if not exists:
        raise ValidationError({"image": f"Image {image} is not on the Docker engine: build it there, or pull "
                                        "it, first."})


# --- Registry (admins) --------------------------------------------------------------------


def register_model(*, actor, name: str, image: str, **fields) -> MLModel:
    """Register a model image (admins only). The image must be on the engine already:
    siestaflow never pulls (checked when an engine answers). It starts stopped."""
    _check_manager(actor)
    model = MLModel(name=name, image=image, created_by=actor if getattr(actor, "pk", None) else None,
                    **_editable(fields))
    model.full_clean()
    _check_image(image)
    model.save()
    return model


def update_model(*, actor, model: MLModel, **fields) -> MLModel:
    """Change a model's description, example, limits... (admins only). What its container is
    made of (image, version, environment, limits) changes only while it has no container."""
    _check_manager(actor)
    fields = _editable(fields)
    current = _fresh(model)
    changes = {k: v for k, v in fields.items() if getattr(current, k) != v}
    if set(changes) & set(RUNTIME_FIELDS) and current.state not in MLModel.STARTABLE:
        raise WrongState(f"Stop model {current.name} before changing its "
                         f"{', '.join(sorted(set(changes) & set(RUNTIME_FIELDS)))}.")
    for name, value in changes.items():
        setattr(current, name, value)
    current.full_clean()
    if "image" in changes:
        _check_image(current.image)
    current.save()
    return current


def delete_model(*, actor, model: MLModel, remove_image: bool = False) -> None:
    """Stop its container, optionally remove its image from the engine (unless another model
    uses it), and delete the model with its heartbeats (admins only). Its predictions stay."""
    _check_manager(actor)
    model = stop_model(actor=actor, model=model)
    if remove_image and not MLModel.objects.filter(image=model.image).exclude(pk=model.pk).exists():
        docker.remove_image(model.image)
    model.delete()


# --- Start and stop (users) ---------------------------------------------------------------


def start_model(*, actor, model: MLModel) -> MLModel:
    """Run the model's container; it is ``starting`` until its server answers /ping with 200
    (and, with an example input, answers it with 2xx). Starting a model that is already
    starting, running or being restarted changes nothing."""
    _check_user(actor)
    model = _fresh(model)
    if model.state not in MLModel.STARTABLE:
        return model
    try:
        started = _run(model)
    except docker.DockerError as exc:
        if not isinstance(exc, docker.DockerUnavailable):
            MLModel.objects.filter(pk=model.pk).update(last_error=f"Could not start: {exc}")
        raise
    now = timezone.now()
    if not _update(model, expect_state=model.state, expect_container=model.container_id, state=State.STARTING,
                   container_id=started.container_id, address=started.address, started_at=now,
                   start_deadline_at=now + timedelta(seconds=model.start_timeout), ready_at=None, stopped_at=None,
                   last_ping_at=None, last_ping_ok=None, restart_count=0, failure_times=[], next_restart_at=None,
                   alerted_at=None, last_error=""):
        docker.kill(started.container_id)  # someone else started (or stopped) it meanwhile
        return _fresh(model)
    _enqueue_ready(model.pk)
    return model


def stop_model(*, actor, model: MLModel) -> MLModel:
    """Stop its container (SIGTERM, SIGKILL after MODEL_STOP_TIMEOUT), remove it, and mark the
    model stopped. Stopping a stopped model changes nothing."""
    _check_user(actor)
    for _ in range(3):
        model = _fresh(model)
        if model.state == State.STOPPED and not model.container_id:
            return model
        if model.container_id:
            docker.stop(model.container_id)
        if _update(model, expect_state=model.state, expect_container=model.container_id, state=State.STOPPED,
                   container_id="", address="", stopped_at=timezone.now(), start_deadline_at=None,
                   next_restart_at=None, last_ping_ok=None):
            return model
    raise WrongState(f"Model {model.name} kept changing while stopping: try again.")


# --- Health: readiness, supervision, restarts, crash loops -------------------------------


def backoff_seconds(failures: int) -> int:
    """Wait before the restart after the ``failures``-th recent failure: at once after the
    first, then MODEL_PING_INTERVAL doubling each time, at most an hour."""
    if failures <= 1:
        return 0
    return min(settings.MODEL_PING_INTERVAL * 2 ** (failures - 2), MAX_BACKOFF)


def _record_ping(model: MLModel, ping: docker.Ping, now: datetime) -> None:
    ModelHeartbeat.objects.create(model=model, time=now, ok=ping.ok, latency_ms=ping.latency_ms, status=ping.status)
    MLModel.objects.filter(pk=model.pk).update(last_ping_at=now, last_ping_ok=ping.ok)
    model.last_ping_at, model.last_ping_ok = now, ping.ok


def _readiness(model: MLModel) -> tuple[bool, str, docker.Ping]:
    """Ready: /ping answers 200 and, with an example input, the example answers 2xx."""
    ping = docker.ping(model.address, timeout=PING_TIMEOUT)
    if not ping.ok or model.example_input is None:
        return ping.ok, ping.error, ping
    try:
        reply = docker.invoke(model.address, json.dumps(model.example_input).encode(),
                              content_type="application/json",
                              timeout=min(settings.MODEL_INVOKE_TIMEOUT, READY_INVOKE_TIMEOUT),
                              max_bytes=settings.MODEL_MAX_PAYLOAD_BYTES)
    except docker.ContainerHTTPError as exc:
        return False, f"the example input failed: {exc}", ping
    if not reply.ok:
        return False, f"the example input answered {reply.status}: {reply.message()}", ping
    return True, "", ping


def _container_gone(model: MLModel, container: docker.ContainerState) -> str:
    logs = ""
    if container.status != "missing":
        try:
            logs = docker.logs_tail(model.container_id, 10)
        except docker.DockerError:
            logs = ""
    return f"The container {container.describe()}." + (f" Its last output:\n{logs}" if logs else "")


def _supervise_starting(model: MLModel, now: datetime) -> MLModel:
    container = docker.inspect(model.container_id)
    if not container.running:
        return _failure(model, now, _container_gone(model, container))
    ready, reason, ping = _readiness(model)
    _record_ping(model, ping, now)
    if ready:
        _update(model, expect_state=State.STARTING, expect_container=model.container_id, state=State.RUNNING,
                ready_at=now, last_error="")
    elif model.start_deadline_at and now >= model.start_deadline_at:
        old = model.container_id
        docker.kill(old)
        _update(model, expect_state=State.STARTING, expect_container=old, state=State.FAILED, container_id="",
                address="", start_deadline_at=None,
                last_error=f"Not ready within {model.start_timeout} s: {reason}")
    elif model.last_error != f"Not ready yet: {reason}":
        _update(model, expect_state=State.STARTING, expect_container=model.container_id,
                last_error=f"Not ready yet: {reason}")
    return model


def _supervise_running(model: MLModel, now: datetime) -> MLModel:
    ping = docker.ping(model.address, timeout=PING_TIMEOUT)
    _record_ping(model, ping, now)
    if ping.ok:
        return model
    try:
        container = docker.inspect(model.container_id)
    except docker.DockerUnavailable as exc:
        # No engine to restart it with: say so, and restart when the engine is back.
        _update(model, expect_state=State.RUNNING, expect_container=model.container_id, state=State.UNHEALTHY,
                next_restart_at=now, last_error=f"{ping.error}; and {exc}")
        raise
    reason = ping.error if container.running else _container_gone(model, container)
    return _failure(model, now, reason)


def _supervise_unhealthy(model: MLModel, now: datetime) -> MLModel:
    if model.next_restart_at is None or now >= model.next_restart_at:
        return _restart(model, now)
    ping = docker.ping(model.address, timeout=PING_TIMEOUT)  # waiting for the backoff: recovered?
    _record_ping(model, ping, now)
    if ping.ok:
        _update(model, expect_state=State.UNHEALTHY, expect_container=model.container_id, state=State.RUNNING,
                next_restart_at=None, last_error="")
    return model


def _failure(model: MLModel, now: datetime, reason: str) -> MLModel:
    """Count a failure: a crash loop after MODEL_CRASH_LOOP_FAILURES of them within
    MODEL_CRASH_LOOP_WINDOW seconds; else unhealthy, restarted after the backoff."""
    window = settings.MODEL_CRASH_LOOP_WINDOW
    failures = [*model.recent_failures(now - timedelta(seconds=window)), now.isoformat()]
    old = model.container_id
    if len(failures) >= settings.MODEL_CRASH_LOOP_FAILURES:
        docker.kill(old)
        if _update(model, expect_state=model.state, expect_container=old, state=State.CRASH_LOOP, container_id="",
                   address="", failure_times=failures, next_restart_at=None, start_deadline_at=None,
                   last_error=f"{len(failures)} failures within {window} s; the last: {reason}"):
            from mlmodels.tasks import mail_crash_loop

            _enqueue(mail_crash_loop, model.pk)
        return model
    delay = backoff_seconds(len(failures))
    if _update(model, expect_state=model.state, expect_container=old, state=State.UNHEALTHY, failure_times=failures,
               next_restart_at=now + timedelta(seconds=delay), last_error=reason) and delay == 0:
        return _restart(model, now)
    return model


def _restart(model: MLModel, now: datetime) -> MLModel:
    """Replace the container by a new one (SIGKILL: it failed, nothing to shut down gently)."""
    old = model.container_id
    if old:
        docker.kill(old)
    try:
        started = _run(model)
    except docker.ImageNotFound as exc:
        _update(model, expect_state=model.state, expect_container=old, state=State.FAILED, container_id="",
                address="", next_restart_at=None, last_error=f"Could not restart: {exc}")
        return model
    except docker.DockerUnavailable:
        raise
    except docker.DockerError as exc:
        return _failure(model, now, f"Could not restart: {exc}")
    if not _update(model, expect_state=model.state, expect_container=old, state=State.STARTING,
                   container_id=started.container_id, address=started.address, started_at=now, ready_at=None,
                   start_deadline_at=now + timedelta(seconds=model.start_timeout), next_restart_at=None,
                   restart_count=model.restart_count + 1):
        docker.kill(started.container_id)  # stopped (or restarted) by someone else meanwhile
        return _fresh(model)
    _enqueue_ready(model.pk)
    return model


SUPERVISORS = {State.STARTING: _supervise_starting, State.RUNNING: _supervise_running,
               State.UNHEALTHY: _supervise_unhealthy}


def supervise_model(*, model_id: int, now: datetime | None = None) -> MLModel | None:
    """One supervision step of one model: check readiness (starting), ping (running), restart
    when due (unhealthy). Models without a container, or gone, are left alone."""
    model = MLModel.objects.filter(pk=model_id).first()
    if model is None or model.state not in SUPERVISORS:
        return model
    return SUPERVISORS[model.state](model, now or timezone.now())


def check_ready(*, model_id: int, now: datetime | None = None) -> MLModel | None:
    """The readiness step of a starting model (any other model is left alone)."""
    model = MLModel.objects.filter(pk=model_id).first()
    if model is None or model.state != State.STARTING:
        return model
    return _supervise_starting(model, now or timezone.now())


def supervise_all(*, now: datetime | None = None) -> dict[str, int]:
    """One beat tick: a supervision step for every model with a container, then orphan
    containers removed and old heartbeats pruned. Returns how many models ended in each state."""
    now = now or timezone.now()
    outcome: Counter[str] = Counter()
    for model_id in MLModel.objects.supervised().order_by("pk").values_list("pk", flat=True):
        try:
            model = supervise_model(model_id=model_id, now=now)
        except docker.DockerError as exc:
            log.warning("supervising model %s: %s", model_id, exc)
            outcome["engine_error"] += 1
            continue
        if model is not None:
            outcome[model.state] += 1
    try:
        outcome["orphans_removed"] = reap_orphans(now=now)
    except docker.DockerError as exc:
        log.warning("looking for orphan containers: %s", exc)
    prune_heartbeats(now=now)
    return dict(outcome)


def reap_orphans(*, now: datetime) -> int:
    """Remove this siestaflow's model containers that no model refers to (left by a crash
    between starting a container and recording it), once they are REAP_AFTER old."""
    known = set(MLModel.objects.exclude(container_id="").values_list("container_id", flat=True))
    removed = 0
    for listed in docker.list_model_containers(owner_label()):
        if listed.container_id not in known and listed.created and listed.created < now - REAP_AFTER:
            docker.kill(listed.container_id)
            removed += 1
    return removed


def prune_heartbeats(*, now: datetime, every: int = 3600) -> int:
    """Delete heartbeats older than HEARTBEAT_RAW_RETENTION_DAYS, at most once per ``every`` s."""
    if not cache.add(f"mlmodels:prune-heartbeats:{owner_label()}", 1, every):
        return 0
    cutoff = now - timedelta(days=settings.HEARTBEAT_RAW_RETENTION_DAYS)
    deleted = 0
    for model_id in MLModel.objects.values_list("pk", flat=True):
        deleted += ModelHeartbeat.objects.filter(model_id=model_id, time__lt=cutoff).delete()[0]
    return deleted


def mail_crash_loop(*, model_id: int) -> int:
    """E-mail the admins (unless their level is off) that the model is in a crash loop; once."""
    with transaction.atomic():
        model = (MLModel.objects.select_for_update()
                 .filter(pk=model_id, state=State.CRASH_LOOP, alerted_at__isnull=True).first())
        if model is None:
            return 0  # gone, started again, or already mailed
        admins = User.objects.admins().exclude(email="").exclude(notify_level=User.NotifyLevel.OFF)
        context = {"model": model, "failures": len(model.failure_times), "window": settings.MODEL_CRASH_LOOP_WINDOW,
                   "path": f"/admin/mlmodels/mlmodel/{model.pk}/change/"}
        sent = sum(send_templated("model-crash-loop", [admin.email], {**context, "user": admin}) for admin in admins)
        model.alerted_at = timezone.now()
        model.save(update_fields=["alerted_at"])
    return sent


# --- Graphs -------------------------------------------------------------------------------


def series(*, model: MLModel, start: datetime, end: datetime, max_points: int = 300) -> dict[str, Any]:
    """The model's pings over [start, end) in at most ``max_points`` points: per bucket, how
    many pings, how many answered 200 (``uptime`` is their share) and their mean and max
    latency. The database buckets them on the (model, time) index."""
    from clusters.models import epoch_to_datetime

    if end <= start:
        raise ValidationError({"end": "The end must come after the start."})
    if max_points < 2:
        raise ValidationError({"max_points": "Ask for at least 2 points."})
    step = max(1, math.ceil((end - start).total_seconds() / (max_points - 1)))
    rows = ModelHeartbeat.objects.bucketed(model_id=model.pk, start=start, end=end, step=step)
    points = [{"time": epoch_to_datetime(row["slot"]), "samples": row["samples"], "ok": row["ok"],
               "uptime": row["ok"] / row["samples"], "latency_ms": row["latency_mean"],
               "latency_ms_max": row["latency_max"]} for row in rows]
    return {"step": step, "start": start, "end": end, "points": points}
