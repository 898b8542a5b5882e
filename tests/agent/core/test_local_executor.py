"""The local executor with real processes: output files, exit codes, cancel, re-attach."""

from __future__ import annotations

import json
import os
import sys
import time

import psutil
import pytest
from siestaflow_agent.engines.base import FailureClass
from siestaflow_agent.schedulers.base import (
    EXIT_CODE_FILE,
    HANDLE_FILE,
    STDERR_FILE,
    STDOUT_FILE,
    Job,
    JobState,
    load_handle,
    render_wrapper,
)
from siestaflow_agent.schedulers.local import LocalExecutor

PY = sys.executable


def wait_finished(executor, handle, timeout=10.0):
    deadline = time.monotonic() + timeout
    while (status := executor.status(handle)).state is JobState.RUNNING:
        assert time.monotonic() < deadline, "job did not finish"
        time.sleep(0.02)
    return status


def wait_for_file(path, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not path.exists() or not path.read_text().strip():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)
    return path.read_text()


def test_it_runs_the_commands_in_order_with_output_in_the_step_folder(tmp_path):
    executor = LocalExecutor()
    job = Job("t", tmp_path, [[PY, "-c", "print('first')"], [PY, "-c", "import sys; print('second'); "
                                                                    "print('oops', file=sys.stderr)"]])
    status = wait_finished(executor, executor.submit(job))
    assert (status.state, status.exit_code) == (JobState.COMPLETED, 0)
    assert (tmp_path / STDOUT_FILE).read_text() == "first\nsecond\n"
    assert (tmp_path / STDERR_FILE).read_text() == "oops\n"
    assert (tmp_path / EXIT_CODE_FILE).read_text().strip() == "0"


def test_the_first_failing_command_stops_the_job(tmp_path):
    executor = LocalExecutor()
    job = Job("t", tmp_path, [[PY, "-c", "raise SystemExit(4)"], [PY, "-c", "open('ran', 'w')"]])
    status = wait_finished(executor, executor.submit(job))
    assert (status.state, status.exit_code) == (JobState.FAILED, 4)
    assert not (tmp_path / "ran").exists()


def test_redirections_apply_per_command(tmp_path):
    (tmp_path / "in.fdf").write_text("from stdin\n")
    executor = LocalExecutor()
    job = Job("t", tmp_path, [[PY, "-c", "import sys; print(sys.stdin.read().strip())"], [PY, "-c", "print(2)"]],
              redirects=(("in.fdf", "first.out"), (None, None)))
    wait_finished(executor, executor.submit(job))
    assert (tmp_path / "first.out").read_text() == "from stdin\n"
    assert (tmp_path / STDOUT_FILE).read_text() == "2\n"


def test_arguments_are_quoted_not_interpreted_by_the_shell(tmp_path):
    executor = LocalExecutor()
    job = Job("t", tmp_path, [[PY, "-c", "import sys; print(sys.argv[1])", "$(touch pwned); `x` 'q'"]])
    wait_finished(executor, executor.submit(job))
    assert (tmp_path / STDOUT_FILE).read_text() == "$(touch pwned); `x` 'q'\n"
    assert not (tmp_path / "pwned").exists()


def test_the_handle_is_json_and_saved_in_the_step_folder(tmp_path):
    executor = LocalExecutor()
    handle = executor.submit(Job("t", tmp_path, [[PY, "-c", "pass"]]))
    assert json.loads(json.dumps(handle)) == handle
    assert load_handle(tmp_path) == handle and (tmp_path / HANDLE_FILE).exists()
    wait_finished(executor, handle)


def test_a_new_executor_follows_a_job_from_its_saved_handle(tmp_path):
    first = LocalExecutor()
    gate = tmp_path / "go"
    script = f"import os, time\nwhile not os.path.exists({str(gate)!r}): time.sleep(0.02)\nraise SystemExit(7)"
    handle = json.loads(json.dumps(first.submit(Job("t", tmp_path, [[PY, "-c", script]]))))
    del first  # the agent restarted: no Popen object any more

    second = LocalExecutor()
    assert second.status(handle).state is JobState.RUNNING
    gate.touch()
    status = wait_finished(second, handle)
    assert (status.state, status.exit_code) == (JobState.FAILED, 7)


def test_a_reused_pid_is_not_mistaken_for_the_job(tmp_path):
    handle = {"executor": "local", "pid": os.getpid(), "pgid": os.getpid(), "create_time": 1.0,
              "workdir": str(tmp_path)}
    status = LocalExecutor().status(handle)  # our own pid, but started at another time
    assert status.state is JobState.FAILED and status.failure_class is FailureClass.KILLED


def test_cancel_kills_the_whole_process_group(tmp_path):
    executor = LocalExecutor(kill_grace=1)
    # the job starts a grandchild that ignores SIGTERM, and records its pid
    script = ("import os, signal, subprocess, sys, time\n"
              "child = subprocess.Popen([sys.executable, '-c', 'import signal, time; "
              "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)'])\n"
              "open('child.pid', 'w').write(str(child.pid))\n"
              "time.sleep(60)\n")
    handle = executor.submit(Job("t", tmp_path, [[PY, "-c", script]]))
    child_pid = int(wait_for_file(tmp_path / "child.pid"))
    time.sleep(0.2)  # let the grandchild install its SIGTERM handler
    started = time.monotonic()
    executor.cancel(handle)
    assert time.monotonic() - started < 4
    for pid in (handle["pid"], child_pid):
        assert not _alive(pid), f"process {pid} survived the cancel"
    status = executor.status(handle)
    assert status.state is JobState.FAILED and status.failure_class is FailureClass.KILLED
    executor.cancel(handle)  # idempotent


def test_cancel_from_a_new_executor_works_too(tmp_path):
    handle = LocalExecutor().submit(Job("t", tmp_path, [[PY, "-c", "import time; time.sleep(60)"]]))
    LocalExecutor(kill_grace=2).cancel(json.loads(json.dumps(handle)))
    assert not _alive(handle["pid"])


def test_stopping_the_agent_does_not_stop_the_job(tmp_path):
    """The job runs in its own session: signals to the agent's process group miss it."""
    handle = LocalExecutor().submit(Job("t", tmp_path, [[PY, "-c", "import time; time.sleep(60)"]]))
    try:
        assert os.getpgid(handle["pid"]) != os.getpgid(0)
        assert os.getsid(handle["pid"]) != os.getsid(0)
    finally:
        LocalExecutor(kill_grace=1).cancel(handle)


@pytest.mark.parametrize(("code", "failure"), [(137, FailureClass.KILLED), (1, None)])
def test_exit_codes_map_to_failure_classes(tmp_path, code, failure):
    executor = LocalExecutor()
    status = wait_finished(executor, executor.submit(Job("t", tmp_path, [["sh", "-c", f"exit {code}"]])))
    assert (status.exit_code, status.failure_class) == (code, failure)


def test_the_wrapper_script_is_plain_sh(tmp_path):
    text = render_wrapper(Job("t", tmp_path, [["echo", "a b"]], stdin="in.txt"))
    assert text.startswith("#!/bin/sh\n")
    assert "echo 'a b' < in.txt || code=$?" in text


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
