"""The command engine end to end: a real tiny program through the local executor."""

from __future__ import annotations

import json
import sys
import time

import pytest
from siestaflow_agent.engines import REGISTRY, command
from siestaflow_agent.engines.base import FailureClass, StepSpec
from siestaflow_agent.engines.command import CommandEngine, parse_program, template_values
from siestaflow_agent.schedulers import base as scheduler_base
from siestaflow_agent.schedulers.base import Job, JobState
from siestaflow_agent.schedulers.local import LocalExecutor


@pytest.fixture
def engine(program):
    return CommandEngine({"toy": parse_program("toy", program)})


def spec(tmp_path, **options) -> StepSpec:
    values = {"x": 2, "sleep": 0, "fail": "no", "runslog": str(tmp_path / "runs.log"), **options}
    return StepSpec(calculation_id=5, name="toy", config={"program": "toy", "options": values},
                    molecule={"species": ["H", "H"], "positions": [[0, 0, 0], [0, 0, 0.74]]},
                    step_index=1, step_count=3, parameter="value", value=0.5)


def run(engine, step, workdir):
    engine.prepare(step, workdir)
    executor = LocalExecutor()
    handle = executor.submit(Job("toy", workdir, engine.command(step, workdir, {})))
    while (status := executor.status(handle)).state is JobState.RUNNING:
        time.sleep(0.02)
    return status


def test_it_is_registered():
    assert REGISTRY["command"] is CommandEngine


def test_it_renders_inputs_runs_validates_and_extracts(engine, tmp_path):
    step = spec(tmp_path)
    status = run(engine, step, tmp_path)
    assert (tmp_path / "input.txt").read_text().splitlines()[:3] == ["x = 2", "value = 0.5", "step = 1"]
    assert status.exit_code == 0
    assert engine.validate(tmp_path, status.exit_code).ok
    data = engine.extract(tmp_path)
    assert data == {"energy": -7.5, "carried": None, "x": 2.5}  # regex value plus results.json
    assert engine.progress(tmp_path) == {"scf_iteration": 3, "energy": -7.5}
    assert engine.raw_files(tmp_path) == [tmp_path / "scratch.bin"]


def test_a_failure_pattern_sets_the_class_and_reason(engine, tmp_path):
    status = run(engine, spec(tmp_path, fail="yes"), tmp_path)
    verdict = engine.validate(tmp_path, status.exit_code)
    assert not verdict.ok
    assert verdict.failure_class is FailureClass.SCF_NOT_CONVERGED
    assert verdict.reason == "did not converge"


def test_a_missing_success_marker_is_missing_output(engine, tmp_path):
    (tmp_path / "program.json").write_text(json.dumps({"program": "toy"}))
    (tmp_path / "stdout.txt").write_text("iter 1 E = -1\n")
    verdict = engine.validate(tmp_path, 0)
    assert (verdict.ok, verdict.failure_class) == (False, FailureClass.MISSING_OUTPUT)


def test_a_nonzero_exit_without_a_failure_pattern_is_aborted(engine, tmp_path):
    (tmp_path / "program.json").write_text(json.dumps({"program": "toy"}))
    (tmp_path / "stdout.txt").write_text("DONE\n")
    verdict = engine.validate(tmp_path, 2)
    assert (verdict.ok, verdict.failure_class) == (False, FailureClass.ABORTED)


def test_a_missing_template_value_fails_preparation(engine, tmp_path):
    step = spec(tmp_path)
    del step.config["options"]["sleep"]
    with pytest.raises(ValueError, match=r"\$sleep"):
        engine.prepare(step, tmp_path)


def test_an_unknown_program_is_refused(engine, tmp_path):
    step = StepSpec(calculation_id=1, name="x", config={"program": "rm-rf"})
    with pytest.raises(ValueError, match="unknown program 'rm-rf'"):
        engine.prepare(step, tmp_path)


def test_server_values_stay_single_words(tmp_path):
    program = parse_program("echo", {"command": f"{sys.executable} -c 'import sys; print(sys.argv[1:])' {{label}}"})
    step = StepSpec(calculation_id=1, name="x", config={"program": "echo", "options": {"label": "a; rm -rf /"}})
    [argv] = CommandEngine({"echo": program}).command(step, tmp_path, {})
    assert argv[-1] == "a; rm -rf /"


def test_template_values_include_the_molecule_and_the_chain_parameter(tmp_path):
    values = template_values(spec(tmp_path))
    assert values["natoms"] == 2 and values["xyz"].splitlines()[1] == "H 0 0 0.74"
    assert (values["parameter"], values["value"], values["steps"]) == ("value", 0.5, 3)


def test_the_engine_reads_the_stdout_file_the_executors_write():
    assert command.STDOUT_FILE == scheduler_base.STDOUT_FILE
