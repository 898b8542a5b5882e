"""Database knobs that Django does not offer."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Func, Manager, Model, Value


def _fast_commits() -> bool:
    return settings.FAST_COMMITS and connection.vendor == "postgresql"


def commit_without_waiting_for_disk() -> None:
    """Let the current transaction's COMMIT return before its WAL record reaches the disk.

    PostgreSQL's ``SET LOCAL synchronous_commit TO OFF``: this transaction only, nothing
    else changes. For frequent writes that are cheap to lose in a crash of the database
    *server* (the last fraction of a second of heartbeats or prediction records), where a
    disk flush per request would bound throughput and latency. Data is never corrupted and
    nothing else is lost; a crash of the application loses nothing. Off when
    ``FAST_COMMITS`` is false, and a no-op on SQLite. Call it inside ``transaction.atomic``.
    """
    if _fast_commits() and connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


class _RelaxingCommit(Func):
    """Its expression's value, from a statement that also turns ``synchronous_commit`` off
    for the transaction it runs in (``set_config(..., is_local => true)`` returns 'off')."""

    template = "(CASE WHEN set_config('synchronous_commit', 'off', true) = 'off' THEN %(expressions)s END)"


def create_without_waiting_for_disk(manager: Manager, *, carrier: str, **fields: Any) -> Model:
    """``manager.create(**fields)`` as one INSERT whose commit does not wait for the disk.

    What :func:`commit_without_waiting_for_disk` does for a transaction, in the INSERT itself:
    the text field named ``carrier`` is written through an expression that relaxes the
    commit of the statement's own transaction (outside ``atomic``: the INSERT alone), so a
    single row costs one round trip to the database instead of four (BEGIN, SET, INSERT,
    COMMIT). Plain ``create`` when ``FAST_COMMITS`` is false, and on SQLite.
    """
    if not _fast_commits():
        return manager.create(**fields)
    value = fields[carrier]
    fields[carrier] = _RelaxingCommit(Value(value), output_field=manager.model._meta.get_field(carrier))
    row = manager.create(**fields)
    setattr(row, carrier, value)  # the value written, not the expression that wrote it
    return row
