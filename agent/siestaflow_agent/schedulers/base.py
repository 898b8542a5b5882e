"""The executor interface: how the agent runs a step's commands and learns how they ended.

An executor (local processes, Slurm, ...) turns a :class:`Job` into a *handle*, a plain
JSON-serialisable dict that the agent stores durably; ``status`` and ``cancel`` must work from
that handle alone, in a later agent process, so a restarted agent re-attaches to its jobs.

Every executor runs the commands through the same tiny shell wrapper (:func:`render_wrapper`):
commands run in order in the step folder, the first failure stops the rest, and the wrapper
writes the exit code to :data:`EXIT_CODE_FILE` last. Standard output and error of all commands
go to :data:`STDOUT_FILE` and :data:`STDERR_FILE` in the step folder, where engines read them.
"""

from __future__ import annotations

import abc
import dataclasses
import enum
import json
import os
import shlex
from pathlib import Path
from typing import Any

from siestaflow_agent.engines.base import FailureClass

STDOUT_FILE = "stdout.txt"
STDERR_FILE = "stderr.txt"
EXIT_CODE_FILE = "exit_code"
WRAPPER_FILE = "job.sh"
HANDLE_FILE = ".job-handle.json"

Handle = dict[str, Any]


class JobState(enum.StrEnum):
    """Where a job is, as far as the agent cares (queued in a batch system counts as running)."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


@dataclasses.dataclass(frozen=True)
class Job:
    """One step's work: ``commands`` run in order in ``workdir`` (which must exist).

    ``stdin`` names a file in ``workdir`` fed to every command (``None``: no input).
    ``redirects`` optionally gives, per command, ``(stdin, stdout)`` file names in ``workdir``
    (``None`` in either place: the job's default, i.e. ``stdin`` and :data:`STDOUT_FILE`);
    SIESTA, for one, reads its fdf on stdin and each program's stdout is its own ``.out`` file.
    ``time_limit`` is the batch system's notation (e.g. ``"02:00:00"``); local runs ignore it.
    """

    name: str
    workdir: Path
    commands: list[list[str]]
    ntasks: int = 1
    env: dict[str, str] = dataclasses.field(default_factory=dict)
    stdin: str | None = None
    time_limit: str | None = None
    redirects: tuple[tuple[str | None, str | None], ...] = ()


@dataclasses.dataclass(frozen=True)
class JobStatus:
    """The state of a submitted job. ``exit_code`` is ``None`` while running or if unknown."""

    state: JobState
    exit_code: int | None = None
    failure_class: FailureClass | None = None
    reason: str = ""

    @property
    def finished(self) -> bool:
        """True once the job will not change any more."""
        return self.state is not JobState.RUNNING


class Executor(abc.ABC):
    """Runs jobs. Implementations keep no state that a handle cannot rebuild."""

    name: str = ""

    @abc.abstractmethod
    def submit(self, job: Job) -> Handle:
        """Start ``job`` and return its JSON-serialisable handle (also saved by :func:`save_handle`)."""

    @abc.abstractmethod
    def status(self, handle: Handle) -> JobStatus:
        """The current state of the job behind ``handle``."""

    @abc.abstractmethod
    def cancel(self, handle: Handle) -> None:
        """Stop the job behind ``handle`` and everything it started. Idempotent."""


def render_wrapper(job: Job) -> str:
    """The POSIX shell script that runs ``job.commands`` in order and records the exit code.

    The exit code is written to a temporary file and renamed, so a reader never sees half a
    number. Nothing is written when the wrapper itself is killed: the absence of the file
    then tells "killed" apart from "finished".
    """
    lines = [
        "#!/bin/sh",
        "# siestaflow-agent job wrapper: run the step's commands, record the exit code.",
        f"cd {shlex.quote(str(job.workdir))} || exit 97",
        "code=0",
    ]
    for index, argv in enumerate(job.commands):
        command = " ".join(shlex.quote(part) for part in argv) + _redirections(job, index)
        lines.append(f'if [ "$code" -eq 0 ]; then {command} || code=$?; fi')
    lines += [
        f"printf '%s\\n' \"$code\" > {EXIT_CODE_FILE}.tmp && mv -f {EXIT_CODE_FILE}.tmp {EXIT_CODE_FILE}",
        'exit "$code"',
    ]
    return "\n".join(lines) + "\n"


def _redirections(job: Job, index: int) -> str:
    """`` < in > out`` for command ``index`` of ``job`` (names quoted, never interpreted)."""
    stdin, stdout = job.redirects[index] if index < len(job.redirects) else (None, None)
    stdin = stdin or job.stdin
    text = f" < {shlex.quote(stdin)}" if stdin else ""
    return text + (f" > {shlex.quote(stdout)}" if stdout else "")


def read_exit_code(workdir: Path) -> int | None:
    """The exit code the wrapper recorded in ``workdir``, or ``None`` if there is none (yet)."""
    try:
        return int((workdir / EXIT_CODE_FILE).read_text().strip())
    except (OSError, ValueError):
        return None


def failure_from_exit_code(code: int | None) -> tuple[FailureClass | None, str]:
    """A failure class and reason for an exit code, as far as the code alone tells."""
    if code is None:
        return FailureClass.KILLED, "the job ended without recording an exit code (killed?)"
    if code == 0:
        return None, ""
    if code in (128 + 9, -9):
        return FailureClass.KILLED, f"killed by SIGKILL (exit {code}; out of memory?)"
    if code in (128 + 15, -15):
        return FailureClass.KILLED, f"terminated by SIGTERM (exit {code})"
    return None, f"exited with code {code}"


def save_handle(workdir: Path, handle: Handle) -> None:
    """Write ``handle`` into the step folder (atomically), so a crash right after submission
    does not lose the job: the agent finds it there and does not submit a second one."""
    tmp = workdir / (HANDLE_FILE + ".tmp")
    with tmp.open("w") as fh:
        json.dump(handle, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, workdir / HANDLE_FILE)


def load_handle(workdir: Path) -> Handle | None:
    """The handle saved in ``workdir`` by :func:`save_handle`, if any."""
    try:
        return json.loads((workdir / HANDLE_FILE).read_text())
    except (OSError, ValueError):
        return None
