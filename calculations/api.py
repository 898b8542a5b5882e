"""The user API of calculations, the analyses catalogue, logs and the dataset export."""

from __future__ import annotations

import json

from django.db import transaction
from django.http import FileResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import permissions as perms
from calculations import exports, services
from calculations.filters import CalculationFilter, LogLineFilter
from calculations.models import Calculation, LogLine
from calculations.serializers import (
    AnalysisResultSerializer,
    AnalysisSerializer,
    ArtifactSerializer,
    CalculationSerializer,
    CalculationUpdateSerializer,
    CalculationWriteSerializer,
    EventSerializer,
    LogLineSerializer,
    RejectSerializer,
    ResultSerializer,
    WhySerializer,
    catalogue_data,
)
from calculations.why import why_waiting

Science = perms.Allow(perms.can_use_science)


def _spec_and_files(request) -> tuple[dict, list[tuple[str, bytes]]]:
    """JSON body, or multipart with a ``spec`` JSON part and ``files`` parts."""
    # A JSON null or list is no spec either: the form answers 400 for it.
    if not isinstance(request.data, dict) or "spec" not in request.data:
        return request.data, []
    try:
        spec = json.loads(request.data["spec"])
    except (TypeError, ValueError) as exc:
        raise ValidationError({"spec": f"spec is not valid JSON: {exc}"}) from None
    files = []
    for upload in request.FILES.getlist("files"):
        services.validation.check_file_size(upload.name, upload.size)
        files.append((upload.name, upload.read()))
    return spec, files


class CalculationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Calculations: create, edit before start, cancel, resume, approve or reject, and
    read their events, results, analyses, logs and downloads."""

    permission_classes = [Science]
    serializer_class = CalculationSerializer
    filterset_class = CalculationFilter
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    def get_queryset(self):
        return (Calculation.objects.visible_to(self.request.user).with_list_relations()
                .prefetch_related("pseudopotentials", "files"))

    @extend_schema(request=CalculationWriteSerializer, responses={201: CalculationSerializer})
    def create(self, request):
        spec, files = _spec_and_files(request)
        form = CalculationWriteSerializer(data=spec)
        form.is_valid(raise_exception=True)
        calc = services.submit_calculation(owner=request.user, files=files, **form.validated_data)
        # The new row with the relations it was made from (what a read would join); its
        # pseudopotentials and files are read by the serializer.
        return Response(self.get_serializer(calc).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=CalculationUpdateSerializer, responses={200: CalculationSerializer})
    def partial_update(self, request, pk=None):
        form = CalculationUpdateSerializer(data=request.data, partial=True)
        form.is_valid(raise_exception=True)
        services.update_calculation(actor=request.user, calc=self.get_object(), **form.validated_data)
        return Response(self.get_serializer(self.get_queryset().get(pk=pk)).data)

    def _act(self, change) -> Response:
        calc = self.get_object()
        change(calc)
        return Response(self.get_serializer(self.get_queryset().get(pk=calc.pk)).data)

    @extend_schema(request=None, responses={200: CalculationSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        return self._act(lambda calc: services.cancel(actor=request.user, calc=calc))

    @extend_schema(request=None, responses={200: CalculationSerializer})
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        return self._act(lambda calc: services.resume(actor=request.user, calc=calc))

    @extend_schema(request=None, responses={200: CalculationSerializer})
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        return self._act(lambda calc: services.approve(actor=request.user, calc=calc))

    @extend_schema(request=RejectSerializer, responses={200: CalculationSerializer})
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        form = RejectSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        return self._act(lambda calc: services.reject(actor=request.user, calc=calc, **form.validated_data))

    @extend_schema(responses={200: WhySerializer})
    @action(detail=True, methods=["get"])
    def why(self, request, pk=None):
        return Response(why_waiting(self.get_object()))

    @extend_schema(responses={200: EventSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def events(self, request, pk=None):
        events = self.get_object().events.select_related("actor")
        return Response(EventSerializer(events, many=True).data)

    @extend_schema(parameters=[OpenApiParameter("attempt", int)],
                   responses={200: ResultSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def results(self, request, pk=None):
        calc = self.get_object()
        attempt = request.query_params.get("attempt")
        rows = calc.results.filter(attempt=int(attempt)) if attempt and attempt.isdigit() else calc.results.all()
        return Response({
            "results": ResultSerializer(rows, many=True).data,
            "analyses": AnalysisResultSerializer(calc.analysis_results.all(), many=True).data,
            "artifacts": ArtifactSerializer(calc.artifacts.all(), many=True).data,
        })

    @extend_schema(responses={(200, "application/octet-stream"): bytes})
    @action(detail=True, methods=["get"], url_path=r"artifacts/(?P<artifact_id>\d+)")
    def artifact(self, request, pk=None, artifact_id=None):
        artifact = get_object_or_404(self.get_object().artifacts, pk=artifact_id)
        response = FileResponse(artifact.file.open("rb"), filename=artifact.name, content_type=artifact.content_type)
        return response

    @extend_schema(parameters=[OpenApiParameter("format", str, enum=["json", "fdf"])],
                   responses={(200, "application/octet-stream"): bytes})
    @action(detail=True, methods=["get"], url_path="download/config")
    def download_config(self, request, pk=None):
        return exports.config_download(self.get_object(), request.query_params.get("format", "json"))

    @extend_schema(parameters=[OpenApiParameter("format", str, enum=["json", "csv"])],
                   responses={(200, "application/octet-stream"): bytes})
    @action(detail=True, methods=["get"], url_path="download/extracted")
    def download_extracted(self, request, pk=None):
        return exports.extracted_download(self.get_object(), request.query_params.get("format", "json"))


class AnalysisCatalogueView(APIView):
    """The analyses a calculation may select, with their dependencies."""

    permission_classes = [Science]

    @extend_schema(responses={200: AnalysisSerializer(many=True)})
    def get(self, request):
        return Response(catalogue_data())


class LogViewSet(mixins.ListModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """Agents' log lines: everyone reads them (``?after=<id>`` for a live feed); only admins
    delete them."""

    serializer_class = LogLineSerializer
    filterset_class = LogLineFilter
    queryset = LogLine.objects.all()

    def get_permissions(self):
        if self.action in ("destroy", "purge"):
            return [perms.Allow(perms.can_delete_logs)()]
        return [Science()]

    def get_queryset(self):
        order = "-id" if self.request.query_params.get("after") is None else "id"
        return LogLine.objects.order_by(order)

    @extend_schema(request=None, responses={200: None})
    @action(detail=False, methods=["post"])
    def purge(self, request):
        """Delete every line the filters select (at least one filter is required)."""
        if not set(request.query_params) & set(LogLineFilter.base_filters):
            raise ValidationError({"detail": "Give at least one filter (cluster, calculation, level, before)."})
        with transaction.atomic():
            deleted, _ = self.filter_queryset(self.get_queryset()).delete()
        return Response({"deleted": deleted})


class DatasetExportView(APIView):
    """All succeeded calculations' extracted results with their molecule structures, for
    training ML models: CSV (one row per step, scalars flattened) or JSON Lines, streamed."""

    permission_classes = [Science]

    @extend_schema(parameters=[OpenApiParameter("format", str, enum=["jsonl", "csv"]),
                               OpenApiParameter("engine", str)],
                   responses={(200, "application/octet-stream"): bytes})
    def get(self, request):
        fmt = request.query_params.get("format", "jsonl")
        if fmt not in ("jsonl", "csv"):
            raise ValidationError({"format": "format is jsonl or csv."})
        calcs = exports.dataset_queryset(engine=request.query_params.get("engine"))
        rows = exports.dataset_jsonl(calcs) if fmt == "jsonl" else exports.dataset_csv(calcs)
        response = StreamingHttpResponse(rows, content_type="application/x-ndjson" if fmt == "jsonl" else "text/csv")
        response["Content-Disposition"] = f'attachment; filename="siestaflow-dataset.{fmt}"'
        return response
