"""Every change to clusters, their API keys and their heartbeats, plus the graph query.

Views, the API, the admin and the tasks parse input and call these. Changes to clusters
and keys ask ``accounts.permissions.can_manage_clusters`` here once more, so no entry
point can skip it.
"""

from __future__ import annotations

import logging
import math
import secrets
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from accounts import permissions as perms
from clusters.models import METRICS, ApiKey, Cluster, Heartbeat, HeartbeatRollup, epoch_to_datetime, hash_key
from siestaflow.lib.db import commit_without_waiting_for_disk

logger = logging.getLogger(__name__)

EDITABLE_FIELDS = ("name", "description", "enabled", "max_concurrent", "heartbeat_interval", "requires_approval")


def _check_manager(actor) -> None:
    if not perms.can_manage_clusters(actor):
        raise PermissionDenied("Only admins manage clusters and their API keys.")


def _editable(fields: dict[str, Any]) -> dict[str, Any]:
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise TypeError(f"not editable cluster fields: {', '.join(sorted(unknown))}")
    return fields


# --- Clusters -------------------------------------------------------------------------


@transaction.atomic
def create_cluster(*, actor, name: str, **fields) -> Cluster:
    """Add a cluster (admins only). Its agent needs an API key next: see ``create_key``."""
    _check_manager(actor)
    cluster = Cluster(name=name, **_editable(fields))
    cluster.full_clean()
    cluster.save()
    return cluster


@transaction.atomic
def update_cluster(*, actor, cluster: Cluster, **fields) -> Cluster:
    """Change a cluster's name, description, limits or approval rule (admins only).

    Only the given fields are written, so a heartbeat saving at the same time keeps its own.
    """
    _check_manager(actor)
    for name, value in _editable(fields).items():
        setattr(cluster, name, value)
    cluster.full_clean()
    if fields:
        cluster.save(update_fields=list(fields))
    return cluster


def set_enabled(*, actor, cluster: Cluster, enabled: bool) -> Cluster:
    """Enable or disable a cluster (admins only): a disabled cluster gets no new work."""
    return update_cluster(actor=actor, cluster=cluster, enabled=enabled)


@transaction.atomic
def delete_cluster(*, actor, cluster: Cluster) -> None:
    """Delete a cluster with its keys and heartbeats (admins only). While calculations
    still refer to it, Django's ProtectedError refuses (the API answers 409): disable it."""
    _check_manager(actor)
    cluster.delete()


# --- API keys -------------------------------------------------------------------------


def _new_key_text() -> tuple[str, str]:
    """A fresh ``(prefix, key)``; the secret part holds 32 random bytes."""
    prefix = secrets.token_hex(6)
    return prefix, f"{ApiKey.PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"


@transaction.atomic
def create_key(*, actor, cluster: Cluster, name: str) -> tuple[ApiKey, str]:
    """A new API key for ``cluster`` (admins only). Answers the key with the text of the
    key, which is shown this once: only its SHA-256 is stored."""
    _check_manager(actor)
    prefix, plaintext = _new_key_text()
    while ApiKey.objects.filter(prefix=prefix).exists():  # 48 random bits: practically never
        prefix, plaintext = _new_key_text()
    key = ApiKey(cluster=cluster, name=(name or "").strip(), prefix=prefix, key_hash=hash_key(plaintext),
                 created_by=actor)
    key.full_clean(exclude=["cluster", "created_by"])
    key.save()
    logger.info("API key %s (%s) created for cluster %s by %s", key.prefix, key.name, cluster.name, actor)
    return key, plaintext


@transaction.atomic
def revoke_key(*, actor, key: ApiKey) -> ApiKey:
    """Revoke a key (admins only): the next request signed with it gets 401. Revoking a
    revoked key keeps its first revocation time."""
    _check_manager(actor)
    now = timezone.now()
    if ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=now):
        key.revoked_at = now
        logger.info("API key %s of cluster %s revoked by %s", key.prefix, key.cluster_id, actor)
    else:
        key.refresh_from_db(fields=["revoked_at"])
    return key


@transaction.atomic
def rotate_key(*, actor, key: ApiKey) -> tuple[ApiKey, str]:
    """Replace a key by a new one of the same name (admins only): the old one is revoked
    at once. Answers the new key and its text, shown this once."""
    _check_manager(actor)
    current = ApiKey.objects.select_for_update().select_related("cluster").get(pk=key.pk)
    if current.is_revoked:
        raise ValidationError("This key is revoked already: create a new one instead.")
    revoke_key(actor=actor, key=current)
    key.revoked_at = current.revoked_at
    return create_key(actor=actor, cluster=current.cluster, name=current.name)


