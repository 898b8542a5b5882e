"""The agent's main loop: ``while not stop.wait(interval)``: heartbeat, claim, advance, report.

Each claimed calculation is a :class:`~siestaflow_agent.state.Run` that moves through a step
machine, one or more phases per tick, saved after each (the saves and reports of a round
commit together, once, before any of them is sent or a job starts: see :mod:`.sqlite`)::

    prepare → submit → running → validate → extract ─┬→ prepare (next chain step)
                                                     ├→ analyse → finish   (after the last step)
                                                     └→ finish             (no analyses)
    any phase → failed (a failed step stops the chain) or cancelled (asked by the server)

Every state change becomes an event in the outbox (``running``, ``validating``,
``extracting``, ``analysing``, ``succeeded``, ``failed``, ``cancelled``), with the step and
progress; the outbox delivers it when the server answers. Raw files of a step are deleted
only once the server acknowledged that step's results.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil

from siestaflow_agent import __version__, engines
from siestaflow_agent.analysing import analyse, catalogue_ids
from siestaflow_agent.client import ApiError, Client, TransientError
from siestaflow_agent.config import AgentConfig
from siestaflow_agent.engines.base import Engine, FailureClass, StepSpec, Validation
from siestaflow_agent.geometry import step_molecule
from siestaflow_agent.outbox import DELIVERED, Outbox
from siestaflow_agent.schedulers.base import (
    EXIT_CODE_FILE,
    HANDLE_FILE,
    STDERR_FILE,
    STDOUT_FILE,
    WRAPPER_FILE,
    Executor,
    Job,
    JobState,
    JobStatus,
    load_handle,
)
from siestaflow_agent.state import Phase, Run, StateStore
from siestaflow_agent.workspace import CARRY_MANIFEST, Workspace, cleanup

log = logging.getLogger(__name__)

EXTRACTED_FILE = "extracted.json"
TAIL_LINES = 20
# The agent's own records in a step folder: never deleted, whatever the cleanup policy says.
AGENT_FILES = (EXTRACTED_FILE, WRAPPER_FILE, EXIT_CODE_FILE, HANDLE_FILE, CARRY_MANIFEST)


class Agent:
    """One agent process: its configuration, server client, executor and durable state."""

    def __init__(self, config: AgentConfig, client: Client, executor: Executor, *,
                 stop: threading.Event | None = None) -> None:
        self.config = config
        self.client = client
        self.executor = executor
        self.stop = stop or threading.Event()
        self.workspace = Workspace(config.work_dir)
        self.outbox = Outbox(config.work_dir / "outbox.sqlite3")
        self.state = StateStore(config.work_dir / "state.sqlite3")
        self.enabled = True
        self.heartbeat_interval = config.heartbeat_interval
        self.max_concurrent = config.max_concurrent
        self._last_heartbeat = -math.inf
        self._progress: dict[tuple[int, int], tuple[float, dict[str, Any]]] = {}
        self._engines: dict[str, Engine] = {}

    def run(self) -> None:
        """Tick until ``stop`` is set, then deliver what can be delivered and close."""
        runs = self.state.open_runs()
        log.info("agent %s started in %s; re-attaching to %d run(s)", __version__, self.config.work_dir, len(runs))
        self.outbox.prune()
        busy = self.tick()
        # After a round that moved something on (a run finished and freed its slot, a step
        # ended), the next round starts at once; only a round with nothing to do waits.
        while not self.stop.wait(0 if busy else self.config.poll_interval):
            busy = self.tick()
        self.outbox.flush(self.client)
        log.info("agent stopped; %d report(s) wait in the outbox", len(self.outbox.pending()))
        self.close()

    def close(self) -> None:
        """Close the databases (the files stay; a new Agent continues from them)."""
        self.outbox.close()
        self.state.close()

    def tick(self) -> bool:
        """One round: heartbeat when due, claim, advance every run, deliver, tidy. True when
        it moved something on: a run claimed, closed, or past a phase or step. The round
        delivers once, after advancing: what tidying wrote (cleanup logs) goes with the next
        round's reports, one request and one wait for the server fewer per round."""
        before = self._marks()
        if time.monotonic() - self._last_heartbeat >= self.heartbeat_interval:
            self.heartbeat()
        self.claim()
        with self._grouped():
            for run in self.state.open_runs():
                if not run.final:
                    self.advance(run)
        self.outbox.flush(self.client)
        with self._grouped():
            for run in self.state.open_runs():
                self.tidy(run)
        return self._marks() != before

    @contextmanager
    def _grouped(self) -> Iterator[None]:
        """The state and outbox writes of this part of a round commit together at its end,
        before anything of it is sent (one disk flush per file, not one per write)."""
        with self.state.database.group(), self.outbox.database.group():
            yield

    def _persist(self) -> None:
        """Commit what this round wrote so far: before a job starts, its run must be on disk."""
        self.outbox.database.commit()
        self.state.database.commit()

    def _marks(self) -> list[tuple]:
        """Where every open run stands (what ``tick`` compares to tell progress)."""
        return [(r.calc_id, r.attempt, r.step, r.phase, r.final) for r in self.state.open_runs()]

    # -- the server ---------------------------------------------------------------------

    def heartbeat(self) -> None:
        """Report the machine's state; apply the server's settings and cancel requests."""
        self._last_heartbeat = time.monotonic()
        try:
            answer = self.client.heartbeat(self.metrics())
        except ApiError as exc:
            log.warning("heartbeat failed: %s", exc)
            return
        settings = answer.get("settings") or {}
        self.enabled = bool(settings.get("enabled", True))
        if settings.get("heartbeat_interval"):
            self.heartbeat_interval = max(0.05, float(settings["heartbeat_interval"]))
        if settings.get("max_concurrent") is not None:  # the server may lower the operator's limit only
            self.max_concurrent = max(0, min(self.config.max_concurrent, int(settings["max_concurrent"])))
        for calc_id in answer.get("cancel") or []:
            self.cancel(int(calc_id))

    def metrics(self) -> dict[str, Any]:
        """The heartbeat body (``docs/agent-api.md``)."""
        memory = psutil.virtual_memory()
        listed = sorted({r.calc_id for r in self.state.open_runs() if r.final != "superseded"})
        return {
            "agent_version": __version__,
            "cpu_percent": psutil.cpu_percent(interval=None),
            "memory_percent": memory.percent, "memory_used": memory.used, "memory_total": memory.total,
            "disk_free": psutil.disk_usage(str(self.config.work_dir)).free,
            "load": list(os.getloadavg()),
            "running": listed,
            "engines": engines.available(self.config),
            "analyses": catalogue_ids(),
        }

    def claim(self) -> None:
        """Claim work while below the concurrency limit; long-poll only when idle."""
        active = [r for r in self.state.open_runs() if not r.final]
        room = self.max_concurrent - len(active)
        if not self.enabled or room <= 0 or self.stop.is_set():
            return
        wait = self.claim_wait() if not active and not self.outbox.pending() else 0
        try:
            specs = self.client.claim(room, wait)
        except ApiError as exc:
            log.warning("claim failed: %s", exc)
            return
        with self._grouped():  # one commit for what was claimed, at once: a restart resumes it
            for spec in specs:
                self.accept(spec)

    def claim_wait(self) -> int:
        """How long an idle agent's claim may wait for work: ``claim_wait``, but never past
        its next heartbeat (a long poll must not make the cluster look offline)."""
        due = self._last_heartbeat + self.heartbeat_interval - time.monotonic()
        return max(0, min(self.config.claim_wait, int(due))) if math.isfinite(due) else 0

    def accept(self, spec: dict[str, Any]) -> Run | None:
        """Record a claimed calculation, unless this very attempt is already ours."""
        run = self.state.add(spec)
        if run is None:
            log.warning("calculation %s attempt %s is already known here: not run again",
                        spec["id"], spec.get("attempt"))
            return None
        for other in self.state.open_runs():
            if other.calc_id == run.calc_id and other.attempt < run.attempt:
                self.supersede(other)
        self.log(run, f"claimed by {socket.gethostname()}: attempt {run.attempt}, "
                      f"steps {run.start_step + 1}..{run.step_count} of {run.step_count}")
        return run

    def supersede(self, run: Run) -> None:
        """The server gave up on this attempt (a newer one arrived): stop it, report nothing."""
        log.warning("calculation %s attempt %s superseded by a newer attempt", run.calc_id, run.attempt)
        self._cancel_job(run)
        self.outbox.discard(run.calc_id, run.attempt, "superseded by a newer attempt")
        run.final, run.phase, run.closed = "superseded", Phase.DONE.value, True
        self.state.save(run)

    def cancel(self, calc_id: int) -> None:
        """Cancel every unfinished run of ``calc_id`` (asked by the server's heartbeat answer)."""
        for run in self.state.open_runs():
            if run.calc_id == calc_id and not run.final:
                self._cancel_job(run)
                self.event(run, "cancelled", reason="cancelled on request", dedupe="final")
                self.log(run, "cancelled on request", level="WARNING")
                run.final, run.phase = "cancelled", Phase.DONE.value
                self.state.save(run)

    def _cancel_job(self, run: Run) -> None:
        if run.handle and run.phase == Phase.RUNNING.value:
            try:
                self.executor.cancel(run.handle)
            except Exception as exc:  # the executor's failure must not stop the cancel report
                log.error("cancelling the job of calculation %s failed: %s", run.calc_id, exc)

    # -- the step machine ---------------------------------------------------------------

    def advance(self, run: Run) -> None:
        """Move ``run`` on as far as it can go now."""
        handlers = {
            Phase.PREPARE.value: self._prepare, Phase.SUBMIT.value: self._submit,
            Phase.RUNNING.value: self._running, Phase.VALIDATE.value: self._validate,
            Phase.EXTRACT.value: self._extract, Phase.ANALYSE.value: self._analyse,
            Phase.FINISH.value: self._finish,
        }
        try:
            while run.phase in handlers and not self.stop.is_set():
                if not handlers[run.phase](run):
                    break
        except TransientError as exc:
            log.warning("calculation %s: %s; will retry", run.calc_id, exc)
        except Exception as exc:  # a broken engine or input fails this calculation, not the agent
            log.exception("calculation %s failed in phase %s", run.calc_id, run.phase)
            self.fail(run, FailureClass.UNKNOWN, f"{run.phase}: {type(exc).__name__}: {exc}")

    def _prepare(self, run: Run) -> bool:
        """Stage inputs, carry files from the previous step, let the engine write its inputs."""
        engine, k = self.engine(run), run.step
        files = [*(run.spec.get("pseudopotentials") or []), *(run.spec.get("files") or [])]
        inputs = self.workspace.stage(run.calc_id, run.attempt, files, self.client.download_file)
        stepdir = self.workspace.new_step_dir(run.calc_id, run.attempt, k)
        self.workspace.copy_in(inputs, stepdir)
        if k > run.start_step:
            self._carry(run, engine, stepdir, self.workspace.step_dir(run.calc_id, run.attempt, k - 1))
        elif k > 0 and (run.spec.get("chain") or {}).get("carry"):
            self._carry_into_resumed(run, engine, stepdir)
        engine.prepare(self.step_spec(run, k), stepdir)
        run.data.setdefault("staged", []).append(k)
        run.phase = Phase.SUBMIT.value
        self.state.save(run)
        return True

    def _carry_into_resumed(self, run: Run, engine: Engine, stepdir: Path) -> None:
        """A chain resumed at step k > 0: the chain's files of step k - 1 from the latest
        earlier attempt in this work folder that completed that step (the agent keeps them
        until the chain succeeds). Without one the step starts from scratch, and says so."""
        k, latest = run.step, run.spec.get("resume_from_attempt") or run.attempt - 1
        for attempt in range(int(latest), 0, -1):
            previous = self.workspace.step_dir(run.calc_id, attempt, k - 1)
            if (previous / EXTRACTED_FILE).is_file():
                self._carry(run, engine, stepdir, previous)
                return
        self.log(run, f"resumed at step {k + 1} without the files of step {k}: no earlier attempt in this "
                      "work folder completed it, so the step starts from scratch", level="WARNING")

    def _carry(self, run: Run, engine: Engine, stepdir: Path, previous: Path) -> None:
        carry = list((run.spec.get("chain") or {}).get("carry") or [])
        files = engine.next_step_files(previous, carry)
        if carry and not files:
            raise FileNotFoundError(f"no file of step {run.step} matches the carry patterns {carry}")
        manifest = self.workspace.carry(previous, stepdir, files)
        listed = ", ".join(f"{name} ({info['sha256'][:12]})" for name, info in manifest.items())
        origin = f"step {run.step}" + ("" if previous.parent.name == f"attempt-{run.attempt}"
                                       else f" of {previous.parent.name.replace('-', ' ')}")
        self.log(run, f"step {run.step + 1}: carried {len(manifest)} file(s) from {origin}: {listed}")

    def _submit(self, run: Run) -> bool:
        """Hand the step to the executor (or adopt the job a crash left without a record)."""
        stepdir = self.stepdir(run)
        handle = load_handle(stepdir)
        if handle is None:
            commands, redirects = job_commands(self.engine(run), self.step_spec(run, run.step), stepdir,
                                               dict(self.config.engines))
            job = Job(name=f"sf{run.calc_id}-a{run.attempt}-s{run.step}", workdir=stepdir, commands=commands,
                      ntasks=self.config.step_ntasks, time_limit=self.config.slurm.time_limit,
                      redirects=redirects)
            self._persist()  # a crash after this finds the run in SUBMIT and adopts the job's handle
            handle = self.executor.submit(job)
            job_id = handle.get("job_id") or handle.get("pid")
            self.log(run, f"step {run.step + 1}/{run.step_count} submitted to {self.executor.name} (job {job_id}): "
                          + " && ".join(" ".join(c) for c in commands))
        self.event(run, "running", dedupe=f"running:{run.step}")
        run.handle, run.phase = handle, Phase.RUNNING.value
        self.state.save(run)
        return True

    def _running(self, run: Run) -> bool:
        """Poll the job; report progress while it runs."""
        try:
            status = self.executor.status(run.handle or {})
        except Exception as exc:  # e.g. the batch system briefly unreachable: ask again next tick
            log.warning("calculation %s: job status unavailable: %s", run.calc_id, exc)
            return False
        if not status.finished:
            self.report_progress(run)
            return False
        run.data["job"] = {"state": status.state.value, "exit_code": status.exit_code, "reason": status.reason,
                           "failure_class": status.failure_class.value if status.failure_class else None}
        run.phase = Phase.VALIDATE.value
        self.state.save(run)
        return True

    def _validate(self, run: Run) -> bool:
        """The engine's verdict, overruled by the executor's when the job itself failed."""
        self.event(run, "validating", dedupe=f"validating:{run.step}")
        job = run.data.get("job") or {}
        status = JobStatus(JobState(job.get("state", "completed")), job.get("exit_code"),
                           FailureClass(job["failure_class"]) if job.get("failure_class") else None,
                           job.get("reason", ""))
        verdict = combine(status, self.engine(run).validate(self.stepdir(run), status.exit_code))
        if not verdict.ok:
            self._log_tail(run)
            self.fail(run, verdict.failure_class or FailureClass.UNKNOWN, verdict.reason)
            return False
        run.phase = Phase.EXTRACT.value
        self.state.save(run)
        return True

    def _extract(self, run: Run) -> bool:
        """Extract the step's results into the outbox; go on with the chain or finish."""
        self.event(run, "extracting", dedupe=f"extracting:{run.step}")
        stepdir, k = self.stepdir(run), run.step
        data = self.engine(run).extract(stepdir)
        (stepdir / EXTRACTED_FILE).write_text(json.dumps(data))
        body = {"step": k, "key": "extracted", "data": data, "analyses": [], "artifacts": []}
        entry = self.outbox.add_result(run.calc_id, run.attempt, body, dedupe=f"result:{k}")
        run.data.setdefault("results", {})[str(k)] = entry.id
        self.log(run, f"step {k + 1}/{run.step_count} valid; extracted {', '.join(sorted(data)) or 'nothing'}")
        if k + 1 < run.step_count:
            run.step, run.phase = k + 1, Phase.PREPARE.value
        else:
            run.phase = (Phase.ANALYSE if run.spec.get("analyses") else Phase.FINISH).value
        self.state.save(run)
        return True

    def _analyse(self, run: Run) -> bool:
        """After the last step: step-level analyses of every step, then chain-level ones.

        Each step's analyses are the result ``(step, "analyses")``; the chain's are
        ``(null, "analyses")``. They only need the extracted data, kept in each step folder.
        """
        self.event(run, "analysing", dedupe="analysing")
        steps = {k: json.loads((self.step_path(run, k) / EXTRACTED_FILE).read_text())
                 for k in range(run.start_step, run.step_count)}
        outdir = self.workspace.attempt_dir(run.calc_id, run.attempt) / "analyses"
        bodies = analyse(list(run.spec.get("analyses") or []), steps, run.values[run.start_step:], outdir)
        for body in bodies:
            key = "chain" if body["step"] is None else str(body["step"])
            entry = self.outbox.add_result(run.calc_id, run.attempt, body, dedupe=f"analyses:{key}")
            run.data.setdefault("analyses", {})[key] = entry.id
        outcomes = [a for body in bodies for a in body["analyses"]]
        failed = sorted({a["name"] for a in outcomes if a["status"] == "failed"})
        self.log(run, f"{len(outcomes)} analysis result(s); failed: {', '.join(failed) or 'none'}",
                 level="WARNING" if failed else "INFO")
        run.phase = Phase.FINISH.value
        self.state.save(run)
        return True

    def _finish(self, run: Run) -> bool:
        self.event(run, "succeeded", dedupe="final")
        self.log(run, "succeeded")
        run.final, run.phase = "succeeded", Phase.DONE.value
        self.state.save(run)
        return False

    def fail(self, run: Run, failure_class: FailureClass, reason: str) -> None:
        """Report ``run`` failed; a failed step stops the chain."""
        self.event(run, "failed", reason=reason, failure_class=failure_class.value, dedupe="final")
        self.log(run, f"failed ({failure_class.value}): {reason}", level="ERROR")
        run.final, run.phase = "failed", Phase.DONE.value
        self.state.save(run)

    def report_progress(self, run: Run) -> None:
        """A progress-only ``running`` event when the engine's progress changed (rate-limited)."""
        try:
            progress = self.engine(run).progress(self.stepdir(run))
        except Exception as exc:  # progress is a nicety; a parser hiccup must not fail the run
            log.debug("progress of calculation %s unavailable: %s", run.calc_id, exc)
            return
        key = (run.calc_id, run.attempt)
        last_time, last = self._progress.get(key, (-math.inf, None))
        if not progress or progress == last or time.monotonic() - last_time < self.heartbeat_interval:
            return
        self._progress[key] = (time.monotonic(), progress)
        self.event(run, "running", progress=progress)

    # -- after the server acknowledged --------------------------------------------------

    def tidy(self, run: Run) -> None:
        """Clean acknowledged steps; close a finished run once everything is delivered."""
        if self.config.cleanup.enabled:
            for key, entry_id in sorted((run.data.get("results") or {}).items()):
                if key != "chain" and int(key) not in run.data.get("cleaned", []):
                    if self.outbox.status(entry_id) == DELIVERED:
                        self._clean_step(run, int(key))
        results = (run.data.get("results") or {}).values()
        if (self.config.cleanup.enabled and run.final == "succeeded"
                and all(self.outbox.status(entry_id) == DELIVERED for entry_id in results)):
            owners = [r for r in self._earlier_attempts(run) + [run] if r.data.get("carry_kept")]
            if owners:
                self._clean_carried(run, owners)
        if run.final and not self.outbox.pending(run.calc_id, run.attempt):
            run.closed = True
            self.state.save(run)

    def _clean_step(self, run: Run, k: int) -> None:
        """Delete step ``k``'s raw files. Its carry files stay until the chain succeeds: the
        next step needs them, and so does a resume of the chain after a later step failed."""
        carry = (run.spec.get("chain") or {}).get("carry") or []
        keep_carry = bool(carry) and k + 1 < run.step_count and run.final != "succeeded"
        files, freed = self._clean(run, k, spare=carry if keep_carry else [])
        run.data.setdefault("cleaned", []).append(k)
        if keep_carry:
            run.data.setdefault("carry_kept", []).append(k)
        self.state.save(run)
        self.log(run, f"cleanup of step {k + 1}: deleted {files} file(s), freed {freed} bytes ({human(freed)})"
                      + (f"; its files for the next step ({' '.join(carry)}) stay until the chain succeeds"
                         if keep_carry else ""))

    def _earlier_attempts(self, run: Run) -> list[Run]:
        """The earlier attempts of ``run``'s calculation that this agent ran."""
        earlier = [self.state.get(run.calc_id, attempt) for attempt in range(1, run.attempt)]
        return [r for r in earlier if r is not None]

    def _clean_carried(self, run: Run, owners: list[Run]) -> None:
        """The chain succeeded: the carry files kept for a resume, by this attempt and by the
        earlier ones it resumed (``owners``), go the way of the rest."""
        files = freed = 0
        for owner in owners:
            for k in owner.data.pop("carry_kept", []):
                deleted, size = self._clean(owner, k, spare=[])
                files, freed = files + deleted, freed + size
            self.state.save(owner)
        self.log(run, f"chain succeeded: deleted {files} file(s) kept for the next steps, freed {freed} bytes "
                      f"({human(freed)})")

    def _clean(self, run: Run, k: int, *, spare: list[str]) -> tuple[int, int]:
        policy, stepdir = self.config.cleanup, self.step_path(run, k)
        files, freed = cleanup(stepdir, self.engine(run).raw_files(stepdir), patterns=policy.patterns,
                               size_threshold=policy.size_threshold, keep=policy.keep, spare=[*AGENT_FILES, *spare])
        run.data["freed"] = run.data.get("freed", 0) + freed
        return files, freed

    # -- helpers ------------------------------------------------------------------------

    def engine(self, run: Run) -> Engine:
        """The (cached) engine instance for ``run``."""
        name = run.spec.get("engine", "")
        if name not in self._engines:
            self._engines[name] = engines.create(name, self.config)
        return self._engines[name]

    def step_spec(self, run: Run, k: int) -> StepSpec:
        """What the engine needs to know about step ``k`` of ``run``."""
        chain = run.spec.get("chain") or {}
        return StepSpec(calculation_id=run.calc_id, name=run.spec.get("name", ""),
                        config=run.spec.get("config") or {},
                        molecule=step_molecule(run.spec.get("molecule"), chain, run.values[k]),
                        step_index=k, step_count=run.step_count, parameter=chain.get("parameter"),
                        value=run.values[k], unit=chain.get("unit") or "", ntasks=self.config.step_ntasks)

    def step_path(self, run: Run, k: int) -> Path:
        return self.workspace.step_dir(run.calc_id, run.attempt, k)

    def stepdir(self, run: Run) -> Path:
        return self.step_path(run, run.step)

    def event(self, run: Run, state: str, *, reason: str = "", failure_class: str | None = None,
              progress: dict[str, Any] | None = None, dedupe: str | None = None) -> None:
        """Queue an event (``seq`` is assigned by the outbox)."""
        body = {"state": state, "step": run.step, "reason": reason, "failure_class": failure_class,
                "progress": {"step": run.step, "steps": run.step_count, **(progress or {})}}
        self.outbox.add_event(run.calc_id, run.attempt, body, dedupe=dedupe)

    def log(self, run: Run, message: str, *, level: str = "INFO") -> None:
        """Queue a log line for the server and write it to the agent's own log."""
        log.log(logging.getLevelName(level), "calculation %s: %s", run.calc_id, message)
        self.outbox.add_log(run.calc_id, run.attempt, message, level=level)

    def _log_tail(self, run: Run) -> None:
        """Send the end of the job's stdout and stderr, to show why it failed."""
        for name in (STDOUT_FILE, STDERR_FILE):
            try:
                lines = (self.stepdir(run) / name).read_text(errors="replace").splitlines()[-TAIL_LINES:]
            except OSError:
                continue
            for line in lines:
                self.outbox.add_log(run.calc_id, run.attempt, f"{name}: {line}", level="WARNING")


