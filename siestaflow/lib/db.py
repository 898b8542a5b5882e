"""Database knobs that Django does not offer."""

from __future__ import annotations

from django.conf import settings
from django.db import connection
from django.db.models import BigIntegerField, Func, Model, Value
from django.db.models.expressions import RawSQL


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


def next_id(model: type[Model]) -> RawSQL:
    """The next value of ``model``'s primary key sequence (PostgreSQL only), as an expression:
    an id taken in a query, for a row inserted later under it. PostgreSQL never hands a value
    out twice; one not used leaves a gap. (RawSQL: as a nested ``Func`` it cost ~0.1 ms more
    Python per query.)"""
    return RawSQL("nextval(pg_get_serial_sequence(%s, %s))", [model._meta.db_table, model._meta.pk.column],
                  output_field=BigIntegerField())


def insert_without_waiting_for_disk(row: Model, *, carrier: str) -> Model:
    """Insert ``row`` (built, not saved; its primary key may be set) in one INSERT whose
    commit does not wait for the disk.

    What :func:`commit_without_waiting_for_disk` does for a transaction, in the INSERT itself:
    the text field named ``carrier`` is written through an expression that relaxes the
    commit of the statement's own transaction (outside ``atomic``: the INSERT alone), so a
    single row costs one round trip to the database instead of four (BEGIN, SET, INSERT,
    COMMIT). A plain insert when ``FAST_COMMITS`` is false, and on SQLite.
    """
    if not _fast_commits():
        row.save(force_insert=True)
        return row
    value = getattr(row, carrier)
    setattr(row, carrier, _RelaxingCommit(Value(value), output_field=row._meta.get_field(carrier)))
    try:
        row.save(force_insert=True)
    finally:
        setattr(row, carrier, value)  # the value written, not the expression that wrote it
    return row
