"""Clusters, the API keys of their agents, and the resource points their heartbeats report.

A cluster is a machine (or a Slurm installation) where one siestaflow agent runs
calculations. The agent signs its requests with an :class:`ApiKey`; only the SHA-256 of
the key is stored. Each heartbeat stores one :class:`Heartbeat` point; a periodic task
rolls them up into per-minute and per-hour :class:`HeartbeatRollup` means, which keep the
graphs of long windows cheap once the raw points are pruned.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Count, DurationField, ExpressionWrapper, F, Func, Q, Sum, Value
from django.db.models.functions import Cast, Coalesce
from django.utils import timezone

# A cluster is online while its last heartbeat is at most this many intervals old.
MISSED_INTERVALS = 3

# The resource metrics a heartbeat reports and the rollups average.
METRICS = ("cpu_percent", "memory_percent", "memory_used", "disk_free", "load_1", "running")


def hash_key(key: str) -> str:
    """The SHA-256 hex digest of a whole API key. A fast hash is right here: the key holds
    32 random bytes, so there is nothing to guess that a slow hash would protect."""
    return hashlib.sha256(key.encode()).hexdigest()


# --- Clusters -------------------------------------------------------------------------


class ClusterQuerySet(models.QuerySet):
    @staticmethod
    def _online_since(now: datetime | None):
        """Per row: the time of the oldest heartbeat that still counts as online."""
        # The interval (seconds) times a duration of MISSED_INTERVALS seconds; the plain
        # IntegerField type is what SQLite's duration arithmetic accepts.
        interval = ExpressionWrapper(F("heartbeat_interval"), output_field=models.IntegerField())
        silence = ExpressionWrapper(interval * Value(timedelta(seconds=MISSED_INTERVALS)),
                                    output_field=DurationField())
        return Value(now or timezone.now()) - silence

    def online(self, now: datetime | None = None) -> ClusterQuerySet:
        """Clusters whose last heartbeat is at most ``MISSED_INTERVALS`` intervals old."""
        return self.filter(last_heartbeat_at__gte=self._online_since(now))

    def offline(self, now: datetime | None = None) -> ClusterQuerySet:
        """Clusters never heard from, or silent for more than ``MISSED_INTERVALS`` intervals."""
        return self.filter(Q(last_heartbeat_at__isnull=True) | Q(last_heartbeat_at__lt=self._online_since(now)))


class Cluster(models.Model):
    """A place where calculations run, driven by one agent holding this cluster's API key."""

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    # A disabled cluster gets no new work; its agent still heartbeats and finishes its runs.
    enabled = models.BooleanField(default=True)
    max_concurrent = models.PositiveIntegerField(
        default=4, validators=[MinValueValidator(1), MaxValueValidator(10_000)],
        help_text="How many calculations the agent runs at once.")
    heartbeat_interval = models.PositiveIntegerField(
        "heartbeat interval (s)", default=10, validators=[MinValueValidator(1), MaxValueValidator(3600)],
        help_text="Seconds between two heartbeats of the agent.")
    # None: follow settings.REQUIRE_APPROVAL (see ``needs_approval``).
    requires_approval = models.BooleanField(
        null=True, blank=True, default=None,
        help_text="Whether calculations on this cluster need a moderator's approval "
                  "(empty: the site-wide setting).")
    # What the agent reports in each heartbeat.
    engines = models.JSONField(default=list, blank=True)
    analyses = models.JSONField(default=list, blank=True)
    agent_version = models.CharField(max_length=64, blank=True)
    last_heartbeat_at = models.DateTimeField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ClusterQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(max_concurrent__gte=1), name="cluster_max_concurrent_positive"),
            models.CheckConstraint(condition=Q(heartbeat_interval__gte=1),
                                   name="cluster_heartbeat_interval_positive"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def needs_approval(self) -> bool:
        """Whether new calculations on this cluster wait for a moderator."""
        if self.requires_approval is None:
            return settings.REQUIRE_APPROVAL
        return self.requires_approval

    def heartbeat_age(self, now: datetime | None = None) -> float | None:
        """Seconds since the last heartbeat (None if the agent never reported)."""
        if self.last_heartbeat_at is None:
            return None
        return ((now or timezone.now()) - self.last_heartbeat_at).total_seconds()

    @property
    def is_online(self) -> bool:
        """A heartbeat arrived within the last ``MISSED_INTERVALS`` heartbeat intervals."""
        age = self.heartbeat_age()
        return age is not None and age <= MISSED_INTERVALS * self.heartbeat_interval


# --- API keys -------------------------------------------------------------------------


class ApiKeyQuerySet(models.QuerySet):
    def active(self) -> ApiKeyQuerySet:
        """Keys not revoked."""
        return self.filter(revoked_at__isnull=True)


class ApiKey(models.Model):
    """A key an agent signs its requests with: ``sfk_<prefix>_<secret>``.

    Only ``prefix`` (to find the row) and the SHA-256 of the whole key are stored; the
    key itself is shown once, when it is created.
    """

    PREFIX = "sfk"

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                                   blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.PREFIX}_{self.prefix}_…)"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


# --- Heartbeats -----------------------------------------------------------------------


