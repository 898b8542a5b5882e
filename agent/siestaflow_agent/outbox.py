"""A durable outbox: every event, log line and result is written here first, then delivered.

The outbox is a SQLite file in the work folder. Writing an entry is one committed
transaction (or part of the agent's round, committed before anything is sent: see
:mod:`.sqlite`), so nothing the agent reported is lost to a crash, an outage or a restart.
:meth:`Outbox.flush` sends pending entries in the order they were written (per
calculation), marks each delivered once the server answered 2xx, and stops at the first
transient failure, so a later flush resumes exactly there.

No duplicates: an event or log line gets its ``seq`` (per calculation, attempt and kind,
from 1) when it is written, and keeps it across retries, so a replay of a request whose
answer was lost is a no-op on the server. Callers may also pass a ``dedupe`` key, so
re-running a step of the agent after a crash does not write the same report twice.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sqlite3
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from siestaflow_agent.client import ApiError, AuthError, Client, TransientError
from siestaflow_agent.sqlite import Database

log = logging.getLogger(__name__)

EVENT, LOG, RESULT = "event", "log", "result"
PENDING, DELIVERED, REJECTED = "pending", "delivered", "rejected"
MAX_LOG_BATCH = 200
MAX_REPORTS = 200  # reports per request to reports/ (the server's limit)
MAX_REPORT_BYTES = 1 << 20  # a larger report (a big result) goes alone: the server caps a request's size
MAX_SERVER_ERRORS = 20  # a request that makes the server fail this often is given up

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    calc_id INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    kind TEXT NOT NULL,
    seq INTEGER,
    dedupe TEXT,
    body TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    failures INTEGER NOT NULL DEFAULT 0,
    response TEXT,
    created REAL NOT NULL,
    updated REAL
);
CREATE UNIQUE INDEX IF NOT EXISTS entries_dedupe ON entries (calc_id, attempt, kind, dedupe)
    WHERE dedupe IS NOT NULL;
CREATE INDEX IF NOT EXISTS entries_pending ON entries (status, id);
CREATE TABLE IF NOT EXISTS counters (
    calc_id INTEGER NOT NULL, attempt INTEGER NOT NULL, kind TEXT NOT NULL, last INTEGER NOT NULL,
    PRIMARY KEY (calc_id, attempt, kind)
);
"""


@dataclasses.dataclass(frozen=True)
class Entry:
    """One stored report."""

    id: int
    calc_id: int
    attempt: int
    kind: str
    seq: int | None
    body: dict[str, Any]
    status: str = PENDING


@dataclasses.dataclass
class _Batch:
    """Entries sent in one request: one event, one result, or consecutive log lines."""

    kind: str
    calc_id: int
    entries: list[Entry]


