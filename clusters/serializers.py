"""Shapes of clusters, keys, heartbeats and resource graphs in the APIs. Rules are not
here: they are in ``accounts.permissions``, the models and ``clusters.services``."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from clusters.models import ApiKey, Cluster

MAX_BYTES = 2**63 - 1
MAX_ID = 2**63 - 1  # the largest id a (big) auto field holds


class StrictIntegerField(serializers.IntegerField):
    """An integer given as a JSON integer (not a string, a float or a boolean)."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictCharField(serializers.CharField):
    """A string given as a JSON string (not a number)."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


# --- Clusters and keys ------------------------------------------------------------------


class ClusterSerializer(serializers.ModelSerializer):
    """A cluster with what its agent reports and whether it is online."""

    needs_approval = serializers.BooleanField(read_only=True)
    is_online = serializers.BooleanField(read_only=True)
    heartbeat_age = serializers.SerializerMethodField(help_text="Seconds since the last heartbeat.")

    class Meta:
        model = Cluster
        fields = ["id", "name", "description", "enabled", "max_concurrent", "heartbeat_interval",
                  "requires_approval", "needs_approval", "is_online", "heartbeat_age", "last_heartbeat_at",
                  "agent_version", "engines", "analyses", "created_at"]
        read_only_fields = ["id", "needs_approval", "is_online", "heartbeat_age", "last_heartbeat_at",
                            "agent_version", "engines", "analyses", "created_at"]

    @extend_schema_field(OpenApiTypes.FLOAT)
    def get_heartbeat_age(self, cluster: Cluster) -> float | None:
        age = cluster.heartbeat_age()
        return None if age is None else round(age, 1)


class ApiKeySerializer(serializers.ModelSerializer):
    """An API key as listed: never the key nor its hash."""

    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    is_revoked = serializers.BooleanField(read_only=True)

    class Meta:
        model = ApiKey
        fields = ["id", "cluster", "name", "prefix", "created_by", "created_at", "last_used_at",
                  "revoked_at", "is_revoked"]
        read_only_fields = fields


class ApiKeyCreateSerializer(serializers.Serializer):
    """What an admin gives to create a key."""

    name = serializers.CharField(max_length=100)


class ApiKeyCreatedSerializer(ApiKeySerializer):
    """A new key, with its text: shown this once, never again."""

    key = serializers.CharField(read_only=True, help_text="The key: copy it now, it is not shown again.")

    class Meta(ApiKeySerializer.Meta):
        fields = ApiKeySerializer.Meta.fields + ["key"]
        read_only_fields = fields


# --- Resource graphs ----------------------------------------------------------------------


class ResourceQuerySerializer(serializers.Serializer):
    """A window by name (the last hour, day, week or 30 days), or ``start`` and ``end``."""

    window = serializers.ChoiceField(choices=["hour", "day", "week", "month"], required=False)
    start = serializers.DateTimeField(required=False)
    end = serializers.DateTimeField(required=False)
    max_points = serializers.IntegerField(min_value=2, max_value=2000, default=300)

    def validate(self, attrs):
        if "window" in attrs and ("start" in attrs or "end" in attrs):
            raise serializers.ValidationError("Give either a window or start and end, not both.")
        if "start" in attrs and "end" in attrs and attrs["end"] <= attrs["start"]:
            raise serializers.ValidationError({"end": "The end must come after the start."})
        if "end" in attrs and "start" not in attrs:
            raise serializers.ValidationError({"start": "Give the start of the window too."})
        return attrs


class ResourcePointSerializer(serializers.Serializer):
    """The means over one bucket starting at ``time``."""

    time = serializers.DateTimeField()
    cpu_percent = serializers.FloatField(allow_null=True)
    memory_percent = serializers.FloatField(allow_null=True)
    memory_used = serializers.FloatField(allow_null=True)
    disk_free = serializers.FloatField(allow_null=True)
    load_1 = serializers.FloatField(allow_null=True)
    running = serializers.FloatField(allow_null=True)
    samples = serializers.IntegerField()


class ResourceSeriesSerializer(serializers.Serializer):
    """A cluster's resources over a window, from raw points or minute or hour rollups."""

    resolution = serializers.ChoiceField(choices=["raw", "minute", "hour"])
    step = serializers.IntegerField(help_text="Seconds per point.")
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    points = ResourcePointSerializer(many=True)


# --- The agent's heartbeat ------------------------------------------------------------------


class HeartbeatSerializer(serializers.Serializer):
    """``POST /api/agent/v1/heartbeat/``: the agent's state (docs/agent-api.md)."""

    agent_version = serializers.CharField(max_length=64)
    cpu_percent = serializers.FloatField(min_value=0, max_value=100, required=False, allow_null=True)
    memory_percent = serializers.FloatField(min_value=0, max_value=100, required=False, allow_null=True)
    memory_used = serializers.IntegerField(min_value=0, max_value=MAX_BYTES, required=False, allow_null=True)
    memory_total = serializers.IntegerField(min_value=0, max_value=MAX_BYTES, required=False, allow_null=True)
    disk_free = serializers.IntegerField(min_value=0, max_value=MAX_BYTES, required=False, allow_null=True)
    load = serializers.ListField(child=serializers.FloatField(min_value=0), min_length=1, max_length=3,
                                 required=False, help_text="The 1, 5 and 15 minute load averages.")
    running = serializers.ListField(child=StrictIntegerField(min_value=1, max_value=MAX_ID), max_length=10_000,
                                    default=list,
                                    help_text="Ids of the calculations the agent runs now.")
    engines = serializers.ListField(child=StrictCharField(max_length=64),
                                    max_length=100, required=False)
    analyses = serializers.ListField(child=StrictCharField(max_length=64),
                                     max_length=500, required=False)

    def validate(self, attrs):
        used, total = attrs.get("memory_used"), attrs.get("memory_total")
        if used is not None and total is not None and used > total:
            raise serializers.ValidationError({"memory_used": "More memory used than there is in total."})
        return attrs


class HeartbeatSettingsSerializer(serializers.Serializer):
    enabled = serializers.BooleanField()
    heartbeat_interval = serializers.IntegerField()
    max_concurrent = serializers.IntegerField()


class HeartbeatAnswerSerializer(serializers.Serializer):
    """What the agent must do: cancel these calculations, follow these settings."""

    cancel = serializers.ListField(child=serializers.IntegerField())
    settings = HeartbeatSettingsSerializer()
    server_time = serializers.DateTimeField()


class AgentErrorSerializer(serializers.Serializer):
    """Every 4xx of the agent API."""

    detail = serializers.CharField()
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))
