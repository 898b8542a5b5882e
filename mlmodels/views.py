"""The Models pages: the list with each model's state and health, a model's page with its
heartbeat graph, recent predictions and a prediction form, and the admins' register, edit
and delete pages.

Everyone signed in sees models, starts and stops them and predicts
(``accounts.permissions.can_use_science``); only admins register, edit and delete them
(``can_manage_models``). ``mlmodels.services`` asks both once more and does the work, so a
prediction from this page is the same as one through ``POST /api/models/{id}/invocations/``.
"""

from __future__ import annotations

import json

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts import permissions as perms
from mlmodels import docker, invocations, services
from mlmodels.api import WINDOWS
from mlmodels.forms import DeleteForm, MLModelForm, PredictForm
from mlmodels.models import MLModel, Prediction
from siestaflow.forms import run_service

PAGE_SIZE = 50
RECENT_PREDICTIONS = 10
CHART_W, CHART_H, CHART_POINTS = 600, 120, 120
# What the proxy would answer for the same failure; the page answers it too.
FAILURE_STATUS = {invocations.NotReady: 503, invocations.PayloadTooLarge: 413, docker.DockerError: 503}


@perms.require(perms.can_use_science)
def model_list(request):
    """Every model with its state and health (last ping, restarts), and start/stop buttons."""
    models = MLModel.objects.visible_to(request.user).order_by("name")
    page = Paginator(models, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "mlmodels/model_list.html", {
        "page": page, "can_manage": perms.can_manage_models(request.user)})


@perms.require(perms.can_use_science)
def model_detail(request, pk):
    """A model: its facts, heartbeat graph, recent predictions and a prediction form; a POST
    sends the form's JSON to the model and shows its answer (or the error) here."""
    model = get_object_or_404(MLModel.objects.visible_to(request.user), pk=pk)
    answer, status = None, 200
    if request.method == "POST":
        form = PredictForm(request.POST)
        answer, status = _predict(request, model, form) if form.is_valid() else (None, 400)
        model.refresh_from_db()
    else:
        form = PredictForm(initial={"input": model.example_input})
    return render(request, "mlmodels/model_detail.html", {
        "model": model, "form": form, "answer": answer, "chart": _chart(model, request.GET.get("window")),
        "windows": list(WINDOWS), "delete_form": DeleteForm(),
        "predictions": _recent_predictions(request.user, model),
        "can_manage": perms.can_manage_models(request.user)}, status=status)


@perms.require(perms.can_manage_models)
def model_create(request):
    """Register a model image that is already on the Docker engine."""
    form = MLModelForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        model = _apply(form, lambda: services.register_model(actor=request.user, **data))
        if model:
            messages.success(request, f"Model {model.name} registered: start it when you need it.")
            return redirect("model-detail", pk=model.pk)
    return render(request, "mlmodels/model_form.html", {"form": form, "model": None},
                  status=400 if form.errors else 200)


@perms.require(perms.can_manage_models)
def model_edit(request, pk):
    """Change a model; what its container is made of only while it is stopped."""
    model = get_object_or_404(MLModel, pk=pk)
    form = MLModelForm(request.POST or None, instance=MLModel.objects.get(pk=pk))
    if request.method == "POST" and form.is_valid():
        if _apply(form, lambda: services.update_model(actor=request.user, model=model, **form.cleaned_data)):
            messages.success(request, f"Model {form.cleaned_data['name']} saved.")
            return redirect("model-detail", pk=pk)
    return render(request, "mlmodels/model_form.html", {"form": form, "model": model},
                  status=400 if form.errors else 200)


@require_POST
@perms.require(perms.can_manage_models)
def model_delete(request, pk):
    """Stop and delete a model (and its image on request); its predictions stay."""
    model = get_object_or_404(MLModel, pk=pk)
    form = DeleteForm(request.POST)
    form.is_valid()  # one optional checkbox: always valid
    try:
        services.delete_model(actor=request.user, model=model, **form.cleaned_data)
    except docker.DockerError as exc:
        messages.error(request, f"Model {model.name} was not deleted: {exc}")
        return redirect("model-detail", pk=pk)
    messages.success(request, f"Model {model.name} deleted.")
    return redirect("models")


