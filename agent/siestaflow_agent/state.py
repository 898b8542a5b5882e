"""The agent's own durable record of the calculations it runs (a SQLite file in the work folder).

One :class:`Run` per claimed ``(calculation, attempt)``: the server's spec, the current step
and phase, the executor's handle and a small ``data`` dict (results waiting for the server's
acknowledgement, cleaned steps, ...). It is saved after every phase change, so a restarted
agent re-attaches to the jobs it had started instead of starting them again, and a
calculation claimed twice (same id and attempt) is never run twice. The store holds an
exclusive lock on the work folder: a second agent on the same folder refuses to start.
"""

from __future__ import annotations

import dataclasses
import enum
import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any

from siestaflow_agent.sqlite import Database


class Phase(enum.StrEnum):
    """Where a run is in the agent's step machine (see ``loop.py``)."""

    PREPARE = "prepare"      # make the step folder, stage inputs and carry files, write inputs
    SUBMIT = "submit"        # hand the commands to the executor
    RUNNING = "running"      # the job runs; poll status and progress
    VALIDATE = "validate"    # the job ended: is the run valid?
    EXTRACT = "extract"      # extract results, queue them for the server
    ANALYSE = "analyse"      # after the last step: run the analyses
    FINISH = "finish"        # report succeeded
    DONE = "done"            # final state reached (see Run.final)


@dataclasses.dataclass
class Run:
    """One attempt of one calculation on this agent."""

    calc_id: int
    attempt: int
    spec: dict[str, Any]
    step: int = 0
    phase: str = Phase.PREPARE.value
    handle: dict[str, Any] | None = None
    final: str | None = None  # succeeded | failed | cancelled | superseded
    closed: bool = False  # nothing left to do: final report delivered, cleanup done
    data: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def values(self) -> list[Any]:
        """The chain values (``[None]`` for a single run)."""
        chain = self.spec.get("chain") or {}
        return list(chain.get("values") or [None])

    @property
    def step_count(self) -> int:
        """How many steps the whole chain has."""
        return len(self.values)

    @property
    def start_step(self) -> int:
        """The first step this attempt runs (a resumed chain starts later)."""
        return int(self.spec.get("start_step") or 0)


class WorkDirLockedError(RuntimeError):
    """Another agent process uses this work folder."""


class StateStore:
    """All runs of one agent; safe to share between threads."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock_fd = _lock_exclusively(self.path.with_name(self.path.name + ".lock"))
        self.database = Database(self.path)
        self._lock, self._db = self.database.lock, self.database.db
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS runs (calc_id INTEGER NOT NULL, attempt INTEGER NOT NULL, "
            "record TEXT NOT NULL, closed INTEGER NOT NULL DEFAULT 0, updated REAL NOT NULL, "
            "PRIMARY KEY (calc_id, attempt))")

    def close(self) -> None:
        """Close the database and release the work folder."""
        with self._lock:
            self.database.close()
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # closing drops the flock
                self._lock_fd = None

    def add(self, spec: dict[str, Any]) -> Run | None:
        """Record a newly claimed calculation; ``None`` if this (id, attempt) is already known."""
        run = Run(calc_id=int(spec["id"]), attempt=int(spec.get("attempt") or 1), spec=spec)
        run.step = run.start_step
        with self._lock:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO runs (calc_id, attempt, record, closed, updated) VALUES (?,?,?,0,?)",
                (run.calc_id, run.attempt, _dump(run), time.time()))
        return run if cursor.rowcount == 1 else None

    def save(self, run: Run) -> None:
        """Persist ``run`` (call after every change)."""
        with self._lock:
            self._db.execute("UPDATE runs SET record=?, closed=?, updated=? WHERE calc_id=? AND attempt=?",
                             (_dump(run), int(run.closed), time.time(), run.calc_id, run.attempt))

    def get(self, calc_id: int, attempt: int) -> Run | None:
        """The run of ``(calc_id, attempt)``, if known."""
        with self._lock:
            row = self._db.execute("SELECT record FROM runs WHERE calc_id=? AND attempt=?",
                                   (calc_id, attempt)).fetchone()
        return _load(row[0]) if row else None

    def open_runs(self) -> list[Run]:
        """Runs with something left to do, oldest claim first."""
        with self._lock:
            rows = self._db.execute("SELECT record FROM runs WHERE closed=0 ORDER BY rowid").fetchall()
        return [_load(row[0]) for row in rows]


def _lock_exclusively(path: Path) -> int:
    """An open descriptor holding ``flock(LOCK_EX)`` on ``path``; raises if another holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise WorkDirLockedError(f"another agent is using {path.parent} (lock {path.name})") from None
    return fd


def _dump(run: Run) -> str:
    return json.dumps(dataclasses.asdict(run))


def _load(text: str) -> Run:
    return Run(**json.loads(text))
