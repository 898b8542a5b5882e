"""The agent's SQLite files (its state and its outbox): durable commits, grouped when asked.

Each file is in WAL mode with ``synchronous=FULL``: a commit has reached the disk when it
returns, so nothing survives only in memory. A disk flush costs about a millisecond, and a
calculation is a score of small writes; :meth:`Database.group` makes the writes of a whole
round one transaction (one flush), and :meth:`Database.commit` ends such a group early, where
what was written must be on disk before the agent acts on it (before it starts a job, before
it tells the server). A crash inside a group loses the group's writes, never a part of them:
the agent then re-does that round, which its dedupe keys and job handles make safe.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class Database:
    """One SQLite file; safe to share between threads (one connection behind a lock)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.lock = threading.RLock()
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self._depth = 0
        self._closed = False

    def close(self) -> None:
        """Close the file; a group still open commits what it wrote (each write is whole)."""
        with self.lock:
            if self._depth:
                self.db.execute("COMMIT")
            self._closed = True
            self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All or nothing: a transaction, or a savepoint inside a group (or another
        transaction) that rolls back alone when the block raises."""
        with self.lock:
            savepoint = f"sp{self._depth}"
            self.db.execute(f"SAVEPOINT {savepoint}" if self._depth else "BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield self.db
            except BaseException:
                if not self._closed:
                    self.db.execute(f"ROLLBACK TO {savepoint}" if self._depth > 1 else "ROLLBACK")
                    if self._depth > 1:
                        self.db.execute(f"RELEASE {savepoint}")
                raise
            finally:
                self._depth -= 1
            if not self._closed:  # closed inside the block: close() committed it
                self.db.execute(f"RELEASE {savepoint}" if self._depth else "COMMIT")

    group = transaction
    """Writes inside the block commit together when it ends (one disk flush)."""

    def commit(self) -> None:
        """Make everything written so far durable now; a group goes on after it. Outside a
        group every write is committed already; inside a transaction's block it is an error."""
        with self.lock:
            if self._depth > 1:
                raise RuntimeError("commit() inside a transaction: only a group can be committed early")
            if self._depth == 1:
                self.db.execute("COMMIT")
                self.db.execute("BEGIN IMMEDIATE")
