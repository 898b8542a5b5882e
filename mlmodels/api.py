"""REST endpoints of ML models.

Everyone signed in lists and views models, starts and stops them, reads their health graph
and predictions, and invokes them (``can_use_science``); only admins register, change and
delete them (``can_manage_models``).

``POST /api/models/{id}/invocations/`` passes the body and its Content-Type (and Accept)
through to the model's ``/invocations`` and answers the model's body and Content-Type with
200. Errors are JSON ``{"detail": ...}``:

- 413: the body is over MODEL_MAX_PAYLOAD_BYTES (nothing is sent to the model);
- 503: the model is not running (stopped, starting, unhealthy, crash loop, failed), with
  Retry-After when a wait will help;
- 400: the model answered 4xx: the input was bad. The model's message and status
  (``model_status``) are in the answer; its status itself is not passed through, because a
  model's 401, 403 or 404 would read as siestaflow's own answers;
- 502: the model answered 5xx, gave no answer within MODEL_INVOKE_TIMEOUT, closed the
  connection, or answered more than MODEL_MAX_PAYLOAD_BYTES; with the model's message.

Every invocation that reached a running model is recorded as a Prediction; its id is in the
``X-Prediction-Id`` header (and in ``prediction`` of errors). On PostgreSQL the id is taken
with the model's read and a 200's row is written just after the answer is sent, so the
answer does not wait for it: a read racing the answer may find the row a moment later.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.drainage import set_override
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, status, viewsets
from rest_framework.authentication import SessionAuthentication
from rest_framework.decorators import action
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework_simplejwt.authentication import JWTAuthentication, JWTStatelessUserAuthentication
from rest_framework_simplejwt.models import TokenUser

from accounts.models import User
from accounts.permissions import Allow, can_manage_models, can_use_science
from mlmodels import docker, invocations, services
from mlmodels.models import MLModel, Prediction
from mlmodels.serializers import (
    DeleteQuerySerializer,
    HeartbeatQuerySerializer,
    HeartbeatSeriesSerializer,
    InvocationErrorSerializer,
    MLModelSerializer,
    PredictionSerializer,
)

WINDOWS = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(weeks=1),
           "month": timedelta(days=30)}
MANAGE_ACTIONS = {"create", "update", "partial_update", "destroy"}


class EngineUnavailable(exceptions.APIException):
    status_code = 503
    default_detail = "The Docker engine does not answer."
    default_code = "engine_unavailable"


class EngineError(exceptions.APIException):
    status_code = 502
    default_detail = "The Docker engine refused the operation."
    default_code = "engine_error"


class ModelNotReady(exceptions.APIException):
    status_code = 503
    default_code = "model_not_ready"

    def __init__(self, detail, wait=None):
        super().__init__(detail)
        self.wait = wait  # DRF's handler turns it into Retry-After


class PayloadTooLarge(exceptions.APIException):
    status_code = 413
    default_code = "payload_too_large"


def _api_exception(exc: Exception) -> Exception:
    """Errors of the engine and the model as clear API answers (others unchanged)."""
    if isinstance(exc, docker.ImageNotFound):
        return exceptions.ValidationError({"image": [str(exc)]})
    if isinstance(exc, docker.DockerUnavailable | docker.NoFreePort):
        return EngineUnavailable(str(exc))
    if isinstance(exc, docker.DockerError):
        return EngineError(str(exc))
    if isinstance(exc, invocations.NotReady):
        return ModelNotReady(str(exc), exc.retry_after)
    if isinstance(exc, invocations.PayloadTooLarge):
        return PayloadTooLarge(str(exc))
    return exc


# The invocations' JWT check reads the same bearer token as everywhere else: one "jwtAuth" scheme.
set_override(JWTStatelessUserAuthentication, "suppress_collision_warning", True)


@extend_schema_view(
    destroy=extend_schema(parameters=[DeleteQuerySerializer]),
)
class MLModelViewSet(viewsets.ModelViewSet):
    """ML models: everyone signed in uses them; admins register, change and delete them."""

    serializer_class = MLModelSerializer
    filterset_fields = ["state"]

    def get_queryset(self):
        models = MLModel.objects.visible_to(self.request.user)
        if self.action == "invocations":  # the hot path reads what a call needs, nothing joined
            caller = self.request.user  # a JWT's user is checked in the same statement
            return invocations.for_invocation(models, caller_id=caller.id if isinstance(caller, TokenUser) else None)
        return models.select_related("created_by").order_by("name")

    def get_permissions(self):
        predicate = can_manage_models if self.action in MANAGE_ACTIONS else can_use_science
        return [Allow(predicate)()]

    def get_object(self):
        if not isinstance(self.request.user, TokenUser):
            return super().get_object()
        # Invocations by JWT: its user is checked in the model's read, one statement before the call.
        caller_id, pk = self.request.user.id, str(self.kwargs["pk"])
        rows = []
        if pk.isascii() and pk.isdigit() and int(pk) < 2**63:
            rows = list(self.get_queryset().filter(pk=int(pk)).order_by()[:1])
        if rows and rows[0].caller_active:  # the User, its other fields read if ever asked for
            self.request.user = User.from_db(rows[0]._state.db, ["id", "is_active"], [caller_id, True])
        else:  # as every other route answers it: 401 for a user unknown or blocked (simplejwt's own check)
            self.request.user = JWTAuthentication().get_user(self.request.auth)
        self.check_permissions(self.request)  # again, now on the User itself
        if not rows:
            return super().get_object()  # 404 (or the model, had it been made meanwhile)
        self.check_object_permissions(self.request, rows[0])
        return rows[0]

    def handle_exception(self, exc):
        return super().handle_exception(_api_exception(exc))

    def perform_content_negotiation(self, request, force=False):
        if self.action == "invocations":  # any Accept: the model answers it, errors are JSON
            return JSONRenderer(), JSONRenderer.media_type
        return super().perform_content_negotiation(request, force)

    def perform_create(self, serializer):
        serializer.instance = services.register_model(actor=self.request.user, **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.update_model(actor=self.request.user, model=serializer.instance,
                                                    **serializer.validated_data)

    def perform_destroy(self, instance):
        query = DeleteQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        services.delete_model(actor=self.request.user, model=instance, **query.validated_data)

    @extend_schema(request=None, responses={200: MLModelSerializer})
    @action(detail=True, methods=["post"])
    def start(self, request, pk=None):
        """Run the model's container; it is ``starting`` until ready, then ``running``."""
        model = services.start_model(actor=request.user, model=self.get_object())
        return Response(self.get_serializer(model).data)

    @extend_schema(request=None, responses={200: MLModelSerializer})
    @action(detail=True, methods=["post"])
    def stop(self, request, pk=None):
        """Stop and remove the model's container."""
        model = services.stop_model(actor=request.user, model=self.get_object())
        return Response(self.get_serializer(model).data)

    @extend_schema(parameters=[HeartbeatQuerySerializer], responses={200: HeartbeatSeriesSerializer})
    @action(detail=True, methods=["get"], filterset_fields=[])
    def heartbeats(self, request, pk=None):
        """The model's pings over a window (default: the last hour), at most ``max_points`` points."""
        query = HeartbeatQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        end = params.get("end") or timezone.now()
        start = params.get("start") or end - WINDOWS[params.get("window", "hour")]
        data = services.series(model=self.get_object(), start=start, end=end, max_points=params["max_points"])
        return Response(HeartbeatSeriesSerializer(data).data)

    @extend_schema(parameters=[OpenApiParameter("status", str, enum=Prediction.Status.values)],
                   responses={200: PredictionSerializer(many=True)})
    @action(detail=True, methods=["get"], filterset_fields=[])
    def predictions(self, request, pk=None):
        """Predictions of this model, newest first: a user's own; every one for moderators and admins."""
        model = self.get_object()
        predictions = Prediction.objects.visible_to(request.user).filter(model=model).select_related("user")
        if request.query_params.get("status"):
            predictions = predictions.filter(status=request.query_params["status"])
        page = self.paginate_queryset(predictions.order_by("-created_at", "-id"))
        return self.get_paginated_response(PredictionSerializer(page, many=True).data)

    @extend_schema(
        parameters=[OpenApiParameter("calculation", int, description="The calculation whose DFT result this "
                                     "predicts: recorded, and compared on its page once the result is in.")],
        request={"application/json": OpenApiTypes.OBJECT, "*/*": OpenApiTypes.BINARY},
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="The model's answer, as it gave it."),
                   400: InvocationErrorSerializer, 413: InvocationErrorSerializer,
                   502: InvocationErrorSerializer, 503: InvocationErrorSerializer})
    @action(detail=True, methods=["post"], filterset_fields=[],
            authentication_classes=[JWTStatelessUserAuthentication, SessionAuthentication])
    def invocations(self, request, pk=None):
        """Predict: the body goes to the model as it is, with its Content-Type."""
        model = self.get_object()
        limit = settings.MODEL_MAX_PAYLOAD_BYTES
        if int(request.META.get("CONTENT_LENGTH") or 0) > limit:  # before reading a byte of it
            raise PayloadTooLarge(f"The body is over the {limit} bytes models take.")
        calculation = _predicted_calculation(request)
        try:
            result = invocations.invoke(actor=request.user, model=model, body=request.body,
                                     content_type=request.content_type or "",
                                     accept=request.META.get("HTTP_ACCEPT", ""), fresh=True,
                                     calculation=calculation, prediction_id=getattr(model, "prediction_id", None))
        except invocations.InvocationFailed as failed:
            body = {"detail": str(failed), "prediction": failed.prediction.pk}
            if failed.model_status:
                body["model_status"] = failed.model_status
            return Response(body, status=failed.status, headers={"X-Prediction-Id": str(failed.prediction.pk)})
        return _Answer(result)


