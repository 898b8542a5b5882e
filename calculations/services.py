"""Every write to calculations, for users. (What agents write is in ``ingest.py``.)

``transition`` is the only function that changes a calculation's state: it checks the table
in ``states.py``, performs a conditional UPDATE (a concurrent change is detected, never
overwritten) and appends an event whose notification is enqueued once the transaction
commits.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts import permissions as perms
from calculations import validation
from calculations.models import Approval, Calculation, CalculationEvent, CalculationFile
from calculations.states import EDITABLE, TERMINAL, WAITING, State, why_not

log = logging.getLogger(__name__)


class StaleState(Exception):
    """Another process changed the calculation first; nothing was written."""

    http_status = 409


class IllegalTransition(Exception):
    """The state table does not allow this change; the message says why."""

    http_status = 409


def transition(calc: Calculation, to: State, *, actor=None, by_agent: bool = False, reason: str = "",
               seq: int | None = None, step: int | None = None, failure_class: str = "",
               data: dict | None = None, **updates) -> CalculationEvent:
    """Move ``calc`` to ``to`` (and set ``updates``) if nobody changed its state meanwhile."""
    source = calc.state
    refusal = why_not(source, to)
    if refusal:
        raise IllegalTransition(refusal)
    now = timezone.now()
    updates = {"state": to, "updated_at": now, **updates}
    if failure_class:
        updates.setdefault("failure_class", failure_class)
    if to == State.RUNNING and calc.started_at is None:
        updates.setdefault("started_at", now)
    if to in TERMINAL:
        updates.setdefault("finished_at", now)
    # No savepoint of its own (two round trips fewer): a refusal is raised after the block,
    # with nothing written, and a database error spoils the caller's transaction anyway.
    with transaction.atomic(savepoint=False):
        changed = Calculation.objects.filter(pk=calc.pk, state=source).update(**updates)
        if changed:
            for name, value in updates.items():
                setattr(calc, name, value)
            event = CalculationEvent(
                calculation=calc, attempt=calc.attempt, seq=seq, from_state=source, to_state=to, step=step,
                actor=actor if getattr(actor, "pk", None) else None, by_agent=by_agent, reason=reason,
                failure_class=failure_class, data=data or {})
            _save_events([event])
    if not changed:
        raise StaleState(f"Calculation {calc.pk} changed state meanwhile (it was {source}).")
    return event


@contextmanager
def _collecting(into: ContextVar[list | None]) -> Iterator[list]:
    """A new list in ``into`` for the block (what the code inside adds to it), yielded."""
    items: list = []
    token = into.set(items)
    try:
        yield items
    finally:
        into.reset(token)


_pending_events: ContextVar[list[CalculationEvent] | None] = ContextVar("batched_events", default=None)


def _save_events(events: list[CalculationEvent]) -> None:
    """Insert ``events`` and notify them after the commit, or leave them to the enclosing
    :func:`events_batched`."""
    pending = _pending_events.get()
    if pending is None:
        _notify_after_commit([event.pk for event in CalculationEvent.objects.bulk_create(events)])
    else:
        pending.extend(events)


@contextmanager
def events_batched() -> Iterator[None]:
    """The events of every transition made inside (:func:`transition`, :func:`transition_many`)
    are inserted together, in order, when the block ends without an error (one INSERT, not
    one per transition), then notified. Use it inside the transaction (``with
    transaction.atomic(), events_batched():``); the events returned meanwhile have no id yet."""
    with _collecting(_pending_events) as pending:
        yield
    if pending:
        _save_events(pending)


_batched: ContextVar[list[int] | None] = ContextVar("batched_notifications", default=None)


@contextmanager
def notifications_batched() -> Iterator[None]:
    """The notifications of every transition made inside, as one message enqueued when the
    block ends without an error. Wrap it around the transaction (``with
    notifications_batched(), transaction.atomic():``) so the message goes after the commit.
    An event rolled back meanwhile (a savepoint) is simply not found by the task."""
    with _collecting(_batched) as bucket:
        yield
    if bucket:
        _enqueue_notifications(bucket)


def _notify_after_commit(event_ids: list[int]) -> None:
    bucket = _batched.get()
    if bucket is not None:
        bucket.extend(event_ids)
    else:
        transaction.on_commit(lambda: _enqueue_notifications(event_ids))


def transition_many(calcs: list[Calculation], to: State, *, by_agent: bool = False, reason: str = "",
                    **updates) -> list[CalculationEvent]:
    """Move ``calcs``, all in one state, to ``to`` at once: the same table and the same
    conditional UPDATE as :func:`transition`, one statement for all, one event each, and one
    notification message for the batch. For rows the caller holds locked (a claim's
    ``SELECT ... FOR UPDATE SKIP LOCKED``); if one changed anyway, StaleState and nothing
    changes. ``updates`` may hold expressions (``F("start_step")``), evaluated per row."""
    if not calcs:
        return []
    sources = {calc.state for calc in calcs}
    if len(sources) != 1:
        raise IllegalTransition(f"Calculations in several states ({', '.join(sorted(sources))}) move one by one.")
    source = sources.pop()
    refusal = why_not(source, to)
    if refusal:
        raise IllegalTransition(refusal)
    now = timezone.now()
    updates = {"state": to, "updated_at": now, **updates}
    if to == State.RUNNING:
        updates.setdefault("started_at", Coalesce("started_at", Value(now)))
    if to in TERMINAL:
        updates.setdefault("finished_at", now)
    ids = [calc.pk for calc in calcs]
    with transaction.atomic():
        if Calculation.objects.filter(pk__in=ids, state=source).update(**updates) != len(ids):
            raise StaleState(f"Some of calculations {ids} changed state meanwhile (they were {source}).")
        events = [CalculationEvent(calculation=calc, attempt=calc.attempt, from_state=source, to_state=to,
                                   by_agent=by_agent, reason=reason) for calc in calcs]
        _save_events(events)
    fresh = {row["pk"]: row for row in Calculation.objects.filter(pk__in=ids).values("pk", *updates)}
    for calc in calcs:
        for name in updates:
            setattr(calc, name, fresh[calc.pk][name])
    return events


def _enqueue_notifications(event_ids: list[int]) -> None:
    """One message for the events (``notify_event`` for one, ``notify_events`` for several);
    a broker outage never breaks the request that changed the state."""
    from calculations.tasks import notify_event, notify_events

    try:
        notify_event.delay(event_ids[0]) if len(event_ids) == 1 else notify_events.delay(event_ids)
    except Exception:  # kombu raises many kinds of errors when the broker is down
        log.exception("could not enqueue the notifications of events %s", event_ids)


# --- submitting and editing ------------------------------------------------------------


def _validated_inputs(*, cluster, engine, config, molecule, pseudopotentials, analyses, chain) -> dict:
    validation.check_engine(engine, cluster)
    if not isinstance(config, dict):
        raise ValidationError({"config": "config is an object: {\"fdf\": ..., \"options\": {...}}."})
    structure = molecule.as_spec() if molecule else None
    if engine == "siesta":
        doc = validation.check_fdf(config.get("fdf", ""))
        validation.check_species_have_pseudopotentials(doc, structure, pseudopotentials)
    elif engine == "pyscf" and structure is None:
        raise ValidationError({"molecule": "A PySCF calculation needs a molecule."})
    chain = validation.check_chain(chain)
    if chain and chain["parameter"] == validation.ROTATION and structure is None:
        raise ValidationError({"molecule": "A rotation chain turns the molecule: choose one."})
    analyses = validation.check_analyses(list(analyses or []), chain=chain, engine=engine)
    return {"structure": structure, "chain": chain, "analyses": analyses}


@transaction.atomic
def submit_calculation(*, owner, name: str, cluster, engine: str, config: dict, molecule=None,
                       pseudopotentials=(), analyses=(), chain: dict | None = None, priority: int = 0,
                       description: str = "", files=()) -> Calculation:
    """Create a calculation, queued or waiting for approval as its cluster requires.

    ``files`` are ``(name, bytes)`` pairs. A calculation whose inputs equal a succeeded one
    on the same engine is flagged with ``duplicate_of``; it is still submitted.
    """
    if not perms.can_use_science(owner):
        raise PermissionDenied("Sign in to submit calculations.")
    pseudopotentials = list(pseudopotentials)
    inputs = _validated_inputs(cluster=cluster, engine=engine, config=config, molecule=molecule,
                               pseudopotentials=pseudopotentials, analyses=analyses, chain=chain)
    blobs = _checked_files(files)
    needs_approval = cluster.needs_approval
    calc = Calculation(
        name=name, description=description, owner=owner, molecule=molecule, cluster=cluster, engine=engine,
        config=config, priority=priority, **inputs,
        state=State.PENDING_APPROVAL if needs_approval else State.QUEUED,
        approval=Approval.PENDING if needs_approval else Approval.NOT_REQUIRED)
    calc.inputs_hash = validation.inputs_hash(
        engine=engine, config=config, structure=inputs["structure"], chain=inputs["chain"],
        pseudo_hashes=[p.sha256 for p in pseudopotentials], file_hashes=[sha for _n, _b, sha in blobs])
    calc.duplicate_of_id = (Calculation.objects.filter(inputs_hash=calc.inputs_hash, engine=engine,
                                                       state=State.SUCCEEDED)
                            .order_by("-finished_at").values_list("pk", flat=True).first())
    # The relations are the caller's own objects and duplicate_of's id was just read; the one
    # constraint, on the state, holds the service's own choice (and the database checks it).
    calc.full_clean(exclude=["inputs_hash", "owner", "molecule", "cluster", "duplicate_of"],
                    validate_constraints=False)
    calc.save()
    if pseudopotentials:  # a new calculation has none: nothing to read or remove
        calc.pseudopotentials.add(*pseudopotentials)
    for file_name, content, sha in blobs:
        CalculationFile.objects.create(calculation=calc, name=file_name, sha256=sha, size=len(content),
                                       file=ContentFile(content, name=file_name))
    CalculationEvent.objects.create(calculation=calc, attempt=1, from_state=calc.state, to_state=calc.state,
                                    actor=owner, reason="submitted")
    return calc


def _checked_files(files) -> list[tuple[str, bytes, str]]:
    checked, seen = [], set()
    for name, content in files:
        validation.check_file_name(name)
        validation.check_file_size(name, len(content))
        if name in seen:
            raise ValidationError({"files": f"{name} is attached twice."})
        seen.add(name)
        checked.append((name, content, hashlib.sha256(content).hexdigest()))
    return checked


@transaction.atomic
def update_calculation(*, actor, calc: Calculation, **fields) -> Calculation:
    """Edit a calculation that has not started (pending approval or queued)."""
    if not perms.can_use_science(actor):
        raise PermissionDenied("Sign in to edit calculations.")
    calc = Calculation.objects.select_for_update().get(pk=calc.pk)
    if calc.state not in EDITABLE:
        raise ValidationError({"state": f"A {calc.state} calculation can no longer be edited."})
    for name in ("name", "description", "priority"):
        if name in fields:
            setattr(calc, name, fields[name])
    if {"config", "analyses", "chain", "engine", "molecule", "pseudopotentials"} & fields.keys():
        pseudos = list(fields.get("pseudopotentials", calc.pseudopotentials.all()))
        calc.engine = fields.get("engine", calc.engine)
        calc.config = fields.get("config", calc.config)
        calc.molecule = fields.get("molecule", calc.molecule)
        inputs = _validated_inputs(cluster=calc.cluster, engine=calc.engine, config=calc.config,
                                   molecule=calc.molecule, pseudopotentials=pseudos,
                                   analyses=fields.get("analyses", calc.analyses),
                                   chain=fields.get("chain", calc.chain))
        for name, value in inputs.items():
            setattr(calc, name, value)
        calc.pseudopotentials.set(pseudos)
        calc.inputs_hash = validation.inputs_hash(
            engine=calc.engine, config=calc.config, structure=calc.structure, chain=calc.chain,
            pseudo_hashes=[p.sha256 for p in pseudos], file_hashes=[f.sha256 for f in calc.files.all()])
    calc.full_clean(exclude=["owner", "molecule", "cluster"])
    calc.save()
    return calc


# --- approval, cancel, resume ------------------------------------------------------------


def approve(*, actor, calc: Calculation) -> CalculationEvent:
    """A moderator or admin lets a waiting calculation be claimed."""
    if not perms.can_approve_calculations(actor):
        raise PermissionDenied("Only moderators and admins approve calculations.")
    if calc.state != State.PENDING_APPROVAL:
        raise IllegalTransition(f"Only a calculation pending approval can be approved; this one is {calc.state}.")
    return transition(calc, State.QUEUED, actor=actor, reason="approved", approval=Approval.APPROVED,
                      approved_by=actor)


def reject(*, actor, calc: Calculation, reason: str) -> CalculationEvent:
    """A moderator or admin turns a waiting calculation down, saying why."""
    if not perms.can_approve_calculations(actor):
        raise PermissionDenied("Only moderators and admins reject calculations.")
    if not reason.strip():
        raise ValidationError({"reason": "Say why the calculation is rejected."})
    if calc.state != State.PENDING_APPROVAL:
        raise IllegalTransition(f"Only a calculation pending approval can be rejected; this one is {calc.state}.")
    return transition(calc, State.CANCELLED, actor=actor, reason=f"rejected: {reason}",
                      approval=Approval.REJECTED, approval_reason=reason, approved_by=actor,
                      data={"rejected": True})


def cancel(*, actor, calc: Calculation) -> CalculationEvent | None:
    """Cancel now if nothing runs yet; otherwise ask the agent, which sees it next poll."""
    if not perms.can_use_science(actor):
        raise PermissionDenied("Sign in to cancel calculations.")
    if calc.state in WAITING:
        return transition(calc, State.CANCELLED, actor=actor, reason="cancelled before it started")
    if calc.state in TERMINAL or calc.state == State.LOST:
        raise IllegalTransition(f"A {calc.state} calculation cannot be cancelled.")
    updated = Calculation.objects.filter(pk=calc.pk, state=calc.state).update(cancel_requested=True)
    if not updated:
        raise StaleState("The calculation changed state meanwhile; look again.")
    calc.cancel_requested = True
    CalculationEvent.objects.create(calculation=calc, attempt=calc.attempt, from_state=calc.state,
                                    to_state=calc.state, actor=actor, reason="cancel requested")
    return None


def resume(*, actor, calc: Calculation) -> CalculationEvent:
    """Start a new attempt of a failed calculation at the step that failed."""
    if not perms.can_use_science(actor):
        raise PermissionDenied("Sign in to resume calculations.")
    if calc.state != State.FAILED:
        raise IllegalTransition(f"Only a failed calculation can be resumed; this one is {calc.state}.")
    state = State.QUEUED
    return transition(calc, state, actor=actor, reason=f"resumed at step {calc.current_step}",
                      attempt=calc.attempt + 1, start_step=calc.current_step, processed=False,
                      cancel_requested=False, failure_class="", failure_reason="", agent_seq=0,
                      lease_expires_at=None, finished_at=None, lost_count=0,
                      data={"previous_attempt": calc.attempt})
