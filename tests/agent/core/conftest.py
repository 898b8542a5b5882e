"""Fixtures of the agent core tests: the fake API server, configurations, a tiny real program."""

from __future__ import annotations

import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from siestaflow_agent import config as config_module
from siestaflow_agent.client import Client
from siestaflow_agent.config import AgentConfig
from siestaflow_agent.loop import Agent
from siestaflow_agent.schedulers.local import LocalExecutor

from .fake_agent_api import FakeAgentApi

KEY = "test-key"

# A real little program: reads input.txt, prints progress, writes a raw file, a restart file
# (carried to the next chain step) and results.json; appends one line per run to a log.
PROGRAM = textwrap.dedent('''
    import json, os, sys, time
    values = dict(line.split(" = ", 1) for line in open(sys.argv[1]).read().splitlines() if " = " in line)
    with open(values["runslog"], "a") as log:
        log.write(f"{values['calc']} {values['step']} {os.getcwd()}\\n")
    carried = open("state.restart").read() if os.path.exists("state.restart") else None
    x = float(values["x"]) + float(values["value"] or 0)
    for i in range(1, 4):
        print(f"iter {i} E = {-x * i:.3f}", flush=True)
        time.sleep(float(values["sleep"]) / 3)
    if values["fail"] in ("yes", f"step-{values['step']}"):
        print("ERROR: did not converge", flush=True)
        sys.exit(3)
    open("scratch.bin", "wb").write(b"0" * 65536)
    open("state.restart", "w").write(f"restart of step {values['step']}")
    json.dump({"carried": carried, "x": x}, open("results.json", "w"))
    print(f"energy = {-x * 3:.3f}")
    print("DONE")
''')


@pytest.fixture
def api() -> Iterator[FakeAgentApi]:
    server = FakeAgentApi(KEY).start()
    server.settings["heartbeat_interval"] = 0.05  # the agent adopts the server's interval
    yield server
    server.stop()


@pytest.fixture
def program(tmp_path: Path) -> dict[str, Any]:
    """The ``[programs.toy]`` table of the tiny program."""
    script = tmp_path / "toy.py"
    script.write_text(PROGRAM)
    return {
        "command": f"{sys.executable} {script} input.txt",
        "inputs": {"input.txt": "x = $x\nvalue = $value\nstep = $step\ncalc = $calculation_id\n"
                                "sleep = $sleep\nfail = $fail\nrunslog = $runslog\n"},
        "success": "^DONE",
        "failure": [{"pattern": "ERROR: (?P<reason>.*)", "class": "scf_not_converged"}],
        "extract": [r"energy = (?P<energy>\S+)"],
        "progress": r"iter (?P<scf_iteration>\d+) E = (?P<energy>\S+)",
        "results_json": "results.json",
        "raw": ["*.bin"],
    }


@pytest.fixture
def make_config(tmp_path: Path, api: FakeAgentApi, program: dict[str, Any]) -> Callable[..., AgentConfig]:
    def make(**overrides: Any) -> AgentConfig:
        raw = {"api_url": api.url, "api_key": KEY, "work_dir": str(tmp_path / "work"),
               "heartbeat_interval": 0.05, "poll_interval": 0.02, "claim_wait": 0, "max_concurrent": 2,
               "request_timeout": 5, "programs": {"toy": program}, **overrides}
        return config_module.build(raw)

    return make


@pytest.fixture
def make_agent(make_config: Callable[..., AgentConfig]) -> Iterator[Callable[..., Agent]]:
    agents: list[Agent] = []

    def make(config: AgentConfig | None = None, **overrides: Any) -> Agent:
        config = config or make_config(**overrides)
        client = Client(config.api_url, config.api_key, timeout=2, retries=0)
        agent = Agent(config, client, LocalExecutor(kill_grace=2))
        agents.append(agent)
        return agent

    yield make
    for agent in agents:
        agent.close()  # idempotent: run() closes too


def toy_spec(calc_id: int, tmp_path: Path, *, values: list[Any] | None = None, carry: list[str] | None = None,
             sleep: float = 0.0, fail: str = "no", **extra: Any) -> dict[str, Any]:
    """A calculation for the tiny program (a chain if ``values`` is given)."""
    chain = {"parameter": "value", "unit": "", "values": values, "carry": carry or []} if values else None
    options = {"x": 1.5, "sleep": sleep, "fail": fail, "runslog": str(tmp_path / "runs.log")}
    return {"id": calc_id, "name": f"toy {calc_id}", "engine": "command", "attempt": 1,
            "config": {"program": "toy", "options": options}, "chain": chain, **extra}


def runs_of(tmp_path: Path) -> list[str]:
    """The lines the tiny program appended, one per run."""
    path = tmp_path / "runs.log"
    return path.read_text().splitlines() if path.exists() else []


def run_to_end(agent: Agent, api: FakeAgentApi, *calc_ids: int, timeout: float = 20.0) -> None:
    """Tick until the server has each calculation in a final state and the agent closed them."""
    final = {"succeeded", "failed", "cancelled"}
    tick_until(agent, lambda: all(api.state_of(i) in final for i in calc_ids), timeout)
    tick_until(agent, lambda: not agent.state.open_runs(), timeout)


def tick_until(agent: Agent, condition: Callable[[], bool], timeout: float = 15.0) -> None:
    """Tick ``agent`` until ``condition()`` holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        agent.tick()
        time.sleep(0.02)


def wait_for(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    """Wait (without ticking) until ``condition()`` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)
