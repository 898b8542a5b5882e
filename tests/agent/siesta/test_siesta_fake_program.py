"""The test double replays real runs; the engine then validates and extracts them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from siesta_manifest import DATA
from siestaflow_agent.engines.base import FailureClass, StepSpec
from siestaflow_agent.engines.siesta import SiestaEngine

AGENT = Path(__file__).resolve().parents[3] / "agent"
FAKE = f"{sys.executable} -m siestaflow_agent.testing.fake_siesta"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(AGENT), env.get("PYTHONPATH")]))
    return env


def _spec(case: Path, fdf: str, programs: list[str]) -> StepSpec:
    return StepSpec(calculation_id=1, name="replay",
                    config={"fdf": fdf, "options": {"programs": programs}})


def _templates(case: Path, extra: str = "") -> dict[str, str]:
    return {"siesta": f"{FAKE} --case {case} --program siesta {extra}",
            "tbtrans": f"{FAKE} --case {case} --program tbtrans {extra}"}


def _execute(engine: SiestaEngine, spec: StepSpec, workdir: Path, templates) -> int:
    """What the agent's executor does: each argv with stdin/stdout redirected, no shell."""
    code = 0
    for run in engine.invocations(spec, workdir, templates):
        with open(workdir / run.stdin, "rb") as stdin, open(workdir / run.stdout, "wb") as out:
            code = subprocess.run(run.argv, stdin=stdin, stdout=out, cwd=workdir,
                                  env=_env(), check=False).returncode
        if code:
            break
    return code


def _replay(tmp_path, case_name, fdf_name=None, programs=("siesta",), extra=""):
    case = DATA / case_name
    fdf = (case / fdf_name).read_text() if fdf_name else "SystemLabel replay\n"
    engine, spec = SiestaEngine(), _spec(case, fdf, list(programs))
    engine.prepare(spec, tmp_path)
    code = _execute(engine, spec, tmp_path, _templates(case, extra))
    return engine, code


def test_a_replayed_single_point_is_valid_and_extracted(tmp_path):
    engine, code = _replay(tmp_path, "h2o_scf_v4.1", "h2o.fdf")
    assert code == 0 and (tmp_path / "h2o.out").is_file()
    assert engine.validate(tmp_path, code).ok
    data = engine.extract(tmp_path)
    assert data["energies"]["total"] == pytest.approx(-465.83915)  # MANIFEST
    assert data["scf"]["cycles"][-1]["iterations"] == 12


def test_unconverged_scf_fails_although_the_program_exits_zero(tmp_path):
    engine, code = _replay(tmp_path, "fe_cluster_noncol_gga_scf_not_conv_v4.1",
                           "fe_clust_noncollinear-gga.fdf")
    assert code == 0
    verdict = engine.validate(tmp_path, code)
    assert verdict.failure_class is FailureClass.SCF_NOT_CONVERGED


def test_an_aborted_run_exits_non_zero_and_copies_messages(tmp_path):
    engine, code = _replay(tmp_path, "si_scf_not_conv_abort_max1.0")
    assert code == 1 and (tmp_path / "MESSAGES").is_file()
    verdict = engine.validate(tmp_path, code)
    assert verdict.failure_class is FailureClass.SCF_NOT_CONVERGED
    assert verdict.details["siesta"]["messages_fatal"]


def test_a_transiesta_then_tbtrans_step(tmp_path):
    engine, code = _replay(tmp_path, "graphene_transiesta_tbtrans_v5.1", "graphene.fdf",
                           programs=("siesta", "tbtrans"))
    assert code == 0 and (tmp_path / "tbt_graphene.out").is_file()
    assert engine.validate(tmp_path, code).ok
    transport = engine.extract(tmp_path)["transport"]
    assert [(c["from"], c["to"], c["current"]) for c in transport["currents"]] == [
        ("Left", "Right", 0.0), ("Right", "Left", 0.0)]
    assert {t["suffix"] for t in transport["transmission"]} >= {"Left-Right", "Right-Left"}


def test_a_given_exit_code_overrides_the_recorded_one(tmp_path):
    engine, code = _replay(tmp_path, "h2o_scf_v4.1", "h2o.fdf", extra="--exit-code 3")
    assert code == 3
    assert engine.validate(tmp_path, code).details["exit_code"] == 3


def test_a_slow_replay_shows_progress_while_running(tmp_path):
    case = DATA / "h2o_scf_v4.1"
    engine = SiestaEngine()
    spec = _spec(case, (case / "h2o.fdf").read_text(), ["siesta"])
    engine.prepare(spec, tmp_path)
    [run] = engine.invocations(spec, tmp_path, _templates(case, "--sleep 2"))
    seen_running = False
    with open(tmp_path / run.stdin, "rb") as stdin, open(tmp_path / run.stdout, "wb") as out:
        process = subprocess.Popen(run.argv, stdin=stdin, stdout=out, cwd=tmp_path, env=_env())
        while process.poll() is None:
            info = engine.progress(tmp_path)
            if info and info.get("scf_iteration") and not info["finished"]:
                seen_running = True
                assert 1 <= info["scf_iteration"] <= 12
            time.sleep(0.05)
    assert seen_running
    assert engine.progress(tmp_path)["finished"] is True
    assert engine.validate(tmp_path, process.returncode).ok
