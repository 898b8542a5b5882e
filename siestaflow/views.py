"""Project-level pages: the dashboard and the sections not built yet."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from django.contrib.auth.decorators import login_required
from django.db.models import Avg, Count, F
from django.shortcuts import render
from django.utils import timezone

from accounts import permissions as perms
from calculations.models import Calculation, CalculationEvent
from calculations.states import ACTIVE, WAITING, State
from clusters.models import Cluster, EpochBucket, Heartbeat
from clusters.views import clusters_with_activity

SPARK_WINDOW = timedelta(hours=1)
SPARK_STEP = 60  # seconds per sparkline point: 60 points over the hour
SPARK_W, SPARK_H = 120, 28
LATEST_EVENTS = 10
DASHBOARD_CLUSTERS = 12  # the most recently heard from; the Clusters page pages through all
MY_CALCULATIONS = 10


@login_required
def dashboard(request):
    """The most recently heard-from clusters with their last hour of CPU and memory,
    calculation counts, the latest events and the user's own latest calculations: a fixed
    number of queries and a bounded page, however many clusters and calculations there are."""
    now = timezone.now()
    clusters = list(clusters_with_activity().order_by(F("last_heartbeat_at").desc(nulls_last=True), "name")
                    [:DASHBOARD_CLUSTERS])
    cluster_total = Cluster.objects.count()
    sparks = _sparklines([c.pk for c in clusters], now)
    for cluster in clusters:
        cluster.sparks = sparks.get(cluster.pk, {})
    calcs = Calculation.objects.visible_to(request.user)
    counts = _counts(calcs)
    events = (CalculationEvent.objects.filter(calculation__in=calcs)
              .select_related("calculation", "actor").order_by("-created_at", "-id")[:LATEST_EVENTS])
    mine = calcs.filter(owner=request.user).select_related("cluster", "molecule")[:MY_CALCULATIONS]
    return render(request, "dashboard.html", {
        "clusters": clusters, "cluster_total": cluster_total, "counts": counts, "events": events, "mine": mine,
        "can_manage_clusters": perms.can_manage_clusters(request.user)})


def _counts(calcs) -> dict[str, int]:
    """Running, queued and failed calculations: one GROUP BY over the state index, never a
    scan of the succeeded ones (most of the table)."""
    by_state = dict(calcs.filter(state__in=ACTIVE | WAITING | {State.FAILED}).order_by()
                    .values_list("state").annotate(n=Count("pk")))
    return {"running": sum(by_state.get(s, 0) for s in ACTIVE),
            "queued": sum(by_state.get(s, 0) for s in WAITING), "failed": by_state.get(State.FAILED, 0)}


def _sparklines(cluster_ids: list[int], now: datetime) -> dict[int, dict[str, dict]]:
    """Per cluster, CPU and memory means per minute of the last hour as SVG polyline points,
    in one query for all clusters. Raw points are kept for days, so the last hour is always
    there; ``clusters.services.resource_series`` answers the same for one cluster at a time."""
    start = now - SPARK_WINDOW
    rows = (Heartbeat.objects.filter(cluster_id__in=cluster_ids, time__gte=start, time__lt=now)
            .annotate(slot=EpochBucket("time", step=SPARK_STEP)).values("cluster_id", "slot")
            .annotate(cpu=Avg("cpu_percent"), memory=Avg("memory_percent")).order_by("cluster_id", "slot"))
    series: dict[int, dict[str, list]] = defaultdict(lambda: {"cpu": [], "memory": []})
    for row in rows:
        for metric in ("cpu", "memory"):
            if row[metric] is not None:
                series[row["cluster_id"]][metric].append((row["slot"], row[metric]))
    start_s = start.timestamp()
    return {pk: {metric: _spark(points, start_s) for metric, points in by_metric.items()}
            for pk, by_metric in series.items()}


def _spark(points: list[tuple[int, float]], start: float) -> dict:
    """A 0–100 % series as the points of an SVG polyline, with its latest and highest value."""
    if not points:
        return {}
    span = SPARK_WINDOW.total_seconds()
    coords = " ".join(
        f"{max(0.0, (slot - start) / span * SPARK_W):.1f},{SPARK_H - min(value, 100) / 100 * SPARK_H:.1f}"
        for slot, value in points)
    return {"points": coords, "latest": points[-1][1], "highest": max(v for _s, v in points)}


def section_placeholder(title: str, what: str):
    """An honest empty state for a section whose page is not built yet."""

    @login_required
    def view(request):
        return render(request, "section_empty.html", {"title": title, "what": what})

    view.__name__ = f"{title.lower()}_placeholder"
    return view
