"""The command line: ``check`` against the fake server, ``run`` stopped by SIGTERM and restarted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from siestaflow_agent import cli, shutdown

from .conftest import KEY, runs_of, toy_spec, wait_for

AGENT_PATH = str(Path(cli.__file__).parents[1])


def toml_value(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value)  # JSON string escapes are valid in TOML basic strings
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    return repr(value)


def write_config(tmp_path: Path, api, program: dict[str, Any], **top: Any) -> Path:
    values = {"api_url": api.url, "api_key": KEY, "work_dir": str(tmp_path / "work"), "poll_interval": 0.05,
              "heartbeat_interval": 0.05, "claim_wait": 0, **top}
    lines = [f"{key} = {toml_value(value)}" for key, value in values.items()]
    lines += ["", "[programs.toy]"] + [f"{key} = {toml_value(value)}" for key, value in program.items()]
    path = tmp_path / "agent.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def start_agent(config: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": AGENT_PATH}
    env.pop("SIESTAFLOW_AGENT_API_KEY", None)
    return subprocess.Popen([sys.executable, "-m", "siestaflow_agent.cli", "run", "-c", str(config)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_check_passes_with_a_good_setup(api, program, tmp_path, capsys):
    assert cli.main(["check", "-c", str(write_config(tmp_path, api, program))]) == 0
    out = capsys.readouterr().out
    assert "ok: API reachable with the key" in out and "all checks passed" in out


def test_check_reports_a_rejected_key(api, program, tmp_path, capsys):
    assert cli.main(["check", "-c", str(write_config(tmp_path, api, program, api_key="wrong"))]) == 1
    assert "problem: api_key rejected by the server (401)" in capsys.readouterr().out
    assert not api.heartbeats  # check never sends a heartbeat


def test_check_reports_an_unreachable_server(api, program, tmp_path, capsys):
    config = write_config(tmp_path, api, program)
    api.stop()
    assert cli.main(["check", "-c", str(config)]) == 1
    assert "problem: api_url: cannot reach the server" in capsys.readouterr().out


def test_check_reports_missing_engine_executables(api, program, tmp_path, capsys):
    path = write_config(tmp_path, api, program)
    path.write_text(path.read_text() + '\n[engines]\nsiesta = "mpirun -np {ntasks} siesta-not-installed"\n')
    assert cli.main(["check", "-c", str(path)]) == 1
    assert "problem: engines.siesta: 'siesta-not-installed' not found on PATH" in capsys.readouterr().out


@pytest.mark.parametrize(("template", "programs"), [
    ("mpirun -np {ntasks} siesta", ["mpirun", "siesta"]),
    ("mpirun --bind-to core -np 4 siesta", ["mpirun", "siesta"]),
    ("env OMP_NUM_THREADS=2 tbtrans", ["env", "tbtrans"]),
    ("/opt/siesta/bin/siesta", ["/opt/siesta/bin/siesta"]),
    ("{python} -m siestaflow_agent.engines.pyscf_run", [sys.executable]),
])
def test_executables_are_found_in_command_templates(template, programs):
    assert cli.executables(template) == programs


def test_a_signal_sets_the_stop_event():
    stop, previous = shutdown.install(threading.Event())
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.wait(2)
    finally:
        shutdown.restore(previous)
    assert signal.getsignal(signal.SIGTERM) is previous[signal.SIGTERM]


def test_sigterm_stops_the_agent_cleanly_and_the_next_one_finishes_the_job(api, program, tmp_path):
    api.add_calculation(toy_spec(1, tmp_path, sleep=1.5))
    config = write_config(tmp_path, api, program)
    agent = start_agent(config)
    try:
        wait_for(lambda: "running" in api.states(1))
        agent.send_signal(signal.SIGTERM)
        _, err = agent.communicate(timeout=10)
    finally:
        agent.kill()
    assert agent.returncode == 0, err
    assert "SIGTERM received" in err and "agent stopped" in err

    step = tmp_path / "work" / "calc-1" / "attempt-1" / "step-0"
    wait_for(lambda: (step / "exit_code").exists())  # the job outlived the agent
    assert api.state_of(1) == "running"

    agent = start_agent(config)
    try:
        wait_for(lambda: api.state_of(1) == "succeeded")
        agent.send_signal(signal.SIGINT)
        agent.communicate(timeout=10)
    finally:
        agent.kill()
    assert agent.returncode == 0
    assert len(runs_of(tmp_path)) == 1
    assert [c["ids"] for c in api.claims if c["ids"]] == [[1]]
    assert api.duplicates == [] and api.seqs(1) == list(range(1, len(api.seqs(1)) + 1))