@transaction.atomic
def provision_agent(*, actor, name: str, key_name: str, held_key: str | None = None,
                    description: str = "") -> tuple[Cluster, str, str]:
    """Make sure cluster ``name`` exists and is enabled, and that its agent holds a valid key
    (admins only; ``setup_local_agent`` for the demo). ``held_key`` is the key text the
    agent's configuration holds, if any: reused while it is an active key of this cluster.
    Otherwise the active key called ``key_name`` is rotated (its only copy is lost, so it must
    not stay valid), or a first one is created. Answers the cluster, the key text and what
    happened: ``"reused"``, ``"rotated"`` or ``"created"``."""
    _check_manager(actor)
    cluster = Cluster.objects.filter(name=name).first()
    if cluster is None:
        cluster = create_cluster(actor=actor, name=name, description=description)
    elif not cluster.enabled:
        set_enabled(actor=actor, cluster=cluster, enabled=True)
    active = ApiKey.objects.active().filter(cluster=cluster)
    if held_key and active.filter(key_hash=hash_key(held_key)).exists():
        return cluster, held_key, "reused"
    previous = active.filter(name=key_name).first()
    if previous is not None:
        return cluster, rotate_key(actor=actor, key=previous)[1], "rotated"
    return cluster, create_key(actor=actor, cluster=cluster, name=key_name)[1], "created"


# --- Heartbeats -----------------------------------------------------------------------


def _cancel_requested(*, cluster: Cluster, running_ids: list[int]) -> list[int]:
    """Renew the leases of the running calculations; the ids whose cancel was requested."""
    from calculations.ingest import on_heartbeat  # here: calculations depends on clusters

    return list(on_heartbeat(cluster=cluster, running_ids=running_ids))


@transaction.atomic
def record_heartbeat(*, cluster: Cluster, payload: dict[str, Any]) -> dict[str, Any]:
    """Store one heartbeat of ``cluster``'s agent: a resource point, the cluster's liveness
    and what the agent reports (version, engines, analyses); renew the leases of the
    calculations it runs. Answers what the agent must do: the ids to cancel and the
    cluster's settings. ``payload`` is the agent's body as ``HeartbeatSerializer`` shapes it.
    """
    commit_without_waiting_for_disk()  # one every few seconds per cluster: the next one follows
    now = timezone.now()
    running = sorted(set(payload.get("running") or []))
    load = payload.get("load") or [None]
    point = Heartbeat(
        cluster=cluster, time=now, cpu_percent=payload.get("cpu_percent"),
        memory_percent=payload.get("memory_percent"), memory_used=payload.get("memory_used"),
        memory_total=payload.get("memory_total"), disk_free=payload.get("disk_free"),
        load_1=load[0], running=len(running))
    point.full_clean(exclude=["cluster"])  # the ranges hold whichever entry point called
    point.save()

    changes: dict[str, Any] = {"last_heartbeat_at": now}
    for field in ("agent_version", "engines", "analyses"):
        if field in payload:
            changes[field] = payload[field]
    Cluster.objects.filter(pk=cluster.pk).update(**changes)  # not save(): admins' edits stay
    for field, value in changes.items():
        setattr(cluster, field, value)

    return {
        "cancel": _cancel_requested(cluster=cluster, running_ids=running),
        "settings": {"enabled": cluster.enabled, "heartbeat_interval": cluster.heartbeat_interval,
                     "max_concurrent": cluster.max_concurrent},
        "server_time": now,
    }


# --- Downsampling ---------------------------------------------------------------------

# How much time one run rolls up per cluster and resolution, so that a run stays short
# even after a long pause; the next runs go on from there.
ROLLUP_SPAN = {"minute": timedelta(hours=6), "hour": timedelta(days=2)}
# A heartbeat's transaction commits a little after its timestamp: leave the last seconds
# to the next run, so that no point lands in a bucket already rolled up.
ROLLUP_GRACE = timedelta(seconds=30)


