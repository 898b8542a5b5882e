"""What agents do to calculations: claim work, report events, logs and results; and the
lease keeping that turns a silent agent's calculations into ``lost`` ones.

An agent only ever reaches its own cluster's calculations: every function takes the
cluster and the API layer looks calculations up through ``for_cluster``.
"""

from __future__ import annotations

import base64
import binascii
import logging
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from calculations import validation
from calculations.models import CHAIN_LEVEL, AnalysisResult, Artifact, Calculation, LogLine, Result
from calculations.services import IllegalTransition, StaleState, transition, transition_many
from calculations.states import ACTIVE, AGENT_REPORTABLE, State, why_not
from clusters.models import Cluster

log = logging.getLogger(__name__)


def for_cluster(cluster):
    """The calculations an agent of ``cluster`` may see."""
    return Calculation.objects.filter(cluster=cluster)


def _lease_until():
    return timezone.now() + timedelta(seconds=settings.LEASE_SECONDS)


# --- claiming ---------------------------------------------------------------------------


def claim(*, cluster, max_count: int) -> list[Calculation]:
    """Atomically claim up to ``max_count`` queued calculations of ``cluster`` in priority
    order, within the cluster's cap. No calculation is ever handed out twice: on PostgreSQL
    rows are locked with ``FOR UPDATE SKIP LOCKED``; SQLite takes the write lock at BEGIN
    (``transaction_mode=IMMEDIATE``), so claimers run one after another. The cap holds under
    concurrent claims: the cluster's row is locked while the room is counted and taken, so
    the claimers of one cluster count one after another (a few milliseconds each)."""
    if not cluster.enabled or max_count < 1:
        return []
    with transaction.atomic():
        Cluster.objects.select_for_update().filter(pk=cluster.pk).values_list("pk").first()
        room = cluster.max_concurrent - for_cluster(cluster).filter(state__in=ACTIVE).count()
        limit = min(max_count, room)
        if limit < 1:
            return []
        candidates = Calculation.objects.claimable_by(cluster)
        if connection.features.has_select_for_update_skip_locked:
            candidates = candidates.select_for_update(skip_locked=True, of=("self",))
        claimed = list(candidates[:limit])
        try:  # one UPDATE and one INSERT for all: the rows are locked (or SQLite is)
            transition_many(claimed, State.CLAIMED, by_agent=True, reason="claimed by the agent",
                            processed=True, lease_expires_at=_lease_until(), current_step=F("start_step"))
        except StaleState:
            return []  # not on these databases; the agent simply claims again
    return claimed


def has_claimable(cluster) -> bool:
    return cluster.enabled and Calculation.objects.claimable_by(cluster).exists()


def on_heartbeat(*, cluster, running_ids: list[int]) -> list[int]:
    """Renew the leases of the calculations the agent says it runs; answer those of them
    whose cancel was requested, in id order.

    Only what the agent lists: it can cancel nothing else (an active calculation it does not
    hold is one whose claim never reached it, and its lease runs out). So the heartbeat of
    an agent that runs nothing, most of them, reads no calculation at all."""
    if not running_ids:
        return []
    listed = for_cluster(cluster).filter(state__in=ACTIVE, pk__in=running_ids)
    listed.update(lease_expires_at=_lease_until())
    return list(listed.filter(cancel_requested=True).order_by("pk").values_list("pk", flat=True))


# --- events -----------------------------------------------------------------------------


EVENT_FIELDS = ("id", "state", "attempt", "agent_seq", "progress", "started_at")
"""What applying an event reads of its calculation (the locked read loads nothing else)."""