class _Answer(HttpResponse):
    """The model's answer, with its prediction's id. A prediction not yet recorded is saved
    once the answer is out: WSGI and ASGI servers call ``close`` after sending the last byte
    (Django's test client calls it at once)."""

    def __init__(self, invocation: invocations.Invocation):
        reply = invocation.reply
        super().__init__(reply.body, status=status.HTTP_200_OK,
                         content_type=reply.content_type or "application/octet-stream")
        self["X-Prediction-Id"] = str(invocation.prediction.pk)
        self._unrecorded = None if invocation.recorded else invocation.prediction

    def close(self):
        prediction, self._unrecorded = self._unrecorded, None
        try:
            if prediction is not None:
                invocations.record(prediction)
        finally:
            super().close()  # then request_finished, which may close the database connection


def _predicted_calculation(request):
    """The calculation ``?calculation=<id>`` names (one the user may see), or None; 400 else."""
    from calculations.models import Calculation  # the models app does not depend on calculations

    text = request.query_params.get("calculation", "")
    if not text:
        return None
    calc = (Calculation.objects.visible_to(request.user).filter(pk=int(text)).only("pk").first()
            if text.isdigit() and int(text) < 2**31 else None)
    if calc is None:
        raise exceptions.ValidationError({"calculation": f"No calculation {text!r} that you may see."})
    return calc
