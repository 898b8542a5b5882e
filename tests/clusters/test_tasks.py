"""clusters.tasks.downsample_heartbeats: minute and hour means, idempotence, retention."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from clusters import services
from clusters.models import Heartbeat, HeartbeatRollup
from clusters.tasks import downsample_heartbeats
from tests.factories import ClusterFactory, HeartbeatFactory

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _run(now: datetime) -> dict:
    with time_machine.travel(now, tick=False):
        return downsample_heartbeats()


def _rollups(resolution: str) -> dict:
    return {r.bucket: r for r in HeartbeatRollup.objects.filter(resolution=resolution)}


@pytest.fixture
def known_points(cluster):
    """Three points in 12:00, one in 12:01, one in 12:59; one in 13:00 (not complete at 13:00:45)."""
    points = [(0, 10, 1000, 1.0, 1), (20, 20, 2000, 2.0, 2), (40, 30, 3000, 3.0, 3),
              (70, 40, 4000, 4.0, 0), (59 * 60 + 5, 50, 5000, None, 1), (3600 + 10, 99, 9, 9.0, 9)]
    for seconds, cpu, disk, load, running in points:
        HeartbeatFactory(cluster=cluster, time=T0 + timedelta(seconds=seconds), cpu_percent=cpu,
                         memory_percent=cpu / 2, disk_free=disk, load_1=load, running=running)
    return cluster


def test_it_rolls_up_minute_means(known_points):
    _run(T0 + timedelta(hours=1, seconds=45))
    minutes = _rollups("minute")
    assert sorted(minutes) == [T0, T0 + timedelta(minutes=1), T0 + timedelta(minutes=59)]
    first = minutes[T0]
    assert (first.samples, first.cpu_percent, first.memory_percent) == (3, 20, 10)
    assert (first.disk_free, first.load_1, first.running) == (2000, 2.0, 2)
    assert (minutes[T0 + timedelta(minutes=1)].cpu_percent, minutes[T0 + timedelta(minutes=1)].samples) == (40, 1)
    assert minutes[T0 + timedelta(minutes=59)].load_1 is None  # no load reported that minute


def test_it_rolls_up_hour_means(known_points):
    _run(T0 + timedelta(hours=1, seconds=45))
    hours = _rollups("hour")
    assert list(hours) == [T0]  # 13:00 is not over yet
    hour = hours[T0]
    assert hour.samples == 5
    assert hour.cpu_percent == pytest.approx((10 + 20 + 30 + 40 + 50) / 5)
    assert hour.load_1 == pytest.approx((1 + 2 + 3 + 4) / 4)  # the means ignore missing values
    assert hour.disk_free == pytest.approx(3000)


def test_it_leaves_the_current_minute_for_later(known_points):
    _run(T0 + timedelta(hours=1, seconds=45))
    assert T0 + timedelta(hours=1) not in _rollups("minute")
    _run(T0 + timedelta(hours=1, minutes=2))
    assert _rollups("minute")[T0 + timedelta(hours=1)].cpu_percent == 99


def test_it_is_idempotent(known_points):
    first = _run(T0 + timedelta(hours=2, minutes=1))
    before = list(HeartbeatRollup.objects.order_by("pk").values())
    second = _run(T0 + timedelta(hours=2, minutes=1))
    assert first["minute"] == 4 and first["hour"] == 2
    assert second == {"minute": 0, "hour": 0, "raw_deleted": 0, "minute_deleted": 0}
    assert list(HeartbeatRollup.objects.order_by("pk").values()) == before


def test_it_tolerates_an_overlapping_run(known_points, monkeypatch):
    _run(T0 + timedelta(hours=2, minutes=1))
    before = list(HeartbeatRollup.objects.order_by("pk").values())
    # A run that read "nothing rolled up yet" before the first one committed redoes the same
    # buckets: the upsert rewrites them with the same means instead of failing.
    monkeypatch.setattr(type(HeartbeatRollup.objects), "done_until", lambda self, **kwargs: None)
    HeartbeatRollup.objects.filter(bucket=T0).update(cpu_percent=0)
    _run(T0 + timedelta(hours=2, minutes=1))
    assert list(HeartbeatRollup.objects.order_by("pk").values()) == before


def test_it_keeps_each_cluster_apart(known_points):
    other = ClusterFactory()
    HeartbeatFactory(cluster=other, time=T0 + timedelta(seconds=5), cpu_percent=90)
    _run(T0 + timedelta(hours=2))
    mine = HeartbeatRollup.objects.get(cluster=known_points, resolution="minute", bucket=T0)
    theirs = HeartbeatRollup.objects.get(cluster=other, resolution="minute", bucket=T0)
    assert (mine.cpu_percent, theirs.cpu_percent) == (20, 90)


def test_it_rolls_up_a_bounded_slice_per_run(cluster):
    Heartbeat.objects.bulk_create(
        Heartbeat(cluster=cluster, time=T0 + timedelta(minutes=m), cpu_percent=m % 100) for m in range(12 * 60))
    now = T0 + timedelta(hours=13)
    first = _run(now)
    assert first["minute"] == 6 * 60  # services.ROLLUP_SPAN
    second = _run(now)
    assert second["minute"] == 6 * 60
    assert _run(now)["minute"] == 0
    assert HeartbeatRollup.objects.filter(resolution="minute").count() == 12 * 60
    assert HeartbeatRollup.objects.filter(resolution="hour").count() == 12


def test_it_skips_long_silences_at_once(cluster):
    HeartbeatFactory(cluster=cluster, time=T0)
    HeartbeatFactory(cluster=cluster, time=T0 + timedelta(days=30))
    now = T0 + timedelta(days=30, hours=1)
    _run(now)
    _run(now)
    assert sorted(_rollups("minute")) == [T0, T0 + timedelta(days=30)]


def test_it_deletes_raw_points_past_retention_once_rolled_up(cluster, settings):
    settings.HEARTBEAT_RAW_RETENTION_DAYS = 7
    now = T0 + timedelta(days=10)
    old = HeartbeatFactory(cluster=cluster, time=now - timedelta(days=7, minutes=5))
    recent = HeartbeatFactory(cluster=cluster, time=now - timedelta(days=6, hours=23))
    newest = HeartbeatFactory(cluster=cluster, time=now - timedelta(hours=2))
    for _ in range(3):
        _run(now)
    assert set(Heartbeat.objects.all()) == {recent, newest}
    assert old.time.replace(second=0) in _rollups("minute")


def test_it_never_deletes_raw_points_not_rolled_up(cluster):
    now = T0 + timedelta(days=30)
    HeartbeatFactory(cluster=cluster, time=T0)
    services._prune(cluster_id=cluster.pk, now=now)
    assert Heartbeat.objects.count() == 1


def test_it_deletes_minute_rollups_past_retention_and_keeps_hours(cluster, settings):
    settings.HEARTBEAT_MINUTE_RETENTION_DAYS = 90
    now = T0 + timedelta(days=100)
    for bucket in (now - timedelta(days=91), now - timedelta(days=89)):
        for resolution in ("minute", "hour"):
            HeartbeatRollup.objects.create(cluster=cluster, resolution=resolution, bucket=bucket, samples=1)
    result = _run(now)
    assert result["minute_deleted"] == 1
    assert sorted(_rollups("minute")) == [now - timedelta(days=89)]
    assert len(_rollups("hour")) == 2


def test_it_is_scheduled_by_beat(settings):
    assert any(entry["task"] == "clusters.tasks.downsample_heartbeats"
               for entry in settings.CELERY_BEAT_SCHEDULE.values())
    assert downsample_heartbeats.name == "clusters.tasks.downsample_heartbeats"