def combine(status: JobStatus, validation: Validation) -> Validation:
    """The step's verdict: the executor knows about timeouts and kills, the engine the rest."""
    if status.state is JobState.COMPLETED or (status.failure_class is None and not validation.ok):
        return validation
    if status.failure_class is not None:
        return Validation(False, status.failure_class, status.reason or f"job {status.state.value}")
    return Validation(False, FailureClass.UNKNOWN, status.reason or f"job failed (exit code {status.exit_code})")


def job_commands(engine: Engine, spec: StepSpec, workdir: Path,
                 templates: dict[str, str]) -> tuple[list[list[str]], tuple[tuple[str | None, str | None], ...]]:
    """The step's command lines and their ``(stdin, stdout)`` redirections.

    ``Engine.command`` has no room for redirections; an engine that needs them (SIESTA reads
    its fdf on stdin) offers ``invocations()`` returning objects with ``argv``, ``stdin`` and
    ``stdout``. Proposed for ``engines/base.py``; until then this is the one place that knows.
    """
    invocations = getattr(engine, "invocations", None)
    if callable(invocations):
        runs = list(invocations(spec, workdir, templates))
        return [list(r.argv) for r in runs], tuple((r.stdin, r.stdout) for r in runs)
    return engine.command(spec, workdir, templates), ()


def human(size: float) -> str:
    """``1536`` → ``"1.5 KiB"``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:.1f} {unit}" if unit != "B" else f"{int(size)} B"
        size /= 1024
    return f"{size:.1f} TiB"
