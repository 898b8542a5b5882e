"""The pure parts of the Slurm executor, on text captured from a real Slurm 22.05.8.

The files in ``data/`` are verbatim output of sbatch/scontrol/sacct (``data/capture.sh``
re-creates them). Job ids are read from the files, so a re-capture does not break the tests.
States this CI Slurm cannot produce (OUT_OF_MEMORY needs memory cgroups, NODE_FAIL,
PREEMPTED, DEADLINE) are hand-written in sacct's format and marked as such.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from siestaflow_agent.engines.base import FailureClass
from siestaflow_agent.schedulers import slurm
from siestaflow_agent.schedulers.base import EXIT_CODE_FILE, HANDLE_FILE, Job, JobState, load_handle
from siestaflow_agent.schedulers.slurm import (
    SlurmError,
    SlurmExecutor,
    SlurmOptions,
    SlurmRecord,
    SlurmUnavailableError,
    parse_exit_code,
    parse_sacct,
    parse_sbatch,
    parse_scontrol,
    parse_scontrol_fields,
    render_batch_script,
    status_from_record,
)

DATA = Path(__file__).parent / "data"


def read(name: str) -> str:
    return (DATA / name).read_text()


def job_id_in(text: str) -> str:
    return re.search(r"JobId=(\d+)", text).group(1)


# ------------------------------------------------------------------ sbatch


def test_it_parses_the_job_id_of_sbatch_parsable():
    text = read("sbatch_parsable.txt")
    assert parse_sbatch(text) == (text.strip(), None)


def test_it_parses_job_id_and_cluster_of_sbatch_parsable():
    job_id, cluster = parse_sbatch(read("sbatch_parsable_cluster.txt"))
    assert job_id.isdigit()
    assert cluster == "ci"


@pytest.mark.parametrize("text", ["", "sbatch: error: Batch job submission failed\n", "abc;ci\n"])
def test_it_refuses_sbatch_output_without_job_id(text):
    with pytest.raises(ValueError, match="no job id"):
        parse_sbatch(text)


# ------------------------------------------------------------------ scontrol


@pytest.mark.parametrize(
    ("name", "state", "exit_code", "reason"),
    [
        ("scontrol_pending.txt", "PENDING", (0, 0), "Resources"),
        ("scontrol_running.txt", "RUNNING", (0, 0), ""),
        ("scontrol_completed.txt", "COMPLETED", (0, 0), ""),
        ("scontrol_failed.txt", "FAILED", (3, 0), "NonZeroExitCode"),
        ("scontrol_cancelled_running.txt", "CANCELLED", (0, 15), ""),
        ("scontrol_cancelled_pending.txt", "CANCELLED", (0, 0), "Resources"),
        ("scontrol_timeout.txt", "TIMEOUT", (0, 15), "TimeLimit"),
        ("scontrol_launch_failed.txt", "FAILED", (0, 53), "JobLaunchFailure"),
        ("scontrol_dependency_never.txt", "PENDING", (0, 0), "DependencyNeverSatisfied"),
    ],
)
def test_it_parses_scontrol_show_job(name, state, exit_code, reason):
    text = read(name)
    record = parse_scontrol(text, job_id_in(text))
    assert record == SlurmRecord(
        job_id=job_id_in(text), state=state, exit_status=exit_code[0], signal=exit_code[1], reason=reason
    )


def test_it_keeps_spaces_inside_scontrol_values():
    fields = parse_scontrol_fields(read("scontrol_spaces.txt"))
    assert fields["WorkDir"].endswith("/step 1%")
    assert fields["Command"].endswith("/step 1%/job.sh")
    assert fields["StdOut"].endswith("/step 1%%/stdout.txt")
    assert fields["TRES"] == "cpu=1,node=1,billing=1"
    assert fields["ReqB:S:C:T"] == "0:0:*:*"
    assert fields["NodeList"] == "localhost"


def test_it_reads_exit_code_not_derived_exit_code():
    line = read("scontrol_failed.txt").replace("ExitCode=3:0", "ExitCode=3:0 DerivedExitCode=7:0")
    assert parse_scontrol(line).exit_status == 3


def test_it_ignores_scontrol_lines_of_other_jobs():
    text = read("scontrol_completed.txt")
    assert parse_scontrol(text, "999999") is None


def test_it_finds_nothing_in_scontrol_error_output():
    assert parse_scontrol(read("scontrol_invalid.err.txt")) is None


# ------------------------------------------------------------------ sacct


def test_it_parses_sacct_lines_by_job_id():
    lines = read("sacct_mixed.txt").splitlines()
    expected = ["COMPLETED 0:0", "FAILED 3:0", "CANCELLED 0:0", "CANCELLED 0:0", "FAILED 0:53", "TIMEOUT 0:0"]
    found = []
    for line in lines:
        record = parse_sacct("\n".join(lines), line.split("|")[0])
        found.append(f"{record.state} {record.exit_status}:{record.signal}")
    assert found == expected


def test_it_strips_by_uid_from_cancelled():
    record = parse_sacct(read("sacct_cancelled.txt"))
    assert (record.state, record.cancelled_by) == ("CANCELLED", "0")


def test_it_skips_step_lines_of_sacct():
    text = read("sacct_cancelled_with_steps.txt")
    assert ".batch|CANCELLED|0:15" in text  # the step line is there ...
    record = parse_sacct(text)
    assert (record.job_id, record.state, record.signal) == (text.split("|")[0], "CANCELLED", 0)  # ... and ignored


def test_it_takes_the_last_record_of_a_requeued_job():
    text = "41|NODE_FAIL|0:0\n41|COMPLETED|0:0\n"  # hand-written: a requeue shows two records
    assert parse_sacct(text, "41").state == "COMPLETED"


def test_it_finds_nothing_in_empty_sacct_output():
    assert read("sacct_unknown.txt") == ""
    assert parse_sacct(read("sacct_unknown.txt"), "999999") is None


@pytest.mark.parametrize(("text", "expected"), [("0:0", (0, 0)), ("3:0", (3, 0)), ("0:15", (0, 15)), ("", (0, 0))])
def test_it_parses_exit_codes(text, expected):
    assert parse_exit_code(text) == expected


# ------------------------------------------------------------------ interpretation


def scontrol_record(name: str) -> SlurmRecord:
    text = read(name)
    return parse_scontrol(text, job_id_in(text))


def sacct_record(name: str) -> SlurmRecord:
    return parse_sacct(read(name))


@pytest.mark.parametrize(
    ("record", "recorded", "state", "exit_code", "failure_class"),
    [
        (scontrol_record("scontrol_pending.txt"), None, JobState.RUNNING, None, None),
        (scontrol_record("scontrol_running.txt"), None, JobState.RUNNING, None, None),
        (scontrol_record("scontrol_completed.txt"), 0, JobState.COMPLETED, 0, None),
        # the exit code file is not (yet) visible: Slurm's exit status of the wrapper stands in
        (scontrol_record("scontrol_completed.txt"), None, JobState.COMPLETED, 0, None),
        (sacct_record("sacct_completed.txt"), None, JobState.COMPLETED, 0, None),
        (scontrol_record("scontrol_failed.txt"), 3, JobState.FAILED, 3, None),
        (sacct_record("sacct_failed.txt"), None, JobState.FAILED, 3, None),
        # the recorded code wins over Slurm's
        (scontrol_record("scontrol_failed.txt"), 2, JobState.FAILED, 2, None),
        (scontrol_record("scontrol_failed.txt"), 137, JobState.FAILED, 137, FailureClass.KILLED),
        (scontrol_record("scontrol_launch_failed.txt"), None, JobState.FAILED, None, FailureClass.UNKNOWN),
        # the batch script itself got SIGKILL (FAILED 0:9)
        (scontrol_record("scontrol_killed.txt"), None, JobState.FAILED, None, FailureClass.KILLED),
        (sacct_record("sacct_killed.txt"), None, JobState.FAILED, None, FailureClass.KILLED),
        (scontrol_record("scontrol_cancelled_running.txt"), None, JobState.FAILED, None, FailureClass.KILLED),
        (scontrol_record("scontrol_cancelled_pending.txt"), None, JobState.FAILED, None, FailureClass.KILLED),
        (sacct_record("sacct_cancelled.txt"), None, JobState.FAILED, None, FailureClass.KILLED),
        (scontrol_record("scontrol_timeout.txt"), None, JobState.FAILED, None, FailureClass.TIMEOUT),
        (sacct_record("sacct_timeout.txt"), 143, JobState.FAILED, 143, FailureClass.TIMEOUT),
        (scontrol_record("scontrol_dependency_never.txt"), None, JobState.FAILED, None, FailureClass.UNKNOWN),
        # hand-written (not producible here), in sacct's format
        (parse_sacct("7|OUT_OF_MEMORY|0:125"), None, JobState.FAILED, None, FailureClass.OUT_OF_MEMORY),
        (parse_sacct("7|NODE_FAIL|0:0"), None, JobState.FAILED, None, FailureClass.KILLED),
        (parse_sacct("7|PREEMPTED|0:0"), None, JobState.FAILED, None, FailureClass.KILLED),
        (parse_sacct("7|DEADLINE|0:0"), None, JobState.FAILED, None, FailureClass.TIMEOUT),
        (parse_sacct("7|BOOT_FAIL|0:0"), None, JobState.FAILED, None, FailureClass.KILLED),
        (parse_sacct("7|REQUEUED|0:0"), None, JobState.RUNNING, None, None),
        (parse_sacct("7|SOMETHING_NEW|0:0"), None, JobState.FAILED, None, FailureClass.UNKNOWN),
        # Slurm has forgotten the job (no accounting): only the exit code file is left
        (None, 0, JobState.COMPLETED, 0, None),
        (None, 3, JobState.FAILED, 3, None),
        (None, None, JobState.FAILED, None, FailureClass.KILLED),
    ],
)
def test_it_maps_slurm_records_to_job_status(record, recorded, state, exit_code, failure_class):
    status = status_from_record(record, recorded)
    assert (status.state, status.exit_code, status.failure_class) == (state, exit_code, failure_class)


def test_it_says_why_a_pending_job_will_never_start():
    status = status_from_record(scontrol_record("scontrol_dependency_never.txt"), None)
    assert "DependencyNeverSatisfied" in status.reason


def test_it_tells_our_cancel_from_someone_elses():
    record = sacct_record("sacct_cancelled.txt")
    assert status_from_record(record, None, cancel_requested=True).reason == "cancelled on request"
    assert status_from_record(record, None).reason == "cancelled in Slurm by uid 0"


def test_it_reports_the_launch_failure_reason():
    status = status_from_record(scontrol_record("scontrol_launch_failed.txt"), None)
    assert "JobLaunchFailure" in status.reason
    assert "0:53" in status.reason


# ------------------------------------------------------------------ rendering


def make_job(workdir: Path, **kwargs) -> Job:
    defaults = {"name": "calc-12/step 0", "workdir": workdir, "commands": [["siesta"]]}
    return Job(**{**defaults, **kwargs})


def sbatch_lines(script: str) -> list[str]:
    return [line.removeprefix("#SBATCH ") for line in script.splitlines() if line.startswith("#SBATCH ")]


def test_it_renders_the_sbatch_directives(tmp_path):
    options = SlurmOptions(partition="debug", account="chem", qos="long", time_limit="01:00:00")
    script = render_batch_script(make_job(tmp_path, ntasks=4), options)
    assert sbatch_lines(script) == [
        "--job-name=calc-12_step_0",
        "--partition=debug",
        "--account=chem",
        "--qos=long",
        "--time=01:00:00",
        "--ntasks=4",
        f'--chdir="{tmp_path}"',
        f'--output="{tmp_path}/stdout.txt"',
        f'--error="{tmp_path}/stderr.txt"',
    ]


def test_it_leaves_out_unset_options_and_prefers_the_jobs_time_limit(tmp_path):
    script = render_batch_script(make_job(tmp_path, time_limit="5"), SlurmOptions(time_limit="01:00:00"))
    lines = sbatch_lines(script)
    assert "--time=5" in lines
    assert not [line for line in lines if line.startswith(("--partition", "--account", "--qos"))]


def test_it_appends_extra_sbatch_lines_with_or_without_prefix(tmp_path):
    options = SlurmOptions(extra_sbatch=("--mem=4G", "#SBATCH --exclusive", "  "))
    assert sbatch_lines(render_batch_script(make_job(tmp_path), options))[-2:] == ["--mem=4G", "--exclusive"]


def test_it_puts_all_directives_before_the_first_command(tmp_path):
    options = SlurmOptions(setup=("module load siesta",), extra_sbatch=("--mem=1G",))
    lines = render_batch_script(make_job(tmp_path, env={"A": "1"}), options).splitlines()
    first_command = next(i for i, line in enumerate(lines) if not line.startswith("#"))
    assert lines[first_command] == "module load siesta"
    assert all(not line.startswith("#SBATCH") for line in lines[first_command:])


def test_it_escapes_percent_in_output_patterns_only(tmp_path):
    workdir = tmp_path / "step 1%"
    lines = sbatch_lines(render_batch_script(make_job(workdir), SlurmOptions()))
    assert f'--chdir="{workdir}"' in lines
    assert f'--output="{tmp_path}/step 1%%/stdout.txt"' in lines


@pytest.mark.parametrize(
    "change",
    [
        {"options": SlurmOptions(partition="debug\n#SBATCH --uid=0")},
        {"options": SlurmOptions(extra_sbatch=("--mem=1G\nrm -rf /",))},
        {"job": {"env": {"BAD NAME": "x"}}},
        {"job": {"workdir": Path('/tmp/a"b')}},
    ],
)
def test_it_refuses_values_that_would_break_the_script(tmp_path, change):
    job = make_job(**{"workdir": tmp_path, **change.get("job", {})})
    with pytest.raises(ValueError):
        render_batch_script(job, change.get("options", SlurmOptions()))


def test_it_uses_the_configured_interpreter(tmp_path):
    script = render_batch_script(make_job(tmp_path), SlurmOptions(interpreter="/bin/bash -l"))
    assert script.startswith("#!/bin/bash -l\n")
    assert script.count("#!") == 1


def run_locally(script: str, workdir: Path) -> subprocess.CompletedProcess:
    """Run a rendered batch script with sh, as slurmstepd would (the #SBATCH lines are comments)."""
    path = workdir / "job.sh"
    path.write_text(script)
    return subprocess.run(["sh", str(path)], capture_output=True, text=True, cwd="/", check=False)


def test_the_script_runs_commands_in_order_with_stdin_and_env(tmp_path):
    (tmp_path / "in.fdf").write_text("SystemLabel h2o\n")
    commands = [["sh", "-c", 'echo "first $GREETING"'], ["cat"]]
    job = make_job(tmp_path, commands=commands, stdin="in.fdf", env={"GREETING": "it's me"})
    proc = run_locally(render_batch_script(job, SlurmOptions()), tmp_path)
    assert proc.stdout == "first it's me\nSystemLabel h2o\n"
    assert (tmp_path / EXIT_CODE_FILE).read_text() == "0\n"


def test_the_script_records_the_failing_payloads_code_and_stops(tmp_path):
    job = make_job(tmp_path, commands=[["sh", "-c", "exit 3"], ["touch", "not-run"]])
    proc = run_locally(render_batch_script(job, SlurmOptions()), tmp_path)
    assert proc.returncode == 3
    assert (tmp_path / EXIT_CODE_FILE).read_text() == "3\n"
    assert not (tmp_path / "not-run").exists()


# ------------------------------------------------------------------ the executor on captured text


class FakeSlurm:
    """Stands in for run_command: answers each Slurm command with captured text."""

    def __init__(self, answers: dict[str, tuple[int, str, str]]):
        self.answers = answers
        self.calls: list[list[str]] = []

    def __call__(self, argv, *, timeout, cwd=None):
        self.calls.append(argv)
        rc, out, err = self.answers[argv[0]]
        return subprocess.CompletedProcess(argv, rc, out, err)


@pytest.fixture
def fake(monkeypatch):
    def install(**answers):
        runner = FakeSlurm(answers)
        monkeypatch.setattr(slurm, "run_command", runner)
        return runner

    return install


def test_it_submits_and_saves_the_handle(fake, tmp_path):
    (tmp_path / EXIT_CODE_FILE).write_text("0\n")  # left over from an earlier attempt
    runner = fake(sbatch=(0, read("sbatch_parsable_cluster.txt"), ""))
    handle = SlurmExecutor().submit(make_job(tmp_path))
    job_id = read("sbatch_parsable_cluster.txt").split(";")[0]
    assert handle == {"executor": "slurm", "job_id": job_id, "workdir": str(tmp_path), "cluster": "ci"}
    assert load_handle(tmp_path) == handle
    assert runner.calls == [["sbatch", "--parsable", str(tmp_path / "job.sh")]]
    assert not (tmp_path / EXIT_CODE_FILE).exists()


def test_it_raises_sbatchs_rejection_with_its_message(fake, tmp_path):
    fake(sbatch=(1, "", read("sbatch_rejected.err.txt")))
    with pytest.raises(SlurmError, match="More processors requested than permitted") as caught:
        SlurmExecutor().submit(make_job(tmp_path))
    assert not isinstance(caught.value, SlurmUnavailableError)
    assert caught.value.returncode == 1
    assert not (tmp_path / HANDLE_FILE).exists()


def test_it_raises_unavailable_when_the_controller_does_not_answer(fake, tmp_path):
    fake(scontrol=(1, "", read("scontrol_no_controller.err.txt")))
    handle = {"executor": "slurm", "job_id": "5", "workdir": str(tmp_path)}
    with pytest.raises(SlurmUnavailableError, match="Unable to contact slurm controller"):
        SlurmExecutor().status(handle)


def test_it_raises_unavailable_when_slurmdbd_does_not_answer(fake, tmp_path):
    fake(scontrol=(1, "", read("scontrol_invalid.err.txt")), sacct=(1, "", read("sacct_no_dbd.err.txt")))
    handle = {"executor": "slurm", "job_id": "5", "workdir": str(tmp_path)}
    with pytest.raises(SlurmUnavailableError, match="Problem talking to the database"):
        SlurmExecutor().status(handle)


def test_it_asks_sacct_once_scontrol_forgot_the_job(fake, tmp_path):
    runner = fake(scontrol=(1, "", read("scontrol_invalid.err.txt")), sacct=(0, read("sacct_failed.txt"), ""))
    job_id = read("sacct_failed.txt").split("|")[0]
    status = SlurmExecutor().status({"executor": "slurm", "job_id": job_id, "workdir": str(tmp_path)})
    assert (status.state, status.exit_code) == (JobState.FAILED, 3)
    assert [argv[0] for argv in runner.calls] == ["scontrol", "sacct"]
    assert runner.calls[1] == ["sacct", "-X", "-n", "-P", "-o", "JobID,State,ExitCode", "-j", job_id]


def test_it_does_not_ask_sacct_while_scontrol_knows_the_job(fake, tmp_path):
    text = read("scontrol_running.txt")
    runner = fake(scontrol=(0, text, ""))
    status = SlurmExecutor().status({"executor": "slurm", "job_id": job_id_in(text), "workdir": str(tmp_path)})
    assert status.state is JobState.RUNNING
    assert [argv[0] for argv in runner.calls] == ["scontrol"]


def test_it_falls_back_to_the_exit_code_file_without_accounting(fake, tmp_path):
    (tmp_path / EXIT_CODE_FILE).write_text("0\n")
    fake(
        scontrol=(1, "", read("scontrol_invalid.err.txt")),
        sacct=(1, "", "sacct: error: Slurm accounting storage is disabled\n"),
    )
    status = SlurmExecutor().status({"executor": "slurm", "job_id": "5", "workdir": str(tmp_path)})
    assert (status.state, status.exit_code) == (JobState.COMPLETED, 0)


def test_it_passes_the_cluster_of_the_handle_on(fake, tmp_path):
    text = read("scontrol_running.txt")
    runner = fake(scontrol=(0, text, ""), scancel=(0, "", ""))
    handle = {"executor": "slurm", "job_id": job_id_in(text), "workdir": str(tmp_path), "cluster": "ci"}
    executor = SlurmExecutor()
    executor.status(handle)
    executor.cancel(handle)
    assert runner.calls == [
        ["scontrol", "--clusters=ci", "show", "job", "-o", job_id_in(text)],
        ["scancel", "--clusters=ci", job_id_in(text)],
    ]


def test_it_cancels_a_job_that_will_never_start(fake, tmp_path):
    text = read("scontrol_dependency_never.txt")
    runner = fake(scontrol=(0, text, ""), scancel=(0, "", ""))
    status = SlurmExecutor().status({"executor": "slurm", "job_id": job_id_in(text), "workdir": str(tmp_path)})
    assert status.state is JobState.FAILED
    assert runner.calls[-1] == ["scancel", job_id_in(text)]


def test_cancel_is_remembered_in_the_saved_handle(fake, tmp_path):
    fake(scancel=(0, "", ""), scontrol=(0, read("scontrol_cancelled_running.txt"), ""))
    handle = {
        "executor": "slurm",
        "job_id": job_id_in(read("scontrol_cancelled_running.txt")),
        "workdir": str(tmp_path),
    }
    SlurmExecutor().cancel(dict(handle))
    assert load_handle(tmp_path)["cancel_requested"] is True
    # a restarted agent that still holds the handle from before the cancel
    assert SlurmExecutor().status(handle).reason == "cancelled on request"


def test_a_missing_slurm_command_is_a_clear_error():
    with pytest.raises(SlurmError, match="siestaflow-no-such-sbatch not found on PATH") as caught:
        slurm.run_command(["siestaflow-no-such-sbatch", "--parsable"], timeout=5)
    assert not isinstance(caught.value, SlurmUnavailableError)  # a set-up problem, not transient


def test_a_command_that_hangs_is_unavailable():
    with pytest.raises(SlurmUnavailableError, match="no answer within 0.2 s"):
        slurm.run_command(["sleep", "5"], timeout=0.2)
