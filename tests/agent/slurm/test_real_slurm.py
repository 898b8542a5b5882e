"""The Slurm executor against a real Slurm (``sudo .ci/slurm/up`` brings one up on localhost).

Skipped when there is no working ``sinfo``, unless ``SIESTAFLOW_REQUIRE_SLURM=1``, which
turns the skip into a failure (for the CI job that provides Slurm). A job takes about 2 s
from submission to its end; the time-limit test takes about 1.5 min (marked ``slow``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from siestaflow_agent.engines.base import FailureClass
from siestaflow_agent.schedulers.base import (
    EXIT_CODE_FILE,
    STDERR_FILE,
    STDOUT_FILE,
    Handle,
    Job,
    JobState,
    JobStatus,
    load_handle,
)
from siestaflow_agent.schedulers.slurm import SlurmError, SlurmExecutor, SlurmOptions

pytestmark = pytest.mark.slurm

MPI_ENV = {
    "OMPI_ALLOW_RUN_AS_ROOT": "1",
    "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
    "OMPI_MCA_rmaps_base_oversubscribe": "1",
}


def slurm_problem() -> str | None:
    """Why there is no usable Slurm here, or None."""
    if shutil.which("sinfo") is None:
        return "no Slurm here: sinfo is not on PATH (start one with: sudo .ci/slurm/up)"
    proc = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=90, check=False)
    if proc.returncode != 0:
        return f"Slurm is not answering: sinfo: {proc.stderr.strip()} (start it with: sudo .ci/slurm/up)"
    return None


def skip_or_fail(problem: str) -> None:
    """Skip for ``problem``, or fail when SIESTAFLOW_REQUIRE_SLURM=1 (the CI job that has Slurm)."""
    if os.environ.get("SIESTAFLOW_REQUIRE_SLURM") == "1":
        pytest.fail(f"{problem}; SIESTAFLOW_REQUIRE_SLURM=1 demands a real Slurm")
    pytest.skip(problem)


@pytest.fixture(scope="module", autouse=True)
def real_slurm():
    problem = slurm_problem()
    if problem:
        skip_or_fail(problem)


@pytest.fixture
def submitted():
    """Handles of the jobs a test submitted; whatever still runs is cancelled afterwards."""
    handles: list[Handle] = []
    yield handles
    for handle in handles:
        subprocess.run(["scancel", str(handle["job_id"])], capture_output=True, check=False)


@pytest.fixture
def submit(tmp_path, submitted, request) -> Callable[..., Handle]:
    """submit(commands, files={name: text}, executor=..., **Job fields) -> handle, each job in a
    fresh step folder holding ``files``."""
    counter = iter(range(100))

    def _submit(commands, *, files=None, executor=None, **fields) -> Handle:
        workdir = tmp_path / f"step{next(counter)}"
        workdir.mkdir()
        for name, text in (files or {}).items():
            (workdir / name).write_text(text)
        fields = {"time_limit": "00:05:00", **fields}
        job = Job(name=f"sf-{request.node.name}"[:60], workdir=workdir, commands=commands, **fields)
        handle = (executor or SlurmExecutor()).submit(job)
        submitted.append(handle)
        return handle

    return _submit


def wait_for(check: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"gave up after {timeout:g} s waiting for {what}")


def wait_finished(handle: Handle, timeout: float = 60, executor: SlurmExecutor | None = None) -> JobStatus:
    executor = executor or SlurmExecutor()

    def finished():
        status = executor.status(handle)
        return status if status.finished else None

    return wait_for(finished, timeout, f"job {handle['job_id']} to finish")


def slurm_state(handle: Handle) -> str:
    record = SlurmExecutor().query(handle)
    return record.state if record else ""


def slurmctld_forgot(handle: Handle) -> bool:
    proc = subprocess.run(["scontrol", "show", "job", handle["job_id"]], capture_output=True, text=True, check=False)
    return "Invalid job id" in proc.stderr


def workdir_of(handle: Handle) -> Path:
    return Path(handle["workdir"])


# ------------------------------------------------------------------ tests


def test_it_completes_a_job_and_records_exit_code_0(submit):
    handle = submit([["sh", "-c", 'echo "hello from job $SLURM_JOB_ID"']])
    status = wait_finished(handle)
    assert status == JobStatus(JobState.COMPLETED, exit_code=0)
    assert (workdir_of(handle) / EXIT_CODE_FILE).read_text() == "0\n"
    assert (workdir_of(handle) / STDOUT_FILE).read_text() == f"hello from job {handle['job_id']}\n"


def test_it_runs_the_commands_in_order_with_stdin_in_the_step_folder(submit):
    handle = submit([["cat"], ["sh", "-c", "pwd; echo second"]], stdin="in.fdf", files={"in.fdf": "SystemLabel h2o\n"})
    status = wait_finished(handle)
    out = (workdir_of(handle) / STDOUT_FILE).read_text()
    assert status.state is JobState.COMPLETED, (status, out)
    assert out == f"SystemLabel h2o\n{workdir_of(handle)}\nsecond\n"


def test_it_reports_a_payload_that_exits_3(submit):
    handle = submit([["sh", "-c", "echo oops >&2; exit 3"], ["touch", "not-run"]])
    status = wait_finished(handle)
    assert (status.state, status.exit_code, status.failure_class) == (JobState.FAILED, 3, None)
    assert "exited with code 3" in status.reason
    assert (workdir_of(handle) / EXIT_CODE_FILE).read_text() == "3\n"
    assert (workdir_of(handle) / STDERR_FILE).read_text() == "oops\n"
    assert not (workdir_of(handle) / "not-run").exists()


def test_it_cancels_a_running_job(submit):
    handle = submit([["sleep", "300"]])
    wait_for(lambda: slurm_state(handle) == "RUNNING", 30, "the job to run")
    started = time.monotonic()
    SlurmExecutor().cancel(handle)
    status = wait_finished(handle, timeout=30)
    assert time.monotonic() - started < 15
    assert (status.state, status.failure_class, status.reason) == (
        JobState.FAILED,
        FailureClass.KILLED,
        "cancelled on request",
    )
    assert status.exit_code is None  # the wrapper was killed before it could record one
    assert slurm_state(handle) == "CANCELLED"


def test_cancel_of_a_finished_job_changes_nothing(submit):
    handle = submit([["true"]])
    assert wait_finished(handle).state is JobState.COMPLETED
    SlurmExecutor().cancel(handle)
    assert SlurmExecutor().status(handle) == JobStatus(JobState.COMPLETED, exit_code=0)


def test_it_runs_an_mpi_job_with_two_ranks(submit):
    if shutil.which("mpirun") is None:
        skip_or_fail("no mpirun here (install openmpi-bin; .ci/slurm/up does)")
    rank = 'echo "rank $OMPI_COMM_WORLD_RANK of $OMPI_COMM_WORLD_SIZE"'
    handle = submit([["mpirun", "-np", "2", "sh", "-c", rank]], ntasks=2, env=MPI_ENV)
    status = wait_finished(handle)
    out = (workdir_of(handle) / STDOUT_FILE).read_text()
    assert status == JobStatus(JobState.COMPLETED, exit_code=0), (workdir_of(handle) / STDERR_FILE).read_text()
    assert sorted(out.splitlines()) == ["rank 0 of 2", "rank 1 of 2"]


def test_a_new_executor_finds_the_job_from_the_saved_handle(submit):
    handle = submit([["sh", "-c", "sleep 2; echo done"]])
    # the agent restarts: all it has is the handle file in the step folder
    saved = load_handle(workdir_of(handle))
    assert json.loads(json.dumps(saved)) == saved == handle
    restarted = SlurmExecutor()
    assert restarted.status(saved).state is JobState.RUNNING
    assert wait_finished(saved, executor=restarted) == JobStatus(JobState.COMPLETED, exit_code=0)


def test_it_knows_the_end_from_sacct_after_slurmctld_forgot_the_job(submit):
    if subprocess.run(["sacct", "-n", "-j", "1"], capture_output=True, check=False).returncode != 0:
        pytest.skip("no Slurm accounting (sacct) here: start Slurm with WITH_DBD=1")
    min_job_age = re.search(
        r"MinJobAge\s*=\s*(\d+)", subprocess.check_output(["scontrol", "show", "config"], text=True)
    )
    if min_job_age is None or int(min_job_age.group(1)) > 30:
        pytest.skip("slurmctld keeps finished jobs for more than 30 s (MinJobAge); .ci/slurm/up sets 5")
    handle = submit([["sh", "-c", "exit 3"]])
    wait_finished(handle)
    wait_for(lambda: slurmctld_forgot(handle), 60, "slurmctld to purge the job")
    # without the exit code file only Slurm's record can tell that it failed with 3
    (workdir_of(handle) / EXIT_CODE_FILE).unlink()
    status = SlurmExecutor().status(load_handle(workdir_of(handle)))
    assert (status.state, status.exit_code) == (JobState.FAILED, 3)


def test_it_fails_and_cancels_a_job_whose_dependency_failed(submit):
    failed = submit([["false"]])
    assert wait_finished(failed).state is JobState.FAILED
    executor = SlurmExecutor(SlurmOptions(extra_sbatch=(f"--dependency=afterok:{failed['job_id']}",)))
    handle = submit([["touch", "ran"]], executor=executor)
    status = wait_finished(handle, timeout=30, executor=executor)
    assert (status.state, status.failure_class) == (JobState.FAILED, FailureClass.UNKNOWN)
    assert "DependencyNeverSatisfied" in status.reason
    wait_for(lambda: slurm_state(handle) == "CANCELLED", 10, "the job to be cancelled")
    assert not (workdir_of(handle) / "ran").exists()


def test_it_raises_the_rejection_of_sbatch(submit):
    with pytest.raises(SlurmError, match="More processors requested than permitted"):
        submit([["true"]], ntasks=100_000)


@pytest.mark.slow
def test_it_reports_a_job_that_reached_its_time_limit(submit):
    """About 1.5 min: the smallest limit is 1 min and slurmctld checks limits every 30 s."""
    handle = submit([["sleep", "600"]], time_limit="00:01:00")
    status = wait_finished(handle, timeout=180)
    assert (status.state, status.failure_class) == (JobState.FAILED, FailureClass.TIMEOUT)
    assert "TIMEOUT" in status.reason
    assert status.exit_code is None