class EpochBucket(Func):
    """The start, in whole seconds since 1970 (UTC), of the ``step``-second bucket holding
    a datetime column: ``floor(epoch / step) * step``. Works on SQLite and PostgreSQL, so
    graphs are bucketed in the database whatever the table size."""

    arity = 1
    output_field = models.BigIntegerField()

    def __init__(self, expression, *, step: int, **extra):
        self.step = int(step)
        if self.step < 1:
            raise ValueError("step must be a positive number of seconds")
        super().__init__(expression, **extra)

    def as_sqlite(self, compiler, connection, **extra):
        # '%%%%s' survives the template's formatting and Django's %s → ? conversion as '%s'.
        template = f"(CAST(strftime('%%%%s', %(expressions)s) AS INTEGER) / {self.step} * {self.step})"
        return self.as_sql(compiler, connection, template=template, **extra)

    def as_postgresql(self, compiler, connection, **extra):
        template = f"(CAST(FLOOR(EXTRACT(EPOCH FROM %(expressions)s)) AS BIGINT) / {self.step} * {self.step})"
        return self.as_sql(compiler, connection, template=template, **extra)


def epoch_to_datetime(seconds: int) -> datetime:
    return datetime.fromtimestamp(int(seconds), UTC)


class HeartbeatQuerySet(models.QuerySet):
    def bucketed(self, *, cluster_id: int, start: datetime, end: datetime, step: int):
        """Per ``step``-second bucket of [start, end): ``slot`` (its start, epoch seconds), ``n``
        (points) and, per metric, ``<metric>_sum`` and ``<metric>_n`` (values reported)."""
        sums = {}
        for metric in METRICS:
            # Summed as floats: byte counts of big disks would overflow a 64-bit integer sum.
            sums[f"{metric}_sum"] = Sum(Cast(metric, models.FloatField()))
            sums[f"{metric}_n"] = Count(metric)
        return (self.filter(cluster_id=cluster_id, time__gte=start, time__lt=end)
                .annotate(slot=EpochBucket("time", step=step)).values("slot")
                .annotate(n=Count("pk"), **sums).order_by("slot"))


class Heartbeat(models.Model):
    """One raw resource point of a cluster, as its agent reported it (kept a few days)."""

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="heartbeats",
                                db_index=False)  # the (cluster, time) index serves it
    time = models.DateTimeField()
    cpu_percent = models.FloatField(null=True, blank=True,
                                    validators=[MinValueValidator(0), MaxValueValidator(100)])
    memory_percent = models.FloatField(null=True, blank=True,
                                       validators=[MinValueValidator(0), MaxValueValidator(100)])
    memory_used = models.PositiveBigIntegerField(null=True, blank=True)
    memory_total = models.PositiveBigIntegerField(null=True, blank=True)
    disk_free = models.PositiveBigIntegerField(null=True, blank=True)
    load_1 = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0)])
    running = models.PositiveIntegerField(default=0, help_text="Calculations running on the cluster.")

    objects = HeartbeatQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["cluster", "time"], name="clusters_hb_cluster_time")]

    def __str__(self) -> str:
        return f"{self.cluster_id} @ {self.time:%Y-%m-%d %H:%M:%S}"


class HeartbeatRollupQuerySet(models.QuerySet):
    def done_until(self, *, cluster_id: int, resolution: str) -> datetime | None:
        """The end of the last bucket rolled up at this resolution (None: none yet)."""
        step = HeartbeatRollup.SECONDS[resolution]
        last = (self.filter(cluster_id=cluster_id, resolution=resolution)
                .order_by("-bucket").values_list("bucket", flat=True).first())
        return None if last is None else last + timedelta(seconds=step)

    def bucketed(self, *, cluster_id: int, resolution: str, start: datetime, end: datetime, step: int):
        """Like :meth:`HeartbeatQuerySet.bucketed`, from rollups, weighting each by its samples."""
        sums = {}
        for metric in METRICS:
            sums[f"{metric}_sum"] = Sum(F(metric) * F("samples"), output_field=models.FloatField())
            sums[f"{metric}_n"] = Coalesce(Sum("samples", filter=Q(**{f"{metric}__isnull": False})), 0)
        return (self.filter(cluster_id=cluster_id, resolution=resolution, bucket__gte=start, bucket__lt=end)
                .annotate(slot=EpochBucket("bucket", step=step)).values("slot")
                .annotate(n=Sum("samples"), **sums).order_by("slot"))


class HeartbeatRollup(models.Model):
    """The means of a cluster's heartbeats over one minute or one hour."""

    class Resolution(models.TextChoices):
        MINUTE = "minute", "Minute"
        HOUR = "hour", "Hour"

    SECONDS = {Resolution.MINUTE: 60, Resolution.HOUR: 3600}

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="heartbeat_rollups",
                                db_index=False)  # the unique (cluster, resolution, bucket) serves it
    resolution = models.CharField(max_length=8, choices=Resolution.choices)
    bucket = models.DateTimeField(help_text="Start of the minute or hour.")
    cpu_percent = models.FloatField(null=True, blank=True)
    memory_percent = models.FloatField(null=True, blank=True)
    memory_used = models.FloatField(null=True, blank=True)
    disk_free = models.FloatField(null=True, blank=True)
    load_1 = models.FloatField(null=True, blank=True)
    running = models.FloatField(null=True, blank=True)
    samples = models.PositiveIntegerField()

    objects = HeartbeatRollupQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["cluster", "resolution", "bucket"], name="clusters_rollup_unique"),
            models.CheckConstraint(condition=Q(resolution__in=["minute", "hour"]),
                                   name="clusters_rollup_resolution_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.cluster_id} {self.resolution} @ {self.bucket:%Y-%m-%d %H:%M}"