def _floor(moment: datetime, step: int) -> datetime:
    return epoch_to_datetime(int(moment.timestamp()) // step * step)


def _means(row: dict[str, Any]) -> dict[str, float | None]:
    return {m: (row[f"{m}_sum"] / row[f"{m}_n"] if row[f"{m}_n"] else None) for m in METRICS}


def _roll_up(*, cluster_id: int, resolution: str, now: datetime) -> int:
    """Roll up the next complete buckets of raw points (at most ``ROLLUP_SPAN``); upsert."""
    step = HeartbeatRollup.SECONDS[resolution]
    pending = Heartbeat.objects.filter(cluster_id=cluster_id)
    done = HeartbeatRollup.objects.done_until(cluster_id=cluster_id, resolution=resolution)
    if done is not None:
        pending = pending.filter(time__gte=done)
    first = pending.order_by("time").values_list("time", flat=True).first()
    if first is None:
        return 0
    start = _floor(first, step)
    end = min(start + ROLLUP_SPAN[resolution], _floor(now - ROLLUP_GRACE, step))
    if end <= start:
        return 0
    rows = [
        HeartbeatRollup(cluster_id=cluster_id, resolution=resolution, bucket=epoch_to_datetime(row["slot"]),
                        samples=row["n"], **_means(row))
        for row in Heartbeat.objects.bucketed(cluster_id=cluster_id, start=start, end=end, step=step)
    ]
    HeartbeatRollup.objects.bulk_create(
        rows, update_conflicts=True, unique_fields=["cluster", "resolution", "bucket"],
        update_fields=[*METRICS, "samples"])
    return len(rows)


def _prune(*, cluster_id: int, now: datetime) -> tuple[int, int]:
    """Delete raw points and minute rollups past their retention, never before they are
    rolled up (so a pause of the task loses nothing)."""
    minute_done = HeartbeatRollup.objects.done_until(cluster_id=cluster_id, resolution="minute")
    hour_done = HeartbeatRollup.objects.done_until(cluster_id=cluster_id, resolution="hour")
    raw = minutes = 0
    if minute_done and hour_done:
        keep = min(now - timedelta(days=settings.HEARTBEAT_RAW_RETENTION_DAYS), minute_done, hour_done)
        raw, _ = Heartbeat.objects.filter(cluster_id=cluster_id, time__lt=keep).delete()
    if hour_done:
        keep = min(now - timedelta(days=settings.HEARTBEAT_MINUTE_RETENTION_DAYS), hour_done)
        minutes, _ = HeartbeatRollup.objects.filter(
            cluster_id=cluster_id, resolution="minute", bucket__lt=keep).delete()
    return raw, minutes


def downsample_heartbeats(*, now: datetime | None = None) -> dict[str, int]:
    """Roll raw heartbeats up into minute and hour means and prune old rows, for every
    cluster. Idempotent: a second run finds nothing new. Answers the counts."""
    now = now or timezone.now()
    counts = {"minute": 0, "hour": 0, "raw_deleted": 0, "minute_deleted": 0}
    for cluster_id in Cluster.objects.order_by("pk").values_list("pk", flat=True):
        with transaction.atomic():
            counts["minute"] += _roll_up(cluster_id=cluster_id, resolution="minute", now=now)
            counts["hour"] += _roll_up(cluster_id=cluster_id, resolution="hour", now=now)
            raw, minutes = _prune(cluster_id=cluster_id, now=now)
        counts["raw_deleted"] += raw
        counts["minute_deleted"] += minutes
    return counts


# --- Graphs ---------------------------------------------------------------------------


def _series_source(*, start: datetime, step_needed: float, now: datetime) -> tuple[str, int]:
    """The finest source whose rows are fine enough for the step and still kept for the
    window: raw points, minute rollups or hour rollups; with its time unit in seconds."""
    if step_needed <= 60 and start >= now - timedelta(days=settings.HEARTBEAT_RAW_RETENTION_DAYS):
        return "raw", 1
    if step_needed <= 3600 and start >= now - timedelta(days=settings.HEARTBEAT_MINUTE_RETENTION_DAYS):
        return "minute", 60
    return "hour", 3600


def _slot_rows(*, cluster_id: int, resolution: str, start: datetime, end: datetime, step: int) -> list[dict]:
    """Bucketed rows from the source; rollups up to where they are done, then raw points
    (the newest minutes are not rolled up yet)."""
    if resolution == "raw":
        return list(Heartbeat.objects.bucketed(cluster_id=cluster_id, start=start, end=end, step=step))
    done = HeartbeatRollup.objects.done_until(cluster_id=cluster_id, resolution=resolution)
    split = min(max(done or start, start), end)
    rows: list[dict] = []
    if split > start:
        # From the rollup holding ``start``: a graph's first point covers its whole bucket.
        first = _floor(start, HeartbeatRollup.SECONDS[resolution])
        rows += HeartbeatRollup.objects.bucketed(cluster_id=cluster_id, resolution=resolution,
                                                 start=first, end=split, step=step)
    if end > split:
        rows += Heartbeat.objects.bucketed(cluster_id=cluster_id, start=split, end=end, step=step)
    return rows


def _merge(rows: list[dict]) -> dict[int, dict]:
    """Rows of the same slot (a rollup part and a raw part) added together."""
    merged: dict[int, dict] = {}
    for row in rows:
        slot = merged.setdefault(row["slot"], {})
        for name, value in row.items():
            if name != "slot":
                slot[name] = slot.get(name, 0) + (value or 0)
    return merged


def resource_series(*, cluster: Cluster, start: datetime, end: datetime, max_points: int = 300) -> dict[str, Any]:
    """The cluster's resource means over [start, end) in at most ``max_points`` points.

    The step is the window over ``max_points - 1`` (buckets align to multiples of the step
    since 1970, so a window touches at most one bucket more than it spans), rounded up to
    whole seconds, minutes or hours by the source: raw points for short recent windows,
    minute rollups up to ~2.5 days per 300 points, hour rollups beyond. The database does
    the bucketing, from the (cluster, time) index or the rollups' unique index.
    """
    if end <= start:
        raise ValidationError({"end": "The end must come after the start."})
    if max_points < 2:
        raise ValidationError({"max_points": "Ask for at least 2 points."})
    step_needed = (end - start).total_seconds() / (max_points - 1)
    resolution, unit = _series_source(start=start, step_needed=step_needed, now=timezone.now())
    step = max(1, math.ceil(step_needed / unit)) * unit
    rows = _slot_rows(cluster_id=cluster.pk, resolution=resolution, start=start, end=end, step=step)
    points = [{"time": epoch_to_datetime(slot), **_means(row), "samples": row["n"]}
              for slot, row in sorted(_merge(rows).items())]
    return {"resolution": resolution, "step": step, "start": start, "end": end, "points": points}
