"""The pages of calculations: list, detail (with live progress), create and edit, reports.

Every write goes through ``calculations.services``; every button follows
``accounts.permissions`` and the services ask the same predicates again.
"""

from __future__ import annotations

from tempfile import SpooledTemporaryFile
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.http import FileResponse, Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts import permissions as perms
from calculations import compare, exports, reports, services
from calculations.filters import CalculationFilter, LogLineFilter
from calculations.forms import CalculationForm
from calculations.models import CHAIN_LEVEL, Calculation, LogLine
from calculations.states import EDITABLE, State
from calculations.why import why_waiting
from clusters.services import resource_series

science = perms.require(perms.can_use_science)
PAGE_SIZE = 25
LOG_TAIL = 30
PREDICTIONS_SHOWN = 10
SPOOL_BYTES = 8 * 1024 * 1024  # a report ZIP bigger than this goes to a temporary file
FILTER_LABELS = {"owner": "Owner (username)", "created_after": "Created after (e.g. 2026-01-31)",
                 "created_before": "Created before", "search": "Search names and descriptions"}


def _calc(request, pk: int, *relations) -> Calculation:
    """The calculation ``pk`` if the user may see it, else 404."""
    calcs = Calculation.objects.visible_to(request.user).with_list_relations()
    return get_object_or_404(calcs.prefetch_related(*relations), pk=pk)


# --- list ---------------------------------------------------------------------------------------


@science
def calculation_list(request):
    """Calculations, filtered by the same FilterSet as the API list, newest first."""
    filters = CalculationFilter(request.GET, queryset=Calculation.objects.visible_to(request.user)
                                .with_list_relations())
    for name, label in FILTER_LABELS.items():
        filters.form.fields[name].label = label
    page = Paginator(filters.qs, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "calculations/calculation_list.html", {"filter": filters, "page": page})


# --- detail -------------------------------------------------------------------------------------


def progress_data(calc: Calculation) -> dict:
    """What the detail page refreshes while the calculation runs."""
    return {"id": calc.pk, "state": calc.state, "state_display": calc.get_state_display(),
            "terminal": calc.is_terminal, "step": calc.current_step + 1, "steps": calc.step_count,
            "progress": calc.progress or {}, "cancel_requested": calc.cancel_requested,
            "trend_points": reports.polyline([e for _i, e in (calc.progress or {}).get("trend") or []]),
            "updated_at": calc.updated_at.isoformat()}


def _resources(calc: Calculation) -> dict | None:
    """The cluster's CPU and memory while ``calc`` ran, as SVG polylines."""
    if calc.started_at is None:
        return None
    end = calc.finished_at or timezone.now()
    if end <= calc.started_at:
        return None
    points = resource_series(cluster=calc.cluster, start=calc.started_at, end=end, max_points=120)["points"]
    return {"samples": len(points), "start": calc.started_at, "end": end,
            "cpu": reports.polyline([p["cpu_percent"] for p in points], bounds=(0, 100)),
            "memory": reports.polyline([p["memory_percent"] for p in points], bounds=(0, 100))}


def _actions(user, calc: Calculation) -> dict:
    """Which buttons to show; the services refuse the same things for whoever posts anyway."""
    science_ok = perms.can_use_science(user)
    approver = perms.can_approve_calculations(user) and calc.state == State.PENDING_APPROVAL
    return {"cancel": science_ok and not calc.is_terminal and calc.state != State.LOST
            and not calc.cancel_requested,
            "resume": science_ok and calc.state == State.FAILED,
            "edit": science_ok and calc.state in EDITABLE, "approve": approver, "reject": approver}


@science
def calculation_detail(request, pk: int):
    """Everything about one calculation: configuration, progress, events, resources, logs,
    results, analyses, plots, downloads and the actions the user may take."""
    calc = _calc(request, pk, "pseudopotentials", "files")
    report = reports.collect(calc)
    return render(request, "calculations/calculation_detail.html", {
        "calc": calc, "progress": progress_data(calc), "why": why_waiting(calc),
        "events": calc.events.select_related("actor"), "resources": _resources(calc),
        "logs": list(calc.log_lines.order_by("-id")[:LOG_TAIL])[::-1], "report": report,
        "results": reports.result_tables(report), "tables": reports.analysis_tables(report),
        "plots": reports.plots(report), "actions": _actions(request.user, calc),
        "predictions": _predictions(calc, report)})


