"""Calculations, their events, logs, results and files.

A calculation is one run of an engine on one cluster, or a chain of steps (the same system
at a list of values of one parameter) run in order by one agent. Every try is an
*attempt*: resuming a failed chain starts a new attempt at the failed step; events, logs
and results keep their attempt number, so nothing of an earlier try is lost.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from calculations.states import ACTIVE, TERMINAL, State

CHAIN_LEVEL = -1  # the ``step`` of results that belong to the whole chain (e.g. the I–V curve)


class Approval(models.TextChoices):
    NOT_REQUIRED = "not_required", "Not required"
    PENDING = "pending", "Waiting for approval"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


class CalculationQuerySet(models.QuerySet):
    def visible_to(self, user) -> CalculationQuerySet:
        """Every signed-in user sees every calculation (the group shares its work)."""
        from accounts.permissions import can_use_science

        return self if can_use_science(user) else self.none()

    def claim_order(self) -> CalculationQuerySet:
        """Higher priority first, then oldest first."""
        return self.order_by("-priority", "created_at", "id")

    def claimable_by(self, cluster) -> CalculationQuerySet:
        """Queued work for ``cluster``, in claim order."""
        return self.filter(cluster=cluster, state=State.QUEUED).claim_order()

    def active(self) -> CalculationQuerySet:
        return self.filter(state__in=ACTIVE)

    def with_list_relations(self) -> CalculationQuerySet:
        return self.select_related("owner", "cluster", "molecule")


class Calculation(models.Model):
    """One calculation (or chain of steps) to run on a cluster."""

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL,
                              related_name="calculations")
    molecule = models.ForeignKey("molecules.Molecule", null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="calculations")
    cluster = models.ForeignKey("clusters.Cluster", on_delete=models.PROTECT, related_name="calculations")
    engine = models.CharField(max_length=32, db_index=True)
    # {"fdf": "...", "options": {...}}: what the engine gets, as the user wrote it.
    config = models.JSONField(default=dict)
    # The molecule's structure when submitted, so later edits of the molecule change nothing here.
    structure = models.JSONField(null=True, blank=True)
    pseudopotentials = models.ManyToManyField("molecules.Pseudopotential", blank=True,
                                              related_name="calculations")
    analyses = models.JSONField(default=list, blank=True)
    # {"parameter": "TS.Voltage", "unit": "V", "values": [...], "carry": ["*.TSDE"]} or null.
    chain = models.JSONField(null=True, blank=True)
    priority = models.IntegerField(default=0)

    approval = models.CharField(max_length=16, choices=Approval.choices, default=Approval.NOT_REQUIRED)
    approval_reason = models.TextField(blank=True)
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")

    state = models.CharField(max_length=20, choices=State.choices, default=State.QUEUED)
    processed = models.BooleanField(default=False)  # false until an agent takes it
    cancel_requested = models.BooleanField(default=False)
    attempt = models.PositiveIntegerField(default=1)
    start_step = models.PositiveIntegerField(default=0)  # where this attempt starts
    current_step = models.PositiveIntegerField(default=0)
    agent_seq = models.PositiveIntegerField(default=0)  # last event sequence number of this attempt
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    lost_count = models.PositiveIntegerField(default=0)
    progress = models.JSONField(default=dict, blank=True)
    failure_class = models.CharField(max_length=32, blank=True)
    failure_reason = models.TextField(blank=True)

    inputs_hash = models.CharField(max_length=64)
    duplicate_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = CalculationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["cluster", "state", "-priority", "created_at"], name="calc_claim_idx"),
            models.Index(fields=["state", "lease_expires_at"], name="calc_lease_idx"),
            models.Index(fields=["owner", "-created_at"], name="calc_owner_idx"),
            models.Index(fields=["molecule", "-created_at"], name="calc_molecule_idx"),
            # The latest succeeded run of the same inputs (duplicate_of), read at every
            # submission: without the condition the read grows with every run of those inputs.
            models.Index(fields=["inputs_hash", "-finished_at"], condition=Q(state=State.SUCCEEDED),
                         name="calc_duplicate_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(state__in=State.values), name="calc_state_valid"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.name}"

    @property
    def step_count(self) -> int:
        return len(self.chain["values"]) if self.chain else 1

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE

    @property
    def duration(self):
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None


def calculation_file_path(instance: CalculationFile, filename: str) -> str:
    return f"calculations/{instance.calculation_id}/files/{instance.sha256}/{instance.name}"


class CalculationFile(models.Model):
    """An input file attached to a calculation (e.g. an electrode's .TSHS)."""

    calculation = models.ForeignKey(Calculation, on_delete=models.CASCADE, related_name="files")
    name = models.CharField(max_length=255)
    file = models.FileField(upload_to=calculation_file_path, max_length=500)
    sha256 = models.CharField(max_length=64)
    size = models.PositiveBigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["calculation", "name"], name="calc_file_unique_name")]

    def __str__(self) -> str:
        return self.name


