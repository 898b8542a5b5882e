"""Run jobs through Slurm: ``sbatch`` to submit, ``scontrol``/``sacct`` to poll, ``scancel`` to stop.

The batch script is the common job wrapper (:func:`~siestaflow_agent.schedulers.base.render_wrapper`)
with ``#SBATCH`` lines in front: it ``cd``\\s to the step folder, runs the commands in order and
records their exit code in the step folder, and Slurm writes stdout/stderr there too.

Everything that interprets Slurm text is a pure function (``render_batch_script``,
``parse_sbatch``, ``parse_scontrol``, ``parse_sacct``, ``status_from_record``), tested on output
captured from a real Slurm 22.05; :func:`run_command` holds the only ``subprocess.run``.

How a job ended comes from Slurm's *state* (why it ended: time limit, cancel, node failure)
and from the exit code the wrapper recorded (how the commands ended). Slurm's own ExitCode
only stands in when the file is missing, and never for CANCELLED/TIMEOUT, where it differs
between scontrol and sacct.

Polling: ``scontrol show job -o`` while slurmctld still knows the job (``MinJobAge`` after it
ended, 300 s by default), then ``sacct`` (slurmdbd), which keeps it for good.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
from pathlib import Path

from siestaflow_agent.engines.base import FailureClass
from siestaflow_agent.schedulers.base import (
    EXIT_CODE_FILE,
    STDERR_FILE,
    STDOUT_FILE,
    WRAPPER_FILE,
    Executor,
    Handle,
    Job,
    JobState,
    JobStatus,
    failure_from_exit_code,
    load_handle,
    read_exit_code,
    render_wrapper,
    save_handle,
)

# Slurm states in which the job may still run (or run again); everything else is final.
ACTIVE_STATES = frozenset(
    "PENDING CONFIGURING RUNNING COMPLETING SUSPENDED REQUEUED REQUEUE_HOLD REQUEUE_FED RESIZING SIGNALING"
    " STAGE_OUT RESV_DEL_HOLD SPECIAL_EXIT".split()
)
# Final states other than COMPLETED/FAILED: the failure class, and what the reason says.
FINAL_FAILURES: dict[str, tuple[FailureClass, str]] = {
    "TIMEOUT": (FailureClass.TIMEOUT, "the job reached its time limit"),
    "DEADLINE": (FailureClass.TIMEOUT, "the job reached its deadline"),
    "OUT_OF_MEMORY": (FailureClass.OUT_OF_MEMORY, "the job ran out of memory"),
    "NODE_FAIL": (FailureClass.KILLED, "a node of the job failed"),
    "BOOT_FAIL": (FailureClass.KILLED, "a node of the job failed to boot"),
    "PREEMPTED": (FailureClass.KILLED, "the job was preempted (it can be requeued)"),
    "REVOKED": (FailureClass.KILLED, "the job was revoked (it runs on another cluster)"),
}
# Reasons for which a pending job will never start without an administrator's help.
NEVER_STARTS = frozenset(
    "DependencyNeverSatisfied PartitionConfig BadConstraints InvalidAccount InvalidQOS PartitionTimeLimit"
    " PartitionNodeLimit".split()
)
# stderr of slurmctld/slurmdbd not answering (transient), of a forgotten job, of no accounting
_UNAVAILABLE = (
    "Unable to contact slurm controller",
    "Socket timed out",
    "Slurm backup controller in standby",
    "Problem talking to the database",
)
_INVALID_JOB = "Invalid job id specified"
_NO_ACCOUNTING = "accounting storage is disabled"
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.+-]")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# a key of `scontrol show job -o`: "JobState=", "Socks/Node=", "ReqB:S:C:T=" ...
_SCONTROL_KEY = re.compile(r"(?:^|\s)([A-Za-z][A-Za-z0-9_/:]*)=")


class SlurmError(RuntimeError):
    """A Slurm command failed (or could not be run). ``stderr`` is the command's own message."""

    def __init__(self, argv: list[str], returncode: int | None, stderr: str, message: str = "") -> None:
        self.argv = argv
        self.returncode = returncode
        self.stderr = stderr.strip()
        detail = message or f"exit {returncode}"
        super().__init__(f"{' '.join(argv)}: {detail}: {self.stderr or '(no error output)'}")


class SlurmUnavailableError(SlurmError):
    """slurmctld or slurmdbd did not answer: transient, try again later."""


