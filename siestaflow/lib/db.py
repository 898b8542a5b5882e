"""Database knobs that Django does not offer."""

from __future__ import annotations

from django.conf import settings
from django.db import connection


def commit_without_waiting_for_disk() -> None:
    """Let the current transaction's COMMIT return before its WAL record reaches the disk.

    PostgreSQL's ``SET LOCAL synchronous_commit TO OFF``: this transaction only, nothing
    else changes. For frequent writes that are cheap to lose in a crash of the database
    *server* (the last fraction of a second of heartbeats or prediction records), where a
    disk flush per request (~10 ms here) would bound throughput and latency. Data is never
    corrupted and nothing else is lost; a crash of the application loses nothing. Off when
    ``FAST_COMMITS`` is false, and a no-op on SQLite. Call it inside ``transaction.atomic``.
    """
    if settings.FAST_COMMITS and connection.vendor == "postgresql" and connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