def record_event(*, calc: Calculation, seq: int, state: str, step: int | None = None, reason: str = "",
                 failure_class: str = "", progress: dict | None = None, attempt: int | None = None) -> dict:
    """Apply an agent's event. A replayed ``seq`` is a no-op; an illegal transition raises
    ``IllegalTransition``; an event repeating the current state only updates progress; an
    event of an ``attempt`` that is over raises ``StaleState``."""
    # No savepoint of its own (agents report thousands of events, and each savepoint costs
    # two round trips): a refusal is decided under the row's lock and raised after the
    # block, with nothing written.
    with transaction.atomic(savepoint=False):
        calc = Calculation.objects.select_for_update().only(*EVENT_FIELDS).get(pk=calc.pk)
        refusal = _refusal(calc, seq=seq, state=state, attempt=attempt)
        duplicate = refusal is None and seq <= calc.agent_seq
        if refusal is None and not duplicate:
            _apply_event(calc, seq=seq, state=State(state), step=step, reason=reason,
                         failure_class=failure_class, progress=progress)
    if refusal is not None:
        raise refusal
    return {"duplicate": duplicate, "state": calc.state}


def _refusal(calc: Calculation, *, seq: int, state: str, attempt: int | None) -> Exception | None:
    """Why an agent's event cannot be applied to ``calc`` (None: it can, or it is a replay)."""
    if attempt is not None and attempt != calc.attempt:
        return StaleState(f"Attempt {attempt} of calculation {calc.pk} is over: it runs attempt {calc.attempt} now.")
    if seq <= calc.agent_seq:
        return None  # a replay, answered as a duplicate
    if state not in AGENT_REPORTABLE:
        return IllegalTransition(f"An agent cannot report state {state!r}.")
    refusal = why_not(calc.state, State(state)) if state != calc.state else None
    return IllegalTransition(refusal) if refusal else None


def _apply_event(calc: Calculation, *, seq: int, state: State, step: int | None, reason: str,
                 failure_class: str, progress: dict | None) -> None:
    updates = {"agent_seq": seq, "lease_expires_at": _lease_until()}
    if step is not None:
        updates["current_step"] = step
    if progress is not None:
        updates["progress"] = with_trend(calc.progress, progress)
    if state == calc.state:
        Calculation.objects.filter(pk=calc.pk).update(**updates, updated_at=timezone.now())
        return
    if state == State.FAILED:
        failure_class = failure_class or "unknown"
        updates["failure_reason"] = reason
    if state in (State.SUCCEEDED, State.FAILED, State.CANCELLED):
        updates["lease_expires_at"] = None
    transition(calc, state, by_agent=True, seq=seq, step=step, reason=reason, failure_class=failure_class,
               **updates)


TREND_POINTS = 60
"""SCF energies kept for the running step's trend (the calculation page draws them)."""


def with_trend(previous: dict | None, progress: dict) -> dict:
    """``progress`` plus ``trend``: ``[iteration, energy]`` of the SCF cycle running now,
    newest last, at most TREND_POINTS. A new step, geometry step or cycle (the iteration
    goes back) starts it again; the same iteration reported twice counts once."""
    previous = previous or {}
    trend = [list(point) for point in previous.get("trend") or []]
    same_cycle = all(previous.get(key) == progress.get(key) for key in ("step", "geometry_step"))
    iteration, energy = progress.get("scf_iteration"), progress.get("energy")
    if not same_cycle or (trend and isinstance(iteration, int) and iteration < trend[-1][0]):
        trend = []
    if isinstance(iteration, int) and isinstance(energy, int | float) and not isinstance(energy, bool):
        if trend and trend[-1][0] == iteration:
            trend.pop()
        trend.append([iteration, energy])
    return {**progress, "trend": trend[-TREND_POINTS:]}


# --- logs and results -------------------------------------------------------------------


def store_logs(*, cluster, calc: Calculation | None, lines: list[dict]) -> int:
    """Store log lines once per (calculation, attempt, seq): retried batches are safe."""
    attempt = calc.attempt if calc else None
    rows = [LogLine(cluster=cluster, calculation=calc, attempt=attempt, seq=line.get("seq"),
                    level=line.get("level", "INFO"), message=line["message"],
                    time=line.get("time") or timezone.now()) for line in lines]
    LogLine.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