@dataclasses.dataclass(frozen=True)
class SlurmOptions:
    """The cluster side of a submission, from the agent's configuration.

    ``time_limit`` is used when a job brings none. ``extra_sbatch`` are further sbatch options
    (``"--mem=4G"`` or ``"#SBATCH --mem=4G"``); ``setup`` are shell lines run before the commands
    (``"module load siesta"``), for which ``interpreter`` may need to be e.g. ``"/bin/bash -l"``.
    """

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    time_limit: str | None = None
    extra_sbatch: tuple[str, ...] = ()
    setup: tuple[str, ...] = ()
    interpreter: str = "/bin/sh"
    command_timeout: float = 120.0


@dataclasses.dataclass(frozen=True)
class SlurmRecord:
    """What Slurm says about one job: ``state`` is the bare state word (``CANCELLED``, not
    ``CANCELLED by 0``); ``exit_status:signal`` is Slurm's ExitCode of the batch script."""

    job_id: str
    state: str
    exit_status: int = 0
    signal: int = 0
    reason: str = ""
    cancelled_by: str = ""


# ------------------------------------------------------------------ rendering


def render_batch_script(job: Job, options: SlurmOptions) -> str:
    """The sbatch script of ``job``: ``#SBATCH`` lines, then ``setup``, then the job wrapper."""
    workdir = str(Path(job.workdir).absolute())
    optional = {
        "partition": options.partition,
        "account": options.account,
        "qos": options.qos,
        "time": job.time_limit or options.time_limit,
    }
    directives = [
        f"--job-name={_job_name(job.name)}",
        *(f"--{key}={_value(value)}" for key, value in optional.items() if value),
        f"--ntasks={int(job.ntasks)}",
        f"--chdir={_quoted(workdir)}",
        # %j etc. are patterns in these two, so a literal % is written %%
        f"--output={_quoted(_pattern_escape(os.path.join(workdir, STDOUT_FILE)))}",
        f"--error={_quoted(_pattern_escape(os.path.join(workdir, STDERR_FILE)))}",
    ]
    extra = [_value(line.strip()).removeprefix("#SBATCH").strip() for line in options.extra_sbatch]
    lines = [f"#!{options.interpreter}"]
    lines += [f"#SBATCH {d}" for d in directives + [e for e in extra if e]]
    lines += [_value(line) for line in options.setup]
    for key, val in job.env.items():
        if not _ENV_NAME.fullmatch(key):
            raise ValueError(f"invalid environment variable name {key!r}")
        lines.append(f"export {key}={_shell_quote(val)}")
    wrapper = render_wrapper(dataclasses.replace(job, workdir=Path(workdir)))
    body = [line for line in wrapper.splitlines() if not line.startswith("#!")]
    return "\n".join(lines + body) + "\n"


def _job_name(name: str) -> str:
    return _NAME_UNSAFE.sub("_", name)[:64] or "siestaflow"


def _value(text: str) -> str:
    """Refuse values that would end the line they are written on."""
    if "\n" in text or "\r" in text:
        raise ValueError(f"line break in batch script value {text!r}")
    return text


def _quoted(path: str) -> str:
    """A path in double quotes, the quoting sbatch understands in ``#SBATCH`` lines."""
    if '"' in _value(path):
        raise ValueError(f"the step folder may not contain a double quote: {path!r}")
    return f'"{path}"'


def _pattern_escape(path: str) -> str:
    return path.replace("%", "%%")


def _shell_quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


# ------------------------------------------------------------------ parsing


def parse_sbatch(text: str) -> tuple[str, str | None]:
    """``sbatch --parsable`` output (``"123"`` or ``"123;cluster"``) -> (job id, cluster)."""
    line = text.strip().splitlines()[-1] if text.strip() else ""
    job_id, _, cluster = line.partition(";")
    if not job_id.isdigit():
        raise ValueError(f"no job id in sbatch output {text!r}")
    return job_id, cluster or None


def parse_exit_code(text: str) -> tuple[int, int]:
    """Slurm's ``ExitCode`` (``"3:0"``: exit status 3, signal 0) -> (status, signal)."""
    status, _, signal = text.strip().partition(":")
    return int(status or 0), int(signal or 0)


def parse_scontrol_fields(line: str) -> dict[str, str]:
    """One line of ``scontrol show ... -o`` -> its ``Key=value`` fields (values may hold spaces)."""
    keys = list(_SCONTROL_KEY.finditer(line))
    ends = [key.start() for key in keys[1:]] + [len(line)] if keys else []
    return {key.group(1): line[key.end() : end].strip() for key, end in zip(keys, ends, strict=True)}


def parse_scontrol(text: str, job_id: str | None = None) -> SlurmRecord | None:
    """``scontrol show job -o ID`` output -> the record of ``job_id`` (or the first job)."""
    for line in text.splitlines():
        fields = parse_scontrol_fields(line)
        if "JobId" not in fields or "JobState" not in fields:
            continue
        if job_id is not None and fields["JobId"] != str(job_id):
            continue
        status, signal = parse_exit_code(fields.get("ExitCode", "0:0"))
        reason = fields.get("Reason", "")
        return SlurmRecord(
            job_id=fields["JobId"],
            state=fields["JobState"],
            exit_status=status,
            signal=signal,
            reason="" if reason == "None" else reason,
        )
    return None


