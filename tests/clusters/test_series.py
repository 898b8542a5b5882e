"""services.resource_series: at most max_points points, the right source, the right means."""

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection

from clusters import services
from clusters.models import Heartbeat, HeartbeatRollup
from tests.factories import HeartbeatFactory

NOW = datetime(2026, 3, 31, 12, 0, 7, tzinfo=UTC)  # not aligned on purpose


@pytest.fixture(autouse=True)
def _frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def _cpu(moment: datetime) -> float:
    """A known, varying CPU value for every moment."""
    return float(int(moment.timestamp()) // 60 % 97)


def _expected(samples: list[tuple[datetime, float, int]], step: int) -> dict[datetime, float]:
    """Weighted means of (time, value, weight) per step-second bucket since 1970."""
    sums, weights = defaultdict(float), defaultdict(int)
    for moment, value, weight in samples:
        bucket = datetime.fromtimestamp(int(moment.timestamp()) // step * step, UTC)
        sums[bucket] += value * weight
        weights[bucket] += weight
    return {bucket: sums[bucket] / weights[bucket] for bucket in sums}


def _check(series: dict, samples, max_points: int) -> None:
    assert 0 < len(series["points"]) <= max_points
    expected = _expected(samples, series["step"])
    assert {p["time"]: p["cpu_percent"] for p in series["points"]} == pytest.approx(expected)
    assert sum(p["samples"] for p in series["points"]) == sum(weight for *_, weight in samples)


def _raw(cluster, start: datetime, end: datetime, every: int) -> list:
    times = [start + timedelta(seconds=s) for s in range(0, int((end - start).total_seconds()), every)]
    Heartbeat.objects.bulk_create(Heartbeat(cluster=cluster, time=t, cpu_percent=_cpu(t), load_1=1.0)
                                  for t in times)
    return [(t, _cpu(t), 1) for t in times]


def _rollups(cluster, resolution: str, start: datetime, end: datetime) -> list:
    step = HeartbeatRollup.SECONDS[resolution]
    first = datetime.fromtimestamp(int(start.timestamp()) // step * step + step, UTC)
    buckets = [first + timedelta(seconds=step * i) for i in range(int((end - first).total_seconds()) // step)]
    HeartbeatRollup.objects.bulk_create(
        HeartbeatRollup(cluster=cluster, resolution=resolution, bucket=b, cpu_percent=_cpu(b),
                        samples=1 + int(b.timestamp()) // step % 5) for b in buckets)
    return [(b, _cpu(b), 1 + int(b.timestamp()) // step % 5) for b in buckets]


@pytest.mark.parametrize("max_points", [300, 50, 2])
def test_it_serves_an_hour_from_raw_points(cluster, max_points):
    start = NOW - timedelta(hours=1)
    samples = _raw(cluster, start, NOW, every=10)
    series = services.resource_series(cluster=cluster, start=start, end=NOW, max_points=max_points)
    # 300 points: 13 s apart, from raw points; fewer: whole minutes (from raw points too,
    # as nothing is rolled up yet).
    assert (series["resolution"], series["step"]) == {300: ("raw", 13), 50: ("minute", 120),
                                                      2: ("minute", 3600)}[max_points]
    _check(series, samples, max_points)


@pytest.mark.parametrize("max_points", [300, 50])
def test_it_serves_a_day_from_minute_rollups_and_the_newest_raw_points(cluster, max_points):
    start = NOW - timedelta(days=1)
    rolled_until = NOW - timedelta(minutes=7, seconds=7)  # the task's last run
    samples = _rollups(cluster, "minute", start - timedelta(minutes=1), rolled_until)
    samples += _raw(cluster, rolled_until, NOW, every=10)
    series = services.resource_series(cluster=cluster, start=start, end=NOW, max_points=max_points)
    assert series["resolution"] == "minute" and series["step"] % 60 == 0
    _check(series, samples, max_points)


def test_it_serves_a_week_from_minute_rollups(cluster):
    start = NOW - timedelta(weeks=1)
    samples = _rollups(cluster, "minute", start - timedelta(minutes=1), NOW)
    series = services.resource_series(cluster=cluster, start=start, end=NOW)
    assert series["resolution"] == "minute"
    _check(series, samples, 300)


@pytest.mark.parametrize("max_points", [300, 20])
def test_it_serves_a_month_from_hour_rollups(cluster, max_points):
    start = NOW - timedelta(days=30)
    samples = _rollups(cluster, "hour", start - timedelta(hours=1), NOW)
    series = services.resource_series(cluster=cluster, start=start, end=NOW, max_points=max_points)
    assert series["resolution"] == "hour" and series["step"] % 3600 == 0
    _check(series, samples, max_points)


def test_it_agrees_with_the_downsampling_task(cluster):
    start = NOW - timedelta(days=1)
    samples = _raw(cluster, start, NOW, every=60)
    for _ in range(6):
        services.downsample_heartbeats()
    assert HeartbeatRollup.objects.filter(resolution="minute").exists()
    series = services.resource_series(cluster=cluster, start=start, end=NOW)
    assert series["resolution"] == "minute"
    _check(series, samples, 300)


def test_it_uses_minute_rollups_for_short_windows_past_raw_retention(cluster, settings):
    settings.HEARTBEAT_RAW_RETENTION_DAYS = 7
    start = NOW - timedelta(days=10)
    samples = _rollups(cluster, "minute", start, start + timedelta(hours=1))
    series = services.resource_series(cluster=cluster, start=start, end=start + timedelta(hours=1))
    assert (series["resolution"], series["step"]) == ("minute", 60)
    _check(series, samples, 300)


def test_it_answers_no_points_for_a_silent_window(cluster):
    series = services.resource_series(cluster=cluster, start=NOW - timedelta(days=1), end=NOW)
    assert series["points"] == []


def test_it_answers_none_for_metrics_never_reported(cluster):
    HeartbeatFactory(cluster=cluster, time=NOW - timedelta(minutes=1), disk_free=None)
    (point,) = services.resource_series(cluster=cluster, start=NOW - timedelta(hours=1), end=NOW)["points"]
    assert point["disk_free"] is None and point["cpu_percent"] == 10.0


def test_it_keeps_clusters_apart(cluster):
    from tests.factories import ClusterFactory

    HeartbeatFactory(cluster=ClusterFactory(), time=NOW - timedelta(minutes=1))
    assert services.resource_series(cluster=cluster, start=NOW - timedelta(hours=1), end=NOW)["points"] == []


def test_it_refuses_an_empty_window(cluster):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        services.resource_series(cluster=cluster, start=NOW, end=NOW)


@pytest.mark.parametrize("window", [timedelta(hours=1), timedelta(days=1), timedelta(days=30)])
def test_it_takes_at_most_three_queries(cluster, window, django_assert_max_num_queries):
    with django_assert_max_num_queries(3):
        services.resource_series(cluster=cluster, start=NOW - window, end=NOW)


def test_it_reads_raw_points_through_the_cluster_time_index(cluster):
    queryset = Heartbeat.objects.bucketed(cluster_id=cluster.pk, start=NOW - timedelta(hours=1), end=NOW, step=12)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")  # the planner's choice on tiny tables
    assert "clusters_hb_cluster_time" in queryset.explain()