@require_POST
@perms.require(perms.can_use_science)
def model_action(request, pk, action):
    """Start or stop a model, then back to the page the button was on."""
    model = get_object_or_404(MLModel.objects.visible_to(request.user), pk=pk)
    run = {"start": services.start_model, "stop": services.stop_model}.get(action)
    if run is None:
        raise Http404("No such action.")
    try:
        model = run(actor=request.user, model=model)
        messages.success(request, f"Model {model.name} is {model.get_state_display().lower()}.")
    except (docker.DockerError, services.WrongState) as exc:
        messages.error(request, f"Could not {action} model {model.name}: {exc}")
    return redirect("models") if request.POST.get("next") == "list" else redirect("model-detail", pk=pk)


# --- helpers ------------------------------------------------------------------------------


def _predict(request, model: MLModel, form: PredictForm) -> tuple[dict, int]:
    """Send the form's JSON through the proxy's service: the answer to show, and the status."""
    body = json.dumps(form.cleaned_data["input"]).encode()
    try:
        result = invocations.invoke(actor=request.user, model=model, body=body, content_type="application/json")
    except invocations.InvocationFailed as failed:
        return {"ok": False, "error": str(failed), "prediction": failed.prediction}, failed.status
    except tuple(FAILURE_STATUS) as exc:
        status = next(code for kind, code in FAILURE_STATUS.items() if isinstance(exc, kind))
        return {"ok": False, "error": str(exc)}, status
    return {"ok": True, "text": _pretty(result.reply.body), "prediction": result.prediction}, 200


def _pretty(body: bytes) -> str:
    text = body.decode("utf-8", "replace")
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


def _recent_predictions(user, model: MLModel) -> list[Prediction]:
    """The latest predictions of the model this user may see (all for moderators and admins),
    with their input and output as JSON text."""
    predictions = list(Prediction.objects.visible_to(user).filter(model=model).select_related("user")
                       .order_by("-created_at", "-id")[:RECENT_PREDICTIONS])
    for p in predictions:
        p.input_text = json.dumps(p.input, ensure_ascii=False)
        p.output_text = "" if p.output is None else json.dumps(p.output, ensure_ascii=False)
    return predictions


def _chart(model: MLModel, window: str | None) -> dict:
    """The model's pings over the window as an inline SVG: mean latency as a line, buckets
    with a failed ping as red bars; with the uptime and mean latency for its label."""
    window = window if window in WINDOWS else "hour"
    end = timezone.now()
    start = end - WINDOWS[window]
    points = services.series(model=model, start=start, end=end, max_points=CHART_POINTS)["points"]
    span = (end - start).total_seconds()

    def x(point) -> float:  # buckets are aligned on the epoch: the first may begin before the window
        return max(0.0, (point["time"] - start).total_seconds() / span * CHART_W)

    timed = [(x(p), p["latency_ms"]) for p in points if p["latency_ms"] is not None]
    top = max((latency for _x, latency in timed), default=0) or 1.0
    samples, ok = sum(p["samples"] for p in points), sum(p["ok"] for p in points)
    return {"window": window, "width": CHART_W, "height": CHART_H, "slot": f"{max(2.0, CHART_W / CHART_POINTS):.1f}",
            "line": " ".join(f"{px:.1f},{CHART_H - latency / top * (CHART_H - 8):.1f}" for px, latency in timed),
            "failures": [f"{x(p):.1f}" for p in points if p["ok"] < p["samples"]],
            "samples": samples, "failed": samples - ok, "top": top, "uptime": 100 * ok / samples if samples else None,
            "latency": sum(latency for _x, latency in timed) / len(timed) if timed else None,
            "start": start, "end": end}


def _apply(form, write):
    """Run a service call; its validation errors land on the form's fields, a wrong state
    (stop the model first) above them."""
    try:
        return run_service(form, write)
    except services.WrongState as exc:
        form.add_error(None, str(exc))
        return None