def parse_sacct(text: str, job_id: str | None = None) -> SlurmRecord | None:
    """``sacct -X -n -P -o JobID,State,ExitCode -j ID`` output -> the record of ``job_id``.

    Steps (``ID.batch``) are skipped should ``-X`` be missing; of several lines for the job
    (a requeued job) the last one counts. ``CANCELLED by 0`` gives state ``CANCELLED``.
    """
    found = None
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) < 3 or "." in parts[0] or not parts[1]:
            continue
        if job_id is not None and parts[0] != str(job_id):
            continue
        state, _, rest = parts[1].partition(" ")
        status, signal = parse_exit_code(parts[2])
        cancelled_by = rest.removeprefix("by ").strip() if rest.startswith("by ") else ""
        found = SlurmRecord(job_id=parts[0], state=state, exit_status=status, signal=signal, cancelled_by=cancelled_by)
    return found


# ------------------------------------------------------------------ interpreting


def status_from_record(
    record: SlurmRecord | None, recorded_exit_code: int | None, *, cancel_requested: bool = False
) -> JobStatus:
    """The :class:`JobStatus` for what Slurm says (``None``: Slurm no longer knows the job)
    and the exit code the wrapper recorded in the step folder (``None``: none)."""
    if record is None:
        return _status_unknown_to_slurm(recorded_exit_code)
    state = record.state
    if state in ACTIVE_STATES:
        if state == "PENDING" and record.reason in NEVER_STARTS:
            return JobStatus(
                JobState.FAILED,
                failure_class=FailureClass.UNKNOWN,
                reason=f"Slurm will never start the job (pending, Reason={record.reason})",
            )
        return JobStatus(JobState.RUNNING, reason=f"{state.lower()} in Slurm")
    if state in ("COMPLETED", "FAILED"):
        return _status_of_exit(record, recorded_exit_code)
    if state == "CANCELLED":
        who = f" by uid {record.cancelled_by}" if record.cancelled_by else ""
        why = "cancelled on request" if cancel_requested else f"cancelled in Slurm{who}"
        return JobStatus(JobState.FAILED, exit_code=recorded_exit_code, failure_class=FailureClass.KILLED, reason=why)
    failure_class, why = FINAL_FAILURES.get(state, (FailureClass.UNKNOWN, "the job ended"))
    return JobStatus(
        JobState.FAILED,
        exit_code=recorded_exit_code,
        failure_class=failure_class,
        reason=f"{why} (Slurm state {state})",
    )


def _status_of_exit(record: SlurmRecord, recorded: int | None) -> JobStatus:
    """COMPLETED/FAILED: the wrapper's recorded code decides; the wrapper exits with that
    code, so Slurm's exit status stands in for it when the file is missing (or not yet
    visible on a shared file system). A signal means the wrapper itself was killed."""
    code = recorded
    if code is None and record.signal == 0 and (record.state == "COMPLETED" or record.exit_status != 0):
        code = record.exit_status
    if code == 0:
        return JobStatus(JobState.COMPLETED, exit_code=0)
    if code is not None:
        failure_class, reason = failure_from_exit_code(code)
        return JobStatus(JobState.FAILED, exit_code=code, failure_class=failure_class, reason=reason)
    slurm_says = f"Slurm state {record.state}, ExitCode {record.exit_status}:{record.signal}"
    if record.reason:
        slurm_says += f", Reason={record.reason}"
    if record.signal in (9, 15):
        return JobStatus(
            JobState.FAILED,
            failure_class=FailureClass.KILLED,
            reason=f"the job script was killed by signal {record.signal} ({slurm_says})",
        )
    return JobStatus(
        JobState.FAILED,
        failure_class=FailureClass.UNKNOWN,
        reason=f"the job failed before recording an exit code ({slurm_says})",
    )


def _status_unknown_to_slurm(recorded: int | None) -> JobStatus:
    """Neither slurmctld nor accounting knows the job (e.g. no slurmdbd and older than
    MinJobAge): only the recorded exit code can tell."""
    if recorded == 0:
        return JobStatus(JobState.COMPLETED, exit_code=0)
    failure_class, reason = failure_from_exit_code(recorded)
    return JobStatus(
        JobState.FAILED,
        exit_code=recorded,
        failure_class=failure_class,
        reason=f"{reason}; Slurm has no record of the job",
    )


# ------------------------------------------------------------------ running commands