def _predictions(calc: Calculation, report: reports.Report) -> list[tuple]:
    """The latest ML predictions made for ``calc``, each beside the DFT value it predicts
    (its last step's extracted data) when the model names its target."""
    from mlmodels.comparison import dft_comparison  # calculations does not depend on mlmodels

    steps = [r for r in report.results if r.key == "extracted" and r.step != CHAIN_LEVEL]
    extracted = steps[-1].data if steps else None
    latest = calc.predictions.order_by("-created_at", "-id")[:PREDICTIONS_SHOWN]
    return [(p, dft_comparison(p, extracted)) for p in latest]


@science
def calculation_progress(request, pk: int):
    """The state and progress as JSON, polled by calculations.js every few seconds."""
    calc = get_object_or_404(Calculation.objects.visible_to(request.user), pk=pk)
    return JsonResponse(progress_data(calc))


def _refuse_to_page(request, calc, change) -> None:
    """Run a service; its refusals become a message on the page instead of an error page."""
    try:
        change()
    except (ValidationError, services.IllegalTransition, services.StaleState) as exc:
        messages.error(request, " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc))
    else:
        messages.success(request, f"{calc.name}: done.")


@require_POST
@science
def calculation_action(request, pk: int, action: str):
    """Cancel, resume, approve or reject (with a reason): the services check who may."""
    calc = _calc(request, pk)
    user = request.user
    changes = {
        "cancel": lambda: services.cancel(actor=user, calc=calc),
        "resume": lambda: services.resume(actor=user, calc=calc),
        "approve": lambda: services.approve(actor=user, calc=calc),
        "reject": lambda: services.reject(actor=user, calc=calc, reason=request.POST.get("reason", "")),
    }
    if action not in changes:
        raise Http404("No such action.")
    if action in ("approve", "reject") and not perms.can_approve_calculations(user):
        raise PermissionDenied("Only moderators and admins approve or reject calculations.")
    _refuse_to_page(request, calc, changes[action])
    return redirect("calculation-detail", pk=calc.pk)


# --- files and downloads ------------------------------------------------------------------------


@science
def calculation_artifact(request, pk: int, artifact_id: int):
    """An artifact, streamed from storage: plots inline (as images only), anything else as an
    attachment, since agents choose names and contents."""
    calc = get_object_or_404(Calculation.objects.visible_to(request.user), pk=pk)
    artifact = get_object_or_404(calc.artifacts, pk=artifact_id)
    suffix = reports.image_suffix(artifact.name)
    response = FileResponse(artifact.file.open("rb"), filename=artifact.name, as_attachment=not suffix,
                            content_type=reports.IMAGE_TYPES.get(suffix, "application/octet-stream"))
    response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
    response["X-Content-Type-Options"] = "nosniff"
    return response


DOWNLOADS = {("config", "json"), ("config", "fdf"), ("extracted", "json"), ("extracted", "csv")}


@science
def calculation_download(request, pk: int, what: str, fmt: str):
    """The configuration (JSON, fdf) or the extracted data (JSON, CSV), as the API gives them."""
    if (what, fmt) not in DOWNLOADS:
        raise Http404("No such download.")
    calc = _calc(request, pk, "pseudopotentials", "results")
    if what == "config":
        return exports.config_download(calc, fmt)
    return exports.extracted_download(calc, fmt)


# --- create, edit, duplicate --------------------------------------------------------------------


def _save(form: CalculationForm, write) -> Calculation | None:
    """Run a service with the form's data; its validation errors land next to the fields."""
    if not form.is_valid():
        return None
    try:
        return write()
    except ValidationError as exc:
        form.add_service_errors(exc)
        return None


def _source_files(source: Calculation | None, uploads: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """A copy keeps the original's attached files, unless a new upload has the same name."""
    if source is None:
        return uploads
    names = {name for name, _content in uploads}
    kept = []
    for attached in source.files.all():
        if attached.name not in names:
            with attached.file.open("rb") as handle:
                kept.append((attached.name, handle.read()))
    return uploads + kept


@science
def calculation_create(request):
    """A new calculation; ``?from=<id>`` starts from a copy of another one (duplicate)."""
    source = None
    if request.GET.get("from", "").isdigit():
        source = _calc(request, int(request.GET["from"]), "pseudopotentials", "files")
    initial = CalculationForm.initial_from(source) if source else {}
    if source:
        initial["name"] = f"{source.name} (copy)"
    posted = request.method == "POST"
    form = CalculationForm(request.POST if posted else None, request.FILES if posted else None, initial=initial)
    calc = posted and _save(form, lambda: services.submit_calculation(
        owner=request.user, files=_source_files(source, form.uploads()), **form.service_fields()))
    if calc:
        messages.success(request, f"Calculation {calc.name} submitted ({calc.get_state_display().lower()}).")
        return redirect("calculation-detail", pk=calc.pk)
    return render(request, "calculations/calculation_form.html", {
        "form": form, "source": source}, status=400 if posted else 200)


@science
def calculation_edit(request, pk: int):
    """Edit a calculation before it starts (the service refuses once it has)."""
    calc = _calc(request, pk, "pseudopotentials", "files")
    if calc.state not in EDITABLE:
        messages.error(request, f"A {calc.get_state_display().lower()} calculation can no longer be edited.")
        return redirect("calculation-detail", pk=calc.pk)
    posted = request.method == "POST"
    form = CalculationForm(request.POST if posted else None, request.FILES if posted else None, calc=calc,
                           initial=CalculationForm.initial_from(calc))
    saved = posted and _save(form, lambda: services.update_calculation(
        actor=request.user, calc=calc, **form.service_fields()))
    if saved:
        messages.success(request, f"Calculation {saved.name} saved.")
        return redirect("calculation-detail", pk=calc.pk)
    return render(request, "calculations/calculation_form.html", {
        "form": form, "calc": calc}, status=400 if posted else 200)


# --- report -------------------------------------------------------------------------------------


@science
def calculation_report(request, pk: int):
    """The report page: energies, analyses' tables and plots."""
    calc = _calc(request, pk)
    report = reports.collect(calc)
    return render(request, "calculations/calculation_report.html", {
        "calc": calc, "report": report, "energies": reports.energy_rows(report),
        "tables": reports.analysis_tables(report), "plots": reports.plots(report)})


@science
def calculation_report_pdf(request, pk: int):
    """The report as a PDF: a title page with the key results, one page per analysis plot."""
    calc = _calc(request, pk)
    out = SpooledTemporaryFile(max_size=SPOOL_BYTES)  # FileResponse closes it
    reports.build_pdf(reports.collect(calc), out)
    out.seek(0)
    return FileResponse(out, as_attachment=True, filename=f"calculation-{calc.pk}-report.pdf",
                        content_type="application/pdf")


@science
def calculation_report_zip(request, pk: int):
    """Extracted data and analyses (CSV, JSON) and the artifacts, zipped; spooled to disk past
    a few megabytes so big artifacts never sit whole in memory."""
    calc = _calc(request, pk)
    out = SpooledTemporaryFile(max_size=SPOOL_BYTES)  # FileResponse closes it
    reports.build_zip(reports.collect(calc), out)
    out.seek(0)
    return FileResponse(out, as_attachment=True, filename=f"calculation-{calc.pk}-report.zip",
                        content_type="application/zip")


# --- logs ---------------------------------------------------------------------------------------

LOG_LINES = 200  # lines per page of the log feed
FEED_LINES = 500  # the most lines one poll of the live feed answers
LOG_FILTER_KEYS = ("cluster", "calculation", "level", "attempt", "before")


def _log_filters(data) -> LogLineFilter:
    """The shared log FilterSet as the page's form: the calculation is typed as an id (a
    select of every calculation would not scale); ``after`` is the live feed's own."""
    filters = LogLineFilter(data, queryset=LogLine.objects.all())
    # The level is a plain column: no duplicates to remove, and a DISTINCT would sort millions of lines.
    filters.filters["level"].distinct = False
    fields = filters.form.fields
    fields.pop("after")
    fields["calculation"].widget = forms.NumberInput(attrs={"min": 1})
    fields["calculation"].label = "Calculation id"
    fields["level"].widget = forms.CheckboxSelectMultiple(choices=fields["level"].choices)
    fields["before"].widget = forms.DateTimeInput(attrs={"type": "datetime-local"})
    fields["before"].label = f"Before (date and time, {timezone.get_current_timezone_name()})"
    return filters


def _log_rows(lines, limit: int) -> list[dict]:
    """Up to ``limit`` lines as dicts, for the page and the live feed alike (one query)."""
    lines = lines.select_related("cluster", "calculation").only(
        "id", "level", "message", "time", "attempt", "cluster__name", "calculation__name")[:limit]
    return [{"id": line.pk, "time": line.time.isoformat(), "level": line.level,
             "time_display": timezone.localtime(line.time).strftime("%Y-%m-%d %H:%M:%S"),
             "cluster": line.cluster.name, "calculation": line.calculation_id, "attempt": line.attempt,
             "calculation_name": line.calculation.name if line.calculation_id else "", "message": line.message}
            for line in lines]


def _id_param(value) -> int | None:
    return int(value) if value and value.isascii() and value.isdigit() and len(value) <= 18 else None


@science
def logs(request):
    """The agents' log lines, filtered, newest at the bottom. ``logs.js`` appends new ones
    from ``logs_feed``; ``?older=<id>`` pages back by id (keyset: no COUNT, no OFFSET)."""
    filters = _log_filters(request.GET)
    older = _id_param(request.GET.get("older"))
    valid = filters.is_valid()
    lines = filters.qs.filter(id__lt=older) if older else filters.qs
    rows = _log_rows(lines.order_by("-id"), LOG_LINES + 1) if valid else []
    query = request.GET.copy()
    for key in ("older", "after"):
        query.pop(key, None)
    return render(request, "calculations/logs.html", {
        "filter": filters, "lines": rows[:LOG_LINES][::-1], "has_older": len(rows) > LOG_LINES,
        "older": older, "query": query.urlencode(), "live": valid and not older,
        "can_delete": perms.can_delete_logs(request.user)}, status=200 if valid else 400)


@science
def logs_feed(request):
    """JSON for the live feed: the lines after ``?after=<id>`` that match the filters,
    oldest first; ``more`` says another poll would find more at once."""
    filters = _log_filters(request.GET)
    after = request.GET.get("after", "")
    if not filters.is_valid() or (after != "0" and not _id_param(after)):
        errors = dict(filters.errors) if filters.errors else {"after": ["after is a line id (0 for all)."]}
        return JsonResponse({"errors": errors}, status=400)
    rows = _log_rows(filters.qs.filter(id__gt=int(after)).order_by("id"), FEED_LINES + 1)
    lines = rows[:FEED_LINES]
    return JsonResponse({"lines": lines, "more": len(rows) > FEED_LINES,
                         "last": lines[-1]["id"] if lines else int(after)})


@perms.require(perms.can_delete_logs)
def logs_delete(request):
    """Admins delete the log lines that the filters select, after a confirmation page; at
    least one valid filter is required, so a typo never widens the deletion."""
    data = request.POST if request.method == "POST" else request.GET
    filters = _log_filters(data)
    chosen = [(filters.form[key].label, ", ".join(map(str, value)) if isinstance(value, list) else str(value))
              for key, value in filters.form.cleaned_data.items()
              if value not in (None, "", [])] if filters.is_valid() else []
    if request.method == "POST" and chosen:
        with transaction.atomic():
            deleted, _ = filters.qs.delete()  # one DELETE … WHERE: log lines have no dependents
        messages.success(request, f"Deleted {deleted} log line{'s' if deleted != 1 else ''}.")
        return redirect("logs")
    hidden = [(key, value) for key in LOG_FILTER_KEYS for value in data.getlist(key) if value]
    return render(request, "calculations/logs_delete.html", {
        "filter": filters, "chosen": chosen, "hidden": hidden}, status=200 if chosen else 400)


# --- analyses -----------------------------------------------------------------------------------


@science
def analyses(request):
    """Calculations with analysis results, filtered by the shared CalculationFilter, with
    checkboxes to compare several of them."""
    calcs = compare.with_analyses(Calculation.objects.visible_to(request.user).with_list_relations())
    filters = CalculationFilter(request.GET, queryset=calcs.defer("config", "structure", "progress"))
    filters.filters["state"].distinct = False  # a plain column: DISTINCT would only cost a sort
    valid = filters.is_valid()
    page = Paginator(filters.qs if valid else calcs.none(), PAGE_SIZE).get_page(request.GET.get("page"))
    names = compare.analysis_names([c.pk for c in page])
    return render(request, "calculations/analyses.html", {
        "filter": filters, "page": page, "max_compared": compare.MAX_COMPARED,
        "rows": [(c, names.get(c.pk, [])) for c in page]}, status=200 if valid else 400)


@science
def analyses_compare(request):
    """Calculations side by side (``?ids=1&ids=2``): key results and overlaid plots."""
    try:
        comparison = compare.compare(user=request.user, ids=compare.parse_ids(request.GET.getlist("ids")))
    except compare.ComparisonError as error:
        return render(request, "calculations/analyses_compare.html", {"error": str(error)}, status=error.status)
    return render(request, "calculations/analyses_compare.html", {
        "comparison": comparison, "ids_query": urlencode([("ids", pk) for pk in comparison.ids])})


@science
def analyses_compare_plot(request, kind):
    """One overlaid plot of a comparison, as SVG (the page shows it with ``<img>``)."""
    try:
        comparison = compare.compare(user=request.user, ids=compare.parse_ids(request.GET.getlist("ids")))
    except compare.ComparisonError as error:
        return HttpResponse(str(error), content_type="text/plain; charset=utf-8", status=error.status)
    svg = compare.plot_svg(comparison, kind)
    if svg is None:
        raise Http404("These calculations have no such plot.")
    response = HttpResponse(svg, content_type="image/svg+xml")
    response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    response["Cache-Control"] = "private, max-age=300"
    return response
