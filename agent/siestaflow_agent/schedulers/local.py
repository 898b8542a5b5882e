"""Run jobs as local processes (a workstation or a single node without a batch system).

Each job is the wrapper script (:func:`~siestaflow_agent.schedulers.base.render_wrapper`)
started in its own session and process group, so cancelling it reaches every process it
started (``mpirun`` and its ranks) and stopping the agent does not stop it. The handle holds
the wrapper's pid, process group and start time; the exit code comes from the file the
wrapper writes, so a restarted agent that is no longer the parent still knows how it ended.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
from siestaflow_agent.schedulers.base import (
    STDERR_FILE,
    STDOUT_FILE,
    WRAPPER_FILE,
    Executor,
    Handle,
    Job,
    JobState,
    JobStatus,
    failure_from_exit_code,
    read_exit_code,
    render_wrapper,
    save_handle,
)


class LocalExecutor(Executor):
    """Jobs as process groups on this machine."""

    name = "local"

    def __init__(self, *, kill_grace: float = 10.0) -> None:
        self.kill_grace = kill_grace
        self._children: dict[int, subprocess.Popen] = {}

    def submit(self, job: Job) -> Handle:
        """Write the wrapper into the step folder and start it in a new session."""
        script = job.workdir / WRAPPER_FILE
        script.write_text(render_wrapper(job))
        env = {**os.environ, **job.env}
        with (job.workdir / STDOUT_FILE).open("ab") as out, (job.workdir / STDERR_FILE).open("ab") as err:
            proc = subprocess.Popen(
                ["/bin/sh", str(script)],
                cwd=job.workdir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=env,
                start_new_session=True,
            )
        self._children[proc.pid] = proc
        handle = {
            "executor": self.name,
            "pid": proc.pid,
            "pgid": proc.pid,
            "create_time": _create_time(proc.pid),
            "workdir": str(job.workdir),
        }
        save_handle(job.workdir, handle)
        return handle

    def status(self, handle: Handle) -> JobStatus:
        """Running while the wrapper lives; afterwards, its recorded exit code decides."""
        if self._alive(handle):
            return JobStatus(JobState.RUNNING)
        code = read_exit_code(Path(handle["workdir"]))
        failure_class, reason = failure_from_exit_code(code)
        if code == 0:
            return JobStatus(JobState.COMPLETED, exit_code=0)
        return JobStatus(JobState.FAILED, exit_code=code, failure_class=failure_class, reason=reason)

    def cancel(self, handle: Handle) -> None:
        """SIGTERM to the whole process group, then SIGKILL after ``kill_grace`` seconds."""
        pgid = int(handle["pgid"])
        if not self._owns_group(handle):
            return
        _signal_group(pgid, signal.SIGTERM)
        if self._wait_group(handle, self.kill_grace):
            return
        _signal_group(pgid, signal.SIGKILL)
        self._wait_group(handle, 5.0)  # SIGKILL cannot be ignored; dying just takes a moment

    def _wait_group(self, handle: Handle, seconds: float) -> bool:
        """Wait up to ``seconds`` for the job's process group to be gone; True if it is."""
        deadline = time.monotonic() + seconds
        while True:
            self._reap(int(handle["pid"]))
            if not _group_alive(int(handle["pgid"])):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def _alive(self, handle: Handle) -> bool:
        """Is the wrapper process of ``handle`` still running (not a zombie, not a reused pid)?"""
        pid = int(handle["pid"])
        proc = self._children.get(pid)
        if proc is not None:
            return proc.poll() is None
        self._reap(pid)
        try:
            process = psutil.Process(pid)
            if abs(process.create_time() - float(handle["create_time"])) > 1.0:
                return False
            return process.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    def _owns_group(self, handle: Handle) -> bool:
        """False if the group's leader pid now belongs to some other, newer process."""
        try:
            leader = psutil.Process(int(handle["pgid"]))
        except psutil.Error:
            return True  # leader gone; survivors of the group may still need the signal
        return abs(leader.create_time() - float(handle["create_time"])) <= 1.0

    def _reap(self, pid: int) -> None:
        """Collect ``pid`` if it is our exited child, so it does not linger as a zombie."""
        proc = self._children.get(pid)
        if proc is not None:
            proc.poll()
            return
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


def _create_time(pid: int) -> float:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return time.time()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _group_alive(pgid: int) -> bool:
    """Does any live (non-zombie) process remain in process group ``pgid``?"""
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) == pgid and process.status() != psutil.STATUS_ZOMBIE:
                return True
        except (OSError, psutil.Error):
            continue
    return False