class CalculationEvent(models.Model):
    """One change of a calculation: a state transition, or a request (cancel) on it."""

    calculation = models.ForeignKey(Calculation, on_delete=models.CASCADE, related_name="events")
    attempt = models.PositiveIntegerField()
    seq = models.PositiveIntegerField(null=True, blank=True)  # the agent's sequence number
    from_state = models.CharField(max_length=20, choices=State.choices)
    to_state = models.CharField(max_length=20, choices=State.choices)
    step = models.PositiveIntegerField(null=True, blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    by_agent = models.BooleanField(default=False)
    reason = models.TextField(blank=True)
    failure_class = models.CharField(max_length=32, blank=True)
    data = models.JSONField(default=dict, blank=True)
    notified_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["calculation", "attempt", "seq"], condition=Q(seq__isnull=False),
                                    name="calc_event_unique_seq"),
        ]

    def __str__(self) -> str:
        return f"{self.calculation_id}: {self.from_state} → {self.to_state}"


class LogLine(models.Model):
    """A line of an agent's log, about a calculation or about the agent itself."""

    class Level(models.TextChoices):
        DEBUG = "DEBUG"
        INFO = "INFO"
        WARNING = "WARNING"
        ERROR = "ERROR"

    cluster = models.ForeignKey("clusters.Cluster", on_delete=models.CASCADE, related_name="log_lines")
    calculation = models.ForeignKey(Calculation, null=True, blank=True, on_delete=models.CASCADE,
                                    related_name="log_lines")
    attempt = models.PositiveIntegerField(null=True, blank=True)
    seq = models.PositiveIntegerField(null=True, blank=True)
    level = models.CharField(max_length=8, choices=Level.choices, default=Level.INFO)
    message = models.TextField()
    time = models.DateTimeField()  # when the agent wrote it
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["cluster", "id"], name="log_cluster_idx"),
            models.Index(fields=["calculation", "id"], name="log_calc_idx"),
            models.Index(fields=["level", "id"], name="log_level_idx"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["calculation", "attempt", "seq"], condition=Q(seq__isnull=False),
                                    name="log_unique_seq"),
        ]

    def __str__(self) -> str:
        return f"{self.level} {self.message[:60]}"


class Result(models.Model):
    """Extracted data of one step (or of the whole chain, ``step = CHAIN_LEVEL``)."""

    calculation = models.ForeignKey(Calculation, on_delete=models.CASCADE, related_name="results")
    attempt = models.PositiveIntegerField()
    step = models.IntegerField()
    key = models.CharField(max_length=64)
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["attempt", "step", "key"]
        constraints = [models.UniqueConstraint(fields=["calculation", "attempt", "step", "key"],
                                               name="result_unique")]

    def __str__(self) -> str:
        return f"{self.calculation_id}/{self.attempt}/{self.step}/{self.key}"


class AnalysisResult(models.Model):
    """The outcome of one analysis: tables and series, or why it does not apply."""

    class Status(models.TextChoices):
        OK = "ok"
        NOT_APPLICABLE = "not_applicable"
        FAILED = "failed"

    calculation = models.ForeignKey(Calculation, on_delete=models.CASCADE, related_name="analysis_results")
    attempt = models.PositiveIntegerField()
    step = models.IntegerField()
    name = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices)
    data = models.JSONField(default=dict, blank=True)
    message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["attempt", "step", "name"]
        constraints = [models.UniqueConstraint(fields=["calculation", "attempt", "step", "name"],
                                               name="analysis_result_unique")]

    def __str__(self) -> str:
        return f"{self.name}: {self.status}"


def artifact_path(instance: Artifact, filename: str) -> str:
    return (f"calculations/{instance.calculation_id}/artifacts/a{instance.attempt}/"
            f"s{instance.step}/{instance.name}")


class Artifact(models.Model):
    """A small file made by the agent: a plot, a CSV table."""

    calculation = models.ForeignKey(Calculation, on_delete=models.CASCADE, related_name="artifacts")
    attempt = models.PositiveIntegerField()
    step = models.IntegerField()
    name = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100)
    file = models.FileField(upload_to=artifact_path, max_length=500)
    size = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["attempt", "step", "name"]
        constraints = [models.UniqueConstraint(fields=["calculation", "attempt", "step", "name"],
                                               name="artifact_unique")]

    def __str__(self) -> str:
        return self.name
