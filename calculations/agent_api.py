"""The calculation routes of the agent API (``/api/agent/v1/``): list, claim, events, logs,
results and input files. Authenticated only by a cluster API key; an agent sees only its
own cluster's calculations (any other id is a 404). See docs/agent-api.md."""

from __future__ import annotations

import time

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import APIException
from rest_framework.generics import ListAPIView
from rest_framework.response import Response

from calculations import ingest
from calculations.models import Calculation, CalculationFile
from calculations.serializers import (
    AgentEventSerializer,
    AgentLogsSerializer,
    AgentPendingSerializer,
    AgentReportsSerializer,
    AgentResultsSerializer,
    ClaimRequestSerializer,
)
from calculations.services import IllegalTransition, StaleState, events_batched, notifications_batched
from clusters.agent_api import AgentView as ClusterAgentView

CLAIM_POLL_SECONDS = 0.2


class AgentView(ClusterAgentView):
    """Cluster key only, JSON bodies, agent error shape; calculations of this cluster only."""

    def calculation(self, pk) -> Calculation:
        return get_object_or_404(ingest.for_cluster(self.cluster), pk=pk)


def spec(calc: Calculation) -> dict:
    """Everything an agent needs to run ``calc`` (see docs/agent-api.md)."""
    base = f"/api/agent/v1/calculations/{calc.pk}/files/"
    return {
        "id": calc.pk, "name": calc.name, "engine": calc.engine, "attempt": calc.attempt,
        "config": calc.config,
        "molecule": calc.structure,
        "pseudopotentials": [{"element": p.element, "name": p.name, "sha256": p.sha256, "url": base + p.name}
                             for p in calc.pseudopotentials.all()],
        "files": [{"name": f.name, "sha256": f.sha256, "size": f.size, "url": base + f.name}
                  for f in calc.files.all()],
        "analyses": calc.analyses, "chain": calc.chain, "start_step": calc.start_step,
        "resume_from_attempt": calc.attempt - 1 if calc.start_step else None,
        "lease_expires_at": calc.lease_expires_at,
    }


SpecSerializer = inline_serializer("CalculationSpec", fields={
    "id": serializers.IntegerField(), "name": serializers.CharField(), "engine": serializers.CharField(),
    "attempt": serializers.IntegerField(), "config": serializers.DictField(),
    "molecule": serializers.DictField(allow_null=True), "pseudopotentials": serializers.ListField(),
    "files": serializers.ListField(), "analyses": serializers.ListField(),
    "chain": serializers.DictField(allow_null=True),
    "start_step": serializers.IntegerField(), "resume_from_attempt": serializers.IntegerField(allow_null=True),
    "lease_expires_at": serializers.DateTimeField()})


class PendingView(ListAPIView, AgentView):
    """The calculations waiting for this cluster (the original design's polling contract)."""

    serializer_class = AgentPendingSerializer

    @extend_schema(parameters=[OpenApiParameter("processed", bool, description="only false is meaningful")])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Calculation.objects.none()
        if self.request.query_params.get("processed", "false").lower() not in ("false", "0"):
            return Calculation.objects.none()
        return Calculation.objects.claimable_by(self.cluster) if self.cluster.enabled else Calculation.objects.none()


class ClaimView(AgentView):
    """Claim up to ``max`` calculations; with ``wait``, answer as soon as work exists."""

    @extend_schema(request=ClaimRequestSerializer, responses={200: inline_serializer(
        "ClaimAnswer", fields={"calculations": serializers.ListField(child=SpecSerializer)})})
    def post(self, request):
        form = ClaimRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        deadline = time.monotonic() + form.validated_data["wait"]
        while True:
            claimed = ingest.claim(cluster=self.cluster, max_count=form.validated_data["max"])
            if claimed or time.monotonic() >= deadline:
                break
            while time.monotonic() < deadline and not ingest.has_claimable(self.cluster):
                time.sleep(CLAIM_POLL_SECONDS)
        calcs = Calculation.objects.filter(pk__in=[c.pk for c in claimed]).prefetch_related(
            "pseudopotentials", "files").claim_order()
        return Response({"calculations": [spec(c) for c in calcs]})


def _current_attempt(calc: Calculation, data: dict) -> None:
    """A report about an attempt that is over (the calculation was requeued or resumed since)
    is refused: its ``seq`` numbers would otherwise be filed under the new attempt."""
    attempt = data.get("attempt")
    if attempt is not None and attempt != calc.attempt:
        raise Conflict(f"Attempt {attempt} of calculation {calc.pk} is over: it runs attempt {calc.attempt} now.")


def _event(calc: Calculation, body, cluster) -> tuple[int, dict]:
    form = AgentEventSerializer(data=body)
    form.is_valid(raise_exception=True)
    data = form.validated_data
    try:
        answer = ingest.record_event(calc=calc, seq=data["seq"], state=data["state"], step=data["step"],
                                     reason=data["reason"], failure_class=data["failure_class"] or "",
                                     progress=data["progress"], attempt=data.get("attempt"))
    except (IllegalTransition, StaleState) as exc:
        raise Conflict(str(exc)) from exc
    return status.HTTP_200_OK, answer


