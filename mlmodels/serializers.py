"""Shapes of ML models, their health graph and their predictions in the REST API.
Rules live in ``mlmodels.services`` and ``MLModel.clean``; these only shape input."""

from rest_framework import serializers

from accounts.permissions import can_manage_models
from mlmodels.models import MLModel, Prediction

RUNTIME_READ_ONLY = ["state", "container_id", "address", "started_at", "ready_at", "stopped_at", "last_ping_at",
                     "last_ping_ok", "restart_count", "failure_times", "next_restart_at", "last_error",
                     "created_by", "created_at", "updated_at"]


class MLModelSerializer(serializers.ModelSerializer):
    """A model and its runtime state. ``environment`` is shown to admins only (it may hold
    the model's secrets)."""

    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    environment = serializers.DictField(child=serializers.CharField(allow_blank=True), required=False)
    example_input = serializers.JSONField(required=False, allow_null=True)
    dataset_snapshot = serializers.JSONField(required=False, allow_null=True)

    class Meta:
        model = MLModel
        fields = ["id", "name", "description", "image", "version", "environment", "example_input", "memory_mb",
                  "cpus", "start_timeout", "dataset_snapshot", *RUNTIME_READ_ONLY]
        read_only_fields = RUNTIME_READ_ONLY

    def to_representation(self, instance):
        data = super().to_representation(instance)
        request = self.context.get("request")
        if request is not None and not can_manage_models(request.user):
            data.pop("environment", None)
        return data


class DeleteQuerySerializer(serializers.Serializer):
    remove_image = serializers.BooleanField(default=False, help_text="Also remove the image from the engine.")


class HeartbeatQuerySerializer(serializers.Serializer):
    """A window (the last hour by default), or start and end, and at most how many points."""

    window = serializers.ChoiceField(choices=["hour", "day", "week", "month"], required=False)
    start = serializers.DateTimeField(required=False)
    end = serializers.DateTimeField(required=False)
    max_points = serializers.IntegerField(min_value=2, max_value=2000, default=300)

    def validate(self, attrs):
        if "window" in attrs and ("start" in attrs or "end" in attrs):
            raise serializers.ValidationError("Give either a window or start and end, not both.")
        if "end" in attrs and "start" not in attrs:
            raise serializers.ValidationError({"start": "Give the start of the window too."})
        return attrs


class HeartbeatPointSerializer(serializers.Serializer):
    time = serializers.DateTimeField(help_text="Start of the bucket.")
    samples = serializers.IntegerField(help_text="Pings in the bucket.")
    ok = serializers.IntegerField(help_text="Pings answered 200.")
    uptime = serializers.FloatField(help_text="ok / samples.")
    latency_ms = serializers.FloatField(allow_null=True, help_text="Mean latency of answered pings.")
    latency_ms_max = serializers.FloatField(allow_null=True)


class HeartbeatSeriesSerializer(serializers.Serializer):
    step = serializers.IntegerField(help_text="Seconds per point.")
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    points = HeartbeatPointSerializer(many=True)


class PredictionSerializer(serializers.ModelSerializer):
    user = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Prediction
        fields = ["id", "model", "model_name", "model_version", "image", "user", "calculation", "content_type",
                  "input", "output", "status", "http_status", "error", "latency_ms", "created_at"]
        read_only_fields = fields


class InvocationErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    model_status = serializers.IntegerField(required=False, help_text="The model's own HTTP status.")
    prediction = serializers.IntegerField(required=False, help_text="The recorded prediction's id.")
