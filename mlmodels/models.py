"""ML models: Docker images following SageMaker's bring-your-own-container contract, their
runtime state, their health history and every prediction made through siestaflow.

State of a model (only ``mlmodels.services`` writes it)::

    stopped ──start──► starting ──/ping 200 (+ example answered)──► running
       ▲                  │  │                                      │  ▲
       │             deadline │ container died        ping failed / │  │ ping ok again
       │                  ▼  ▼                        container died ▼  │
       │               failed  unhealthy ◄──────────────────────────────┘
       │                          │  restart when next_restart_at is due (exponential backoff)
       │                          ▼  ──► starting
       │                      crash_loop  (MODEL_CRASH_LOOP_FAILURES failures within
       │                                   MODEL_CRASH_LOOP_WINDOW seconds: admins mailed)
       └──stop (from any state); start again from stopped, failed or crash_loop
"""

from __future__ import annotations

import re
from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Avg, Count, Max, Q

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Set by siestaflow for each container (in host network mode): a model may not override them.
RESERVED_ENV = frozenset({"SAGEMAKER_BIND_TO_PORT", "MODEL_SERVER_HOST"})
# name[:tag][@digest], with an optional registry host and path (a loose check: the engine decides).
IMAGE_REFERENCE = re.compile(r"^[a-z0-9]+([._-]{1,2}[a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-]{1,2}[a-z0-9]+)*)*"
                             r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$")


class MLModelQuerySet(models.QuerySet):
    def visible_to(self, user) -> MLModelQuerySet:
        """Every signed-in user sees every model (they all may use them)."""
        from accounts.permissions import can_use_science

        return self if can_use_science(user) else self.none()

    def supervised(self) -> MLModelQuerySet:
        """Models with a container that the supervisor watches."""
        return self.filter(state__in=MLModel.SUPERVISED)


class MLModel(models.Model):
    """A model image registered by an admin, and the container siestaflow runs from it."""

    class State(models.TextChoices):
        STOPPED = "stopped", "Stopped"  # no container
        STARTING = "starting", "Starting"  # container started; not yet answering /ping 200 (and the example)
        RUNNING = "running", "Running"  # ready: takes invocations; pinged every MODEL_PING_INTERVAL
        UNHEALTHY = "unhealthy", "Unhealthy"  # failed a ping or its container died; restarts at next_restart_at
        CRASH_LOOP = "crash_loop", "Crash loop"  # failed too often: no more restarts, admins mailed
        FAILED = "failed", "Failed"  # did not start, or not ready by its deadline; container removed

    SUPERVISED = (State.STARTING, State.RUNNING, State.UNHEALTHY)
    STARTABLE = (State.STOPPED, State.FAILED, State.CRASH_LOOP)

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    image = models.CharField(max_length=255, help_text="The Docker image, e.g. energy-model:1.2 (never pulled).")
    version = models.CharField(max_length=64, blank=True, help_text="The model's version, kept with predictions.")
    environment = models.JSONField(default=dict, blank=True, help_text="Variables for the container: names to text.")
    example_input = models.JSONField(
        null=True, blank=True,
        help_text="A JSON body the model must answer with 2xx before it counts as ready (optional).")
    memory_mb = models.PositiveIntegerField(null=True, blank=True, validators=[MinValueValidator(16)],
                                            help_text="Memory limit in MiB (none: no limit).")
    cpus = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0.01), MaxValueValidator(256)],
                             help_text="CPU limit, e.g. 0.5 (none: no limit).")
    start_timeout = models.PositiveIntegerField(
        default=120, validators=[MinValueValidator(1), MaxValueValidator(3600)],
        help_text="Seconds a start may take until ready; then the model fails.")
    dataset_snapshot = models.JSONField(
        null=True, blank=True, help_text="Which dataset export it was trained on (e.g. file, sha256, rows).")

    state = models.CharField(max_length=16, choices=State.choices, default=State.STOPPED)
    container_id = models.CharField(max_length=64, blank=True)
    address = models.CharField(max_length=100, blank=True, help_text="host:port of the container's server.")
    started_at = models.DateTimeField(null=True, blank=True)
    start_deadline_at = models.DateTimeField(null=True, blank=True)
    ready_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    last_ping_at = models.DateTimeField(null=True, blank=True)
    last_ping_ok = models.BooleanField(null=True, blank=True)
    restart_count = models.PositiveIntegerField(default=0, help_text="Restarts by the supervisor since the start.")
    failure_times = models.JSONField(default=list, blank=True,
                                     help_text="ISO times of recent failures (the crash-loop window).")
    next_restart_at = models.DateTimeField(null=True, blank=True)
    alerted_at = models.DateTimeField(null=True, blank=True, help_text="When admins were mailed about a crash loop.")
    last_error = models.TextField(blank=True)

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = MLModelQuerySet.as_manager()

    class Meta:
        verbose_name = "ML model"
        indexes = [models.Index(fields=["state"], name="mlmodels_model_state")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors = {}
        if self.image and not IMAGE_REFERENCE.match(self.image):
            errors["image"] = "Not a Docker image reference (name[:tag] or name@sha256:...)."
        if not isinstance(self.environment, dict):
            errors["environment"] = "Give an object of variable names to text values."
        else:
            bad = [k for k, v in self.environment.items() if not ENV_NAME.match(str(k)) or not isinstance(v, str)]
            reserved = sorted(RESERVED_ENV & set(self.environment))
            if bad:
                errors["environment"] = f"Names are letters, digits and _ and values are text: {', '.join(bad)}."
            elif reserved:
                errors["environment"] = f"siestaflow sets {', '.join(reserved)} itself."
        if errors:
            raise ValidationError(errors)

    @property
    def is_ready(self) -> bool:
        return self.state == self.State.RUNNING

    @property
    def port(self) -> int | None:
        """The host port of its server (None without a container)."""
        return int(self.address.rsplit(":", 1)[1]) if ":" in self.address else None

    def recent_failures(self, since: datetime) -> list[str]:
        return [t for t in self.failure_times if datetime.fromisoformat(t) > since]


class HeartbeatQuerySet(models.QuerySet):
    def bucketed(self, *, model_id: int, start: datetime, end: datetime, step: int):
        """Per ``step``-second bucket of [start, end): ``slot`` (epoch seconds), ``samples``,
        ``ok`` (pings answered 200), mean and max latency of the answered ones."""
        from clusters.models import EpochBucket

        return (self.filter(model_id=model_id, time__gte=start, time__lt=end)
                .annotate(slot=EpochBucket("time", step=step)).values("slot")
                .annotate(samples=Count("pk"), ok=Count("pk", filter=Q(ok=True)),
                          latency_mean=Avg("latency_ms"), latency_max=Max("latency_ms"))
                .order_by("slot"))


class ModelHeartbeat(models.Model):
    """One ping of a model's container by the supervisor."""

    model = models.ForeignKey(MLModel, on_delete=models.CASCADE, related_name="heartbeats",
                              db_index=False)  # the (model, time) index serves it
    time = models.DateTimeField()
    ok = models.BooleanField()
    latency_ms = models.FloatField(null=True, blank=True)
    status = models.PositiveSmallIntegerField(null=True, blank=True, help_text="HTTP status of /ping, if any.")

    objects = HeartbeatQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["model", "time"], name="mlmodels_hb_model_time")]

    def __str__(self) -> str:
        return f"{self.model_id} @ {self.time:%Y-%m-%d %H:%M:%S} {'ok' if self.ok else 'failed'}"