def _logs(calc: Calculation, body, cluster) -> tuple[int, dict]:
    form = AgentLogsSerializer(data=body)
    form.is_valid(raise_exception=True)
    _current_attempt(calc, form.validated_data)
    return status.HTTP_200_OK, {"accepted": ingest.store_logs(cluster=cluster, calc=calc,
                                                              lines=form.validated_data["lines"])}


def _results(calc: Calculation, body, cluster) -> tuple[int, dict]:
    form = AgentResultsSerializer(data=body)
    form.is_valid(raise_exception=True)
    _current_attempt(calc, form.validated_data)
    result = ingest.store_results(calc=calc, **{k: v for k, v in form.validated_data.items() if k != "attempt"})
    return status.HTTP_201_CREATED, {"id": result.pk, "acknowledged": True}


REPORTS = {"event": _event, "logs": _logs, "results": _results}
"""What an agent reports about a calculation: the body each takes is that of its own route.
Each refuses (an APIException, a ValidationError, Http404) before it writes anything, and
writes atomically, so a batch needs no savepoint per report (keep it so)."""


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The calculation is in another state."


class ReportView(AgentView):
    """One kind of report about one calculation (``REPORTS``)."""

    kind = ""

    def post(self, request, pk):
        code, answer = REPORTS[self.kind](self.calculation(pk), request.data, self.cluster)
        return Response(answer, status=code)


class EventsView(ReportView):
    """A state change (or progress) of a calculation, once per sequence number."""

    kind = "event"

    @extend_schema(request=AgentEventSerializer, responses={200: inline_serializer(
        "EventAnswer", fields={"duplicate": serializers.BooleanField(), "state": serializers.CharField()})})
    def post(self, request, pk):
        return super().post(request, pk)


class LogsView(ReportView):
    """A batch of log lines; each line is stored once per sequence number."""

    kind = "logs"

    @extend_schema(request=AgentLogsSerializer, responses={200: inline_serializer(
        "LogsAnswer", fields={"accepted": serializers.IntegerField()})})
    def post(self, request, pk):
        return super().post(request, pk)


class AgentLogsView(AgentView):
    """Log lines of the agent itself, about no calculation."""

    @extend_schema(request=AgentLogsSerializer, responses={200: inline_serializer(
        "AgentLogsAnswer", fields={"accepted": serializers.IntegerField()})})
    def post(self, request):
        form = AgentLogsSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        return Response({"accepted": ingest.store_logs(cluster=self.cluster, calc=None,
                                                       lines=form.validated_data["lines"])})


class ResultsView(ReportView):
    """Extracted data, analysis results and small artifacts of a step (or of the chain)."""

    kind = "results"

    @extend_schema(request=AgentResultsSerializer, responses={201: inline_serializer(
        "ResultsAnswer", fields={"id": serializers.IntegerField(), "acknowledged": serializers.BooleanField()})})
    def post(self, request, pk):
        return super().post(request, pk)


class ReportsView(AgentView):
    """Several reports in order, in one request and one transaction (one commit, not one per
    report): each is answered as its own route would answer it, and a refused report (400,
    404, 409) changes nothing and leaves the others applied, as every kind refuses before it
    writes (``REPORTS``). A database error fails the whole batch."""

    @extend_schema(request=AgentReportsSerializer, responses={200: inline_serializer(
        "ReportsAnswer", fields={"answers": serializers.ListField(child=serializers.DictField())})})
    def post(self, request):
        form = AgentReportsSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        reports = form.validated_data["reports"]
        # One lookup for the batch: logs and results use the row's id and attempt, and an
        # event reads its row again, locked.
        calcs = ingest.for_cluster(self.cluster).in_bulk({r["calculation"] for r in reports})
        # The events inserted at once before the commit, their notifications in one message after it.
        with notifications_batched(), transaction.atomic(), events_batched():
            answers = [self._apply(report, calcs) for report in reports]
        return Response({"answers": answers})

    def _apply(self, report: dict, calcs: dict[int, Calculation]) -> dict:
        try:
            calc = calcs.get(report["calculation"])
            if calc is None:
                raise Http404("No such calculation on this cluster.")
            code, answer = REPORTS[report["kind"]](calc, report["body"], self.cluster)
        except (APIException, DjangoValidationError, Http404) as exc:
            refused = self.get_exception_handler()(exc, self.get_exception_handler_context())
            return {"status": refused.status_code, "body": refused.data}
        return {"status": code, "body": answer}


class FileView(AgentView):
    """The bytes of an input file or pseudopotential of the calculation, streamed."""

    @extend_schema(responses={(200, "application/octet-stream"): bytes})
    def get(self, request, pk, name):
        calc = self.calculation(pk)
        attached = CalculationFile.objects.filter(calculation=calc, name=name).first()
        stored = attached or calc.pseudopotentials.filter(name=name).first()
        if stored is None:
            raise Http404(f"No file {name} in calculation {pk}.")
        response = FileResponse(stored.file.open("rb"), as_attachment=True, filename=name)
        response["X-Checksum-Sha256"] = stored.sha256
        return response