def run_command(argv: list[str], *, timeout: float, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run one Slurm command and return its result, whatever the return code (the caller
    interprets it). A missing command raises :class:`SlurmError`; no answer within
    ``timeout`` seconds raises :class:`SlurmUnavailableError`."""
    try:
        return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError as exc:
        raise SlurmError(argv, None, str(exc), f"{argv[0]} not found on PATH (is Slurm installed?)") from exc
    except subprocess.TimeoutExpired as exc:
        raise SlurmUnavailableError(argv, None, _text(exc.stderr), f"no answer within {timeout:g} s") from exc


def _text(data: str | bytes | None) -> str:
    if isinstance(data, bytes):
        return data.decode(errors="replace")
    return data or ""


def _raise_for(argv: list[str], proc: subprocess.CompletedProcess) -> None:
    """Raise for a failed command: :class:`SlurmUnavailableError` if a daemon did not answer."""
    if proc.returncode == 0:
        return
    if any(marker in proc.stderr for marker in _UNAVAILABLE):
        raise SlurmUnavailableError(argv, proc.returncode, proc.stderr)
    raise SlurmError(argv, proc.returncode, proc.stderr)


class SlurmExecutor(Executor):
    """Jobs as Slurm batch jobs. The handle holds the job id (and cluster) and the step folder."""

    name = "slurm"

    def __init__(self, options: SlurmOptions | None = None) -> None:
        self.options = options or SlurmOptions()

    def submit(self, job: Job) -> Handle:
        """Write the batch script into the step folder and ``sbatch --parsable`` it."""
        script = Path(job.workdir) / WRAPPER_FILE
        script.write_text(render_batch_script(job, self.options))
        (Path(job.workdir) / EXIT_CODE_FILE).unlink(missing_ok=True)  # a leftover would be misread
        argv = ["sbatch", "--parsable", str(script.absolute())]
        proc = self._run(argv, cwd=Path(job.workdir))
        job_id, cluster = parse_sbatch(proc.stdout)
        handle: Handle = {"executor": self.name, "job_id": job_id, "workdir": str(Path(job.workdir).absolute())}
        if cluster:
            handle["cluster"] = cluster
        save_handle(Path(job.workdir), handle)
        return handle

    def status(self, handle: Handle) -> JobStatus:
        """``scontrol`` while slurmctld knows the job, then ``sacct``; see :func:`status_from_record`.

        A job Slurm will never start (e.g. its dependency failed) is reported failed and
        cancelled, so that it does not sit in the queue for ever.
        """
        workdir = Path(handle["workdir"])
        record = self.query(handle)
        if record is not None and record.state == "PENDING" and record.reason in NEVER_STARTS:
            self._run(["scancel", *self._cluster_args(handle), record.job_id])
        cancel_requested = bool(handle.get("cancel_requested") or (load_handle(workdir) or {}).get("cancel_requested"))
        return status_from_record(record, read_exit_code(workdir), cancel_requested=cancel_requested)

    def cancel(self, handle: Handle) -> None:
        """``scancel`` the job (a no-op for a finished one) and note in the handle, and in the
        saved copy in the step folder, that we asked. Slurm stops the job asynchronously."""
        self._run(["scancel", *self._cluster_args(handle), str(handle["job_id"])])
        handle["cancel_requested"] = True
        workdir = Path(handle["workdir"])
        if workdir.is_dir():
            save_handle(workdir, handle)

    def query(self, handle: Handle) -> SlurmRecord | None:
        """Slurm's record of the job, or ``None`` when neither slurmctld nor sacct has it."""
        job_id = str(handle["job_id"])
        cluster = self._cluster_args(handle)
        argv = ["scontrol", *cluster, "show", "job", "-o", job_id]
        proc = run_command(argv, timeout=self.options.command_timeout)
        if proc.returncode == 0:
            record = parse_scontrol(proc.stdout, job_id)
            if record is not None:
                return record
        elif _INVALID_JOB not in proc.stderr:
            _raise_for(argv, proc)
        argv = ["sacct", *cluster, "-X", "-n", "-P", "-o", "JobID,State,ExitCode", "-j", job_id]
        proc = run_command(argv, timeout=self.options.command_timeout)
        if proc.returncode != 0 and _NO_ACCOUNTING in proc.stderr:
            return None
        _raise_for(argv, proc)
        return parse_sacct(proc.stdout, job_id)

    def _run(self, argv: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
        proc = run_command(argv, timeout=self.options.command_timeout, cwd=cwd)
        _raise_for(argv, proc)
        return proc

    @staticmethod
    def _cluster_args(handle: Handle) -> list[str]:
        return [f"--clusters={handle['cluster']}"] if handle.get("cluster") else []


# The name used in the design notes.
SlurmScheduler = SlurmExecutor