def _artifact_bytes(artifact: dict) -> bytes:
    try:
        content = base64.b64decode(artifact["content_b64"], validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError({"artifacts": f"{artifact['name']}: content_b64 is not base64."}) from None
    if len(content) > settings.ARTIFACT_MAX_BYTES:
        raise ValidationError({"artifacts": (
            f"{artifact['name']} is {len(content)} bytes, over the limit of {settings.ARTIFACT_MAX_BYTES}.")})
    return content


def store_results(*, calc: Calculation, step: int | None, key: str, data: dict | None,
                  analyses: list[dict], artifacts: list[dict]) -> Result:
    """Store (or replace) a step's extracted data, analysis results and artifacts."""
    step = CHAIN_LEVEL if step is None else step
    blobs = [(a, _artifact_bytes(a)) for a in artifacts]
    for artifact, _content in blobs:
        validation.check_file_name(artifact["name"], field="artifacts")
    # Refusals are above, before any write: no savepoint of its own. Results and analyses
    # are upserted, one statement each (a replayed report replaces what it sent before).
    with transaction.atomic(savepoint=False):
        [result] = Result.objects.bulk_create(
            [Result(calculation=calc, attempt=calc.attempt, step=step, key=key, data=data or {})],
            update_conflicts=True, unique_fields=["calculation", "attempt", "step", "key"],
            update_fields=["data", "updated_at"])
        latest = {analysis["name"]: analysis for analysis in analyses}  # one row may be written once
        if latest:
            AnalysisResult.objects.bulk_create(
                [AnalysisResult(calculation=calc, attempt=calc.attempt, step=step, name=name,
                                status=analysis["status"], data=analysis.get("data") or {},
                                message=analysis.get("message", "")) for name, analysis in latest.items()],
                update_conflicts=True, unique_fields=["calculation", "attempt", "step", "name"],
                update_fields=["status", "data", "message"])
        for artifact, content in blobs:
            Artifact.objects.filter(calculation=calc, attempt=calc.attempt, step=step, name=artifact["name"]).delete()
            Artifact.objects.create(calculation=calc, attempt=calc.attempt, step=step, name=artifact["name"],
                                    content_type=artifact.get("content_type", "application/octet-stream"),
                                    size=len(content), file=ContentFile(content, name=artifact["name"]))
    return result


# --- leases -----------------------------------------------------------------------------


def expire_leases(now=None) -> int:
    """Turn active calculations whose lease ran out into ``lost``, then requeue them (a new
    attempt) or, past ``LEASE_MAX_ATTEMPTS`` losses, fail them; one whose cancel was
    requested is cancelled instead. Returns how many."""
    now = now or timezone.now()
    expired = list(Calculation.objects.filter(state__in=ACTIVE, lease_expires_at__lt=now).select_related("cluster"))
    for calc in expired:
        try:
            _lose(calc, now)
        except (StaleState, IllegalTransition):
            continue  # the agent reported meanwhile: not lost after all
    return len(expired)


def _lose(calc: Calculation, now) -> None:
    silent = (now - calc.lease_expires_at).total_seconds() + settings.LEASE_SECONDS
    reason = f"no word from the agent of {calc.cluster.name} for {silent:.0f} s (lease expired)"
    if calc.cancel_requested:  # the user's request stands: not run again
        log.warning("calculation %s cancelled as asked: %s", calc.pk, reason)
        transition(calc, State.CANCELLED, reason=f"cancel requested; {reason}", lease_expires_at=None)
        return
    log.warning("calculation %s lost: %s", calc.pk, reason)
    transition(calc, State.LOST, reason=reason, lost_count=calc.lost_count + 1, lease_expires_at=None)
    if calc.lost_count >= settings.LEASE_MAX_ATTEMPTS:
        transition(calc, State.FAILED, reason=f"lost {calc.lost_count} times; giving up",
                   failure_class="lost", failure_reason=reason)
    else:
        transition(calc, State.QUEUED, reason=f"requeued after being lost ({calc.lost_count} of "
                   f"{settings.LEASE_MAX_ATTEMPTS})", attempt=calc.attempt + 1, start_step=calc.current_step,
                   processed=False, agent_seq=0, cancel_requested=False)