class Outbox:
    """The outbox of one agent (one SQLite file); safe to share between threads."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.database = Database(self.path)
        self._lock, self._db = self.database.lock, self.database.db
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the database (entries stay on disk)."""
        self.database.close()

    def add_event(self, calc_id: int, attempt: int, body: dict[str, Any], *, dedupe: str | None = None) -> Entry:
        """Store an event; its ``seq`` is assigned here."""
        return self._add(calc_id, attempt, EVENT, body, dedupe, numbered=True)

    def add_log(self, calc_id: int, attempt: int, message: str, *, level: str = "INFO",
                dedupe: str | None = None) -> Entry:
        """Store one log line (``seq`` assigned here, ``time`` now)."""
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        body = {"level": level, "message": message, "time": stamp}
        return self._add(calc_id, attempt, LOG, body, dedupe, numbered=True)

    def add_result(self, calc_id: int, attempt: int, body: dict[str, Any], *, dedupe: str | None = None) -> Entry:
        """Store a result (``(step, key)`` replaces on the server, so no ``seq``)."""
        return self._add(calc_id, attempt, RESULT, body, dedupe, numbered=False)

    def _add(self, calc_id: int, attempt: int, kind: str, body: dict[str, Any],
             dedupe: str | None, *, numbered: bool) -> Entry:
        with self._transaction() as db:
            if dedupe is not None:
                row = db.execute(
                    "SELECT * FROM entries WHERE calc_id=? AND attempt=? AND kind=? AND dedupe=?",
                    (calc_id, attempt, kind, dedupe)).fetchone()
                if row is not None:
                    return _entry(row)
            seq = self._next_seq(db, calc_id, attempt, kind) if numbered else None
            body = {"seq": seq, **body} if numbered else dict(body)
            cursor = db.execute(
                "INSERT INTO entries (calc_id, attempt, kind, seq, dedupe, body, created) VALUES (?,?,?,?,?,?,?)",
                (calc_id, attempt, kind, seq, dedupe, json.dumps(body), time.time()))
            return Entry(cursor.lastrowid, calc_id, attempt, kind, seq, body)

    @staticmethod
    def _next_seq(db: sqlite3.Connection, calc_id: int, attempt: int, kind: str) -> int:
        db.execute("INSERT OR IGNORE INTO counters VALUES (?, ?, ?, 0)", (calc_id, attempt, kind))
        db.execute("UPDATE counters SET last = last + 1 WHERE calc_id=? AND attempt=? AND kind=?",
                   (calc_id, attempt, kind))
        return db.execute("SELECT last FROM counters WHERE calc_id=? AND attempt=? AND kind=?",
                          (calc_id, attempt, kind)).fetchone()[0]

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        return self.database.transaction()

    def status(self, entry_id: int) -> str | None:
        """``pending``, ``delivered`` or ``rejected`` (``None``: no such entry)."""
        with self._lock:
            row = self._db.execute("SELECT status FROM entries WHERE id=?", (entry_id,)).fetchone()
        return row[0] if row else None

    def pending(self, calc_id: int | None = None, attempt: int | None = None) -> list[Entry]:
        """Undelivered entries in the order they were written (optionally of one run)."""
        query, args = "SELECT * FROM entries WHERE status='pending'", []
        if calc_id is not None:
            query += " AND calc_id=? AND attempt=?"
            args += [calc_id, attempt]
        with self._lock:
            return [_entry(row) for row in self._db.execute(query + " ORDER BY id", args)]

    def entries(self, calc_id: int, attempt: int, kind: str | None = None) -> list[Entry]:
        """Every entry of one run, in order (for inspection and tests)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM entries WHERE calc_id=? AND attempt=? AND kind=COALESCE(?, kind) ORDER BY id",
                (calc_id, attempt, kind)).fetchall()
        return [_entry(row) for row in rows]

    def flush(self, client: Client, *, limit: int = 1000) -> int:
        """Deliver pending entries in order; return how many were delivered.

        Several reports go in one request to ``reports/`` (one transaction on the server).
        A transient failure or a rejected key stops the flush (the server is unreachable
        for everyone). A 4xx answer rejects that entry for good (logged; later entries go on).
        A 5xx answer skips the rest of that calculation this time, so its order is kept.
        When the server refuses a whole request (an older server without ``reports/``, or a
        report that makes it fail), that request's reports are sent one by one instead.
        """
        delivered: list[int] = []  # entries delivered, request by request
        stuck: set[int] = set()
        try:
            for chunk in _chunks(list(self._batches(limit))):
                self._deliver(client, [b for b in chunk if b.calc_id not in stuck], stuck, delivered)
        except (TransientError, AuthError) as exc:
            log.warning("outbox: server unavailable, %d report(s) wait: %s", len(self.pending()), exc)
        return sum(delivered)

    def _deliver(self, client: Client, batches: list[_Batch], stuck: set[int], delivered: list[int]) -> None:
        """Send ``batches`` in one request (one by one if the server refuses the request, and
        a lone one to its own route)."""
        answers = None
        if len(batches) > 1:
            try:
                answers = client.post_reports([_report(b) for b in batches])
            except (TransientError, AuthError):
                raise
            except ApiError as exc:
                log.info("outbox: reports/ refused (%s): sending %d report(s) one by one", exc, len(batches))
        if answers is None or len(answers) != len(batches):
            for batch in batches:
                if batch.calc_id not in stuck:
                    self._deliver_one(client, batch, stuck, delivered)
            return
        with self.database.group():  # the request's answers are recorded in one commit
            for batch, answer in zip(batches, answers, strict=True):
                code, body = int(answer.get("status", 0)), answer.get("body") or {}
                if batch.calc_id in stuck:
                    continue
                if 200 <= code < 300:
                    self._mark(batch.entries, DELIVERED, body)
                    delivered.append(len(batch.entries))
                elif self._failed(batch, ApiError(f"{batch.kind}: {code} {body.get('detail', '')}", status=code,
                                                  detail=str(body.get("detail", "")), errors=body.get("errors"))):
                    stuck.add(batch.calc_id)

    def _deliver_one(self, client: Client, batch: _Batch, stuck: set[int], delivered: list[int]) -> None:
        try:
            response = _send(client, batch)
        except (TransientError, AuthError):
            raise
        except ApiError as exc:
            if self._failed(batch, exc):
                stuck.add(batch.calc_id)
            return
        self._mark(batch.entries, DELIVERED, response)
        delivered.append(len(batch.entries))

    def _batches(self, limit: int) -> Iterator[_Batch]:
        """Pending entries grouped into requests; log lines of one run merge into one request."""
        batches: list[_Batch] = []
        last_of: dict[tuple[int, int], _Batch] = {}
        for entry in self.pending()[:limit]:
            key = (entry.calc_id, entry.attempt)
            previous = last_of.get(key)
            if entry.kind == LOG and previous and previous.kind == LOG and len(previous.entries) < MAX_LOG_BATCH:
                previous.entries.append(entry)
                continue
            batch = _Batch(entry.kind, entry.calc_id, [entry])
            batches.append(batch)
            last_of[key] = batch
        yield from batches

    def _failed(self, batch: _Batch, exc: ApiError) -> bool:
        """Record a refusal; True if the calculation must wait (server error, kept for later)."""
        if exc.status is not None and exc.status >= 500:
            with self._lock:
                ids = [e.id for e in batch.entries]
                self._db.executemany("UPDATE entries SET failures = failures + 1 WHERE id=?", [(i,) for i in ids])
                failures = self._db.execute("SELECT MAX(failures) FROM entries WHERE id=?", (ids[0],)).fetchone()[0]
            if failures < MAX_SERVER_ERRORS:
                return True
        log.error("outbox: server refused %s of calculation %s for good: %s", batch.kind, batch.calc_id, exc)
        self._mark(batch.entries, REJECTED, {"status": exc.status, "detail": exc.detail or str(exc)})
        return False

    def _mark(self, entries: list[Entry], status: str, response: Any) -> None:
        with self._transaction() as db:
            db.executemany("UPDATE entries SET status=?, response=?, updated=? WHERE id=?",
                           [(status, json.dumps(response), time.time(), e.id) for e in entries])

    def discard(self, calc_id: int, attempt: int, reason: str) -> int:
        """Give up the pending entries of an attempt the server no longer runs.

        Needed because reports carry no attempt number: the server would file a stale
        attempt's ``seq`` numbers under the new attempt and drop the new ones as replays.
        """
        entries = self.pending(calc_id, attempt)
        self._mark(entries, REJECTED, {"detail": reason})
        return len(entries)

    def prune(self, older_than: float = 7 * 86400) -> int:
        """Forget delivered and rejected entries older than ``older_than`` seconds."""
        with self._transaction() as db:
            cursor = db.execute("DELETE FROM entries WHERE status != 'pending' AND created < ?",
                                (time.time() - older_than,))
            return cursor.rowcount


def _report(batch: _Batch) -> dict[str, Any]:
    """``batch`` as one report of ``reports/`` (the body its own route takes)."""
    first = batch.entries[0]
    kind = {EVENT: "event", LOG: "logs", RESULT: "results"}[batch.kind]
    body = {"lines": [e.body for e in batch.entries]} if batch.kind == LOG else first.body
    return {"calculation": first.calc_id, "kind": kind, "body": {**body, "attempt": first.attempt}}


def _chunks(batches: list[_Batch]) -> Iterator[list[_Batch]]:
    """Consecutive batches, at most MAX_REPORTS and about MAX_REPORT_BYTES per request."""
    chunk: list[_Batch] = []
    size = 0
    for batch in batches:
        weight = sum(len(json.dumps(e.body)) for e in batch.entries)
        if chunk and (len(chunk) == MAX_REPORTS or size + weight > MAX_REPORT_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(batch)
        size += weight
    if chunk:
        yield chunk


def _send(client: Client, batch: _Batch) -> Any:
    """``batch`` to its own route, with its attempt (the server refuses one that is over)."""
    first = batch.entries[0]
    if batch.kind == EVENT:
        return client.post_event(first.calc_id, {**first.body, "attempt": first.attempt})
    if batch.kind == LOG:
        return client.post_logs(first.calc_id, [e.body for e in batch.entries], attempt=first.attempt)
    return client.post_results(first.calc_id, {**first.body, "attempt": first.attempt})


def _entry(row: tuple) -> Entry:
    entry_id, calc_id, attempt, kind, seq, _dedupe, body, status = row[:8]
    return Entry(entry_id, calc_id, attempt, kind, seq, json.loads(body), status)
