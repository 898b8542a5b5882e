"""Shapes of calculations in the user API and the agent API. Rules live in services."""

from __future__ import annotations

from rest_framework import serializers
from siestaflow_agent.analyses import catalogue

from calculations.models import (
    AnalysisResult,
    Artifact,
    Calculation,
    CalculationEvent,
    CalculationFile,
    LogLine,
    Result,
)
from calculations.states import State
from clusters.models import Cluster
from molecules.models import Molecule, Pseudopotential

#: The largest value a PositiveIntegerField holds on every database (PostgreSQL's integer).
MAX_POSITIVE = 2**31 - 1
#: Reports an agent may send in one request to ``reports/``.
MAX_REPORTS = 200


class ChainSerializer(serializers.Serializer):
    parameter = serializers.CharField(max_length=100)
    unit = serializers.CharField(max_length=20, required=False, allow_blank=True, default="")
    values = serializers.ListField(child=serializers.JSONField(), allow_empty=False)
    carry = serializers.ListField(child=serializers.CharField(max_length=100), required=False, default=list)
    axis = serializers.JSONField(required=False, help_text='A rotation chain\'s axis: "x", "y", "z" (default) '
                                                           "or a vector [x, y, z].")


class ConfigSerializer(serializers.Serializer):
    fdf = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False)
    options = serializers.DictField(required=False, default=dict)
    # The command engine's program (a [programs.NAME] of the agent's TOML); left out when not given.
    program = serializers.CharField(max_length=100, required=False)


class FileSerializer(serializers.ModelSerializer):
    class Meta:
        model = CalculationFile
        fields = ["name", "sha256", "size"]


class CalculationSerializer(serializers.ModelSerializer):
    """A calculation as users read it."""

    owner = serializers.SlugRelatedField(slug_field="username", read_only=True)
    cluster_name = serializers.CharField(source="cluster.name", read_only=True)
    molecule_name = serializers.CharField(source="molecule.name", read_only=True, default=None)
    step_count = serializers.IntegerField(read_only=True)
    files = FileSerializer(many=True, read_only=True)

    class Meta:
        model = Calculation
        fields = ["id", "name", "description", "owner", "molecule", "molecule_name", "cluster", "cluster_name",
                  "engine", "config", "pseudopotentials", "analyses", "chain", "priority", "approval",
                  "approval_reason", "state", "processed", "cancel_requested", "attempt", "start_step",
                  "current_step", "step_count", "progress", "failure_class", "failure_reason", "duplicate_of",
                  "files", "created_at", "updated_at", "started_at", "finished_at"]
        read_only_fields = fields


class CalculationWriteSerializer(serializers.Serializer):
    """What a user gives to create or edit a calculation."""

    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    cluster = serializers.PrimaryKeyRelatedField(queryset=Cluster.objects.all())
    engine = serializers.CharField(max_length=32)
    config = ConfigSerializer()
    molecule = serializers.PrimaryKeyRelatedField(queryset=Molecule.objects.all(), required=False, allow_null=True,
                                                  default=None)
    pseudopotentials = serializers.PrimaryKeyRelatedField(queryset=Pseudopotential.objects.all(), many=True,
                                                          required=False, default=list)
    analyses = serializers.ListField(child=serializers.CharField(max_length=64), required=False, default=list)
    chain = ChainSerializer(required=False, allow_null=True, default=None)
    priority = serializers.IntegerField(required=False, default=0, min_value=-1000, max_value=1000)


class CalculationUpdateSerializer(CalculationWriteSerializer):
    cluster = None  # a calculation stays on its cluster


class RejectSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)


class WhySerializer(serializers.Serializer):
    waiting = serializers.BooleanField()
    ahead = serializers.IntegerField(allow_null=True)
    reasons = serializers.ListField(child=serializers.CharField())


class EventSerializer(serializers.ModelSerializer):
    actor = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = CalculationEvent
        fields = ["id", "attempt", "seq", "from_state", "to_state", "step", "actor", "by_agent", "reason",
                  "failure_class", "data", "created_at"]


class ResultSerializer(serializers.ModelSerializer):
    class Meta:
        model = Result
        fields = ["attempt", "step", "key", "data", "updated_at"]


class AnalysisResultSerializer(serializers.ModelSerializer):
    class Meta:
        model = AnalysisResult
        fields = ["attempt", "step", "name", "status", "data", "message"]


class ArtifactSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()

    class Meta:
        model = Artifact
        fields = ["id", "attempt", "step", "name", "content_type", "size", "url"]

    def get_url(self, artifact) -> str:
        return f"/api/calculations/{artifact.calculation_id}/artifacts/{artifact.pk}/"


class LogLineSerializer(serializers.ModelSerializer):
    class Meta:
        model = LogLine
        fields = ["id", "cluster", "calculation", "attempt", "seq", "level", "message", "time", "created_at"]


class AnalysisSerializer(serializers.Serializer):
    id = serializers.CharField()
    title = serializers.CharField()
    description = serializers.CharField()
    requires = serializers.ListField(child=serializers.CharField())
    engines = serializers.ListField(child=serializers.CharField())
    chain_level = serializers.BooleanField()


def catalogue_data() -> list[dict]:
    return [AnalysisSerializer(a).data for a in catalogue.ANALYSES]


# --- the agent API ------------------------------------------------------------------------


class AgentPendingSerializer(serializers.ModelSerializer):
    class Meta:
        model = Calculation
        fields = ["id", "name", "engine", "priority", "created_at"]


class ClaimRequestSerializer(serializers.Serializer):
    max = serializers.IntegerField(min_value=1, max_value=100, default=1)
    wait = serializers.FloatField(min_value=0, max_value=30, default=0)


ATTEMPT_HELP = "The attempt the report is about: one that is over is refused (409), never filed under the new one."


class AgentEventSerializer(serializers.Serializer):
    seq = serializers.IntegerField(min_value=1, max_value=MAX_POSITIVE)
    attempt = serializers.IntegerField(min_value=1, max_value=MAX_POSITIVE, required=False, help_text=ATTEMPT_HELP)
    state = serializers.ChoiceField(choices=State.choices)
    step = serializers.IntegerField(min_value=0, max_value=MAX_POSITIVE, required=False, allow_null=True,
                                    default=None)
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=10_000)
    failure_class = serializers.CharField(required=False, allow_blank=True, allow_null=True, default="",
                                          max_length=32)
    progress = serializers.DictField(required=False, allow_null=True, default=None)


class AgentLogLineSerializer(serializers.Serializer):
    seq = serializers.IntegerField(min_value=1, max_value=MAX_POSITIVE, required=False, allow_null=True,
                                   default=None)
    level = serializers.ChoiceField(choices=LogLine.Level.choices, default="INFO")
    message = serializers.CharField(max_length=100_000, trim_whitespace=False)
    time = serializers.DateTimeField(required=False, allow_null=True, default=None)


class AgentLogsSerializer(serializers.Serializer):
    lines = AgentLogLineSerializer(many=True, allow_empty=False, max_length=5000)
    attempt = serializers.IntegerField(min_value=1, max_value=MAX_POSITIVE, required=False, help_text=ATTEMPT_HELP)


class AgentAnalysisSerializer(serializers.Serializer):
    name = serializers.ChoiceField(choices=sorted(catalogue.CATALOGUE))
    status = serializers.ChoiceField(choices=AnalysisResult.Status.choices)
    data = serializers.DictField(required=False, default=dict)
    message = serializers.CharField(required=False, allow_blank=True, default="")


class AgentArtifactSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=255)
    content_type = serializers.CharField(max_length=100, default="application/octet-stream")
    content_b64 = serializers.CharField()


class AgentResultsSerializer(serializers.Serializer):
    step = serializers.IntegerField(min_value=0, max_value=MAX_POSITIVE, required=False, allow_null=True,
                                    default=None)
    key = serializers.SlugField(max_length=64, default="extracted")
    data = serializers.DictField(required=False, allow_null=True, default=None)
    analyses = AgentAnalysisSerializer(many=True, required=False, default=list)
    artifacts = AgentArtifactSerializer(many=True, required=False, default=list)
    attempt = serializers.IntegerField(min_value=1, max_value=MAX_POSITIVE, required=False, help_text=ATTEMPT_HELP)


class AgentReportSerializer(serializers.Serializer):
    calculation = serializers.IntegerField(min_value=1, max_value=MAX_POSITIVE)
    kind = serializers.ChoiceField(choices=["event", "logs", "results"])
    body = serializers.DictField(help_text="The body of the kind's own route (events/, logs/, results/).")


class AgentReportsSerializer(serializers.Serializer):
    reports = AgentReportSerializer(many=True, allow_empty=False, max_length=MAX_REPORTS)