class PredictionQuerySet(models.QuerySet):
    def visible_to(self, user) -> PredictionQuerySet:
        """Moderators and admins see every prediction (audit); users see their own."""
        from accounts.permissions import can_use_science, is_moderator

        if is_moderator(user):
            return self
        return self.filter(user=user) if can_use_science(user) else self.none()


class Prediction(models.Model):
    """One invocation through siestaflow: who asked which model (and version) what, and the
    answer, kept for audit and for comparing with DFT results. It outlives its model."""

    class Status(models.TextChoices):
        OK = "ok", "OK"  # the model answered 2xx
        REJECTED = "rejected", "Rejected"  # the model answered 4xx: bad input
        ERROR = "error", "Error"  # 5xx, no answer in time, unreachable, or an answer too large

    model = models.ForeignKey(MLModel, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="predictions", db_index=False)  # (model, created_at) index
    model_name = models.CharField(max_length=100)
    model_version = models.CharField(max_length=64, blank=True)
    image = models.CharField(max_length=255)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="+", db_index=False)  # (user, created_at) index
    calculation = models.ForeignKey("calculations.Calculation", null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="predictions", db_index=False,  # (calculation, created_at) index
                                    help_text="The calculation whose DFT result this predicts, if any.")
    content_type = models.CharField(max_length=255, blank=True)
    input = models.JSONField(null=True, blank=True, help_text="The body (JSON, or its text when not JSON).")
    output = models.JSONField(null=True, blank=True, help_text="The model's answer (JSON, or its text).")
    status = models.CharField(max_length=10, choices=Status.choices)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True, help_text="The model's HTTP status.")
    error = models.TextField(blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = PredictionQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["model", "-created_at"], name="mlmodels_pred_model_time"),
                   models.Index(fields=["user", "-created_at"], name="mlmodels_pred_user_time"),
                   models.Index(fields=["calculation", "-created_at"], name="mlmodels_pred_calc_time")]

    def __str__(self) -> str:
        return f"{self.model_name} {self.status} @ {self.created_at:%Y-%m-%d %H:%M:%S}"
