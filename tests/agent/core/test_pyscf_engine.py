"""The PySCF engine end to end: real SCF calculations (STO-3G, small molecules) as jobs."""

from __future__ import annotations

import time

import pytest
from siestaflow_agent.engines.base import FailureClass, StepSpec
from siestaflow_agent.engines.pyscf_engine import PyscfEngine, build_input
from siestaflow_agent.schedulers.base import Job, JobState
from siestaflow_agent.schedulers.local import LocalExecutor

pytest.importorskip("pyscf")

H2 = {"species": ["H", "H"], "positions": [[0, 0, 0], [0, 0, 0.74]], "cell": None}
WATER = {"species": ["O", "H", "H"], "positions": [[0, 0, 0.1173], [0, 0.7572, -0.4692], [0, -0.7572, -0.4692]]}


def step(molecule, **options) -> StepSpec:
    return StepSpec(calculation_id=1, name="m", config={"options": {"basis": "sto-3g", **options}}, molecule=molecule)


def run(spec: StepSpec, workdir):
    engine = PyscfEngine()
    engine.prepare(spec, workdir)
    executor = LocalExecutor()
    handle = executor.submit(Job("pyscf", workdir, engine.command(spec, workdir, {})))
    deadline = time.monotonic() + 60
    while (status := executor.status(handle)).state is JobState.RUNNING:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return engine, status


def test_rhf_h2_energy_orbitals_and_history(tmp_path):
    engine, status = run(step(H2, method="RHF"), tmp_path)
    assert status.exit_code == 0, (tmp_path / "stderr.txt").read_text()
    assert engine.validate(tmp_path, status.exit_code).ok
    data = engine.extract(tmp_path)
    assert data["converged"] is True
    assert data["total_energy"] == pytest.approx(-1.11676, abs=1e-4)  # RHF/STO-3G H2 at 0.74 Å
    assert data["n_electrons"] == 2 and len(data["mo_energy"]) == 2
    assert data["homo"] < 0 < data["lumo"] and data["gap"] == pytest.approx(data["lumo"] - data["homo"])
    assert data["dipole_debye"] == pytest.approx([0, 0, 0], abs=1e-6)  # symmetric molecule
    assert data["scf_history"][-1] == pytest.approx(data["total_energy"])
    assert engine.progress(tmp_path)["energy"] == pytest.approx(data["total_energy"], abs=1e-8)
    assert engine.raw_files(tmp_path) == [tmp_path / "scf.chk"]


def test_rks_water_has_a_dipole_along_its_axis(tmp_path):
    engine, status = run(step(WATER, method="RKS", xc="lda,vwn"), tmp_path)
    data = engine.extract(tmp_path)
    assert engine.validate(tmp_path, status.exit_code).ok
    assert data["xc"] == "lda,vwn" and data["n_electrons"] == 10
    assert -76 < data["total_energy"] < -74
    dx, dy, dz = data["dipole_debye"]
    assert abs(dx) < 1e-3 and abs(dy) < 1e-3 and abs(dz) > 1  # water's dipole lies on its C2 axis


def test_an_unconverged_scf_fails_validation(tmp_path):
    engine, status = run(step(WATER, method="RHF", max_cycle=1, conv_tol=1e-12), tmp_path)
    assert status.exit_code == 0  # the program ran fine; PySCF says it did not converge
    verdict = engine.validate(tmp_path, status.exit_code)
    assert (verdict.ok, verdict.failure_class) == (False, FailureClass.SCF_NOT_CONVERGED)


def test_a_crashing_run_is_reported_with_its_error(tmp_path):
    engine, status = run(step(H2, basis="no-such-basis"), tmp_path)
    verdict = engine.validate(tmp_path, status.exit_code)
    assert status.exit_code != 0
    assert (verdict.ok, verdict.failure_class) == (False, FailureClass.ABORTED)
    assert verdict.reason  # the end of stderr


def test_a_chain_parameter_overrides_an_option():
    spec = StepSpec(calculation_id=1, name="m", config={"options": {"charge": 0}}, molecule=H2,
                    parameter="charge", value=1)
    assert build_input(spec)["charge"] == 1


@pytest.mark.parametrize(("config", "molecule", "message"), [
    ({"options": {"method": "CCSD"}}, H2, "method"),
    ({"options": {"charge": "plus one"}}, H2, "charge"),
    ({"options": {}}, {"species": ["H"], "positions": []}, "molecule"),
])
def test_bad_inputs_are_refused_before_running(config, molecule, message):
    with pytest.raises(ValueError, match=message):
        build_input(StepSpec(calculation_id=1, name="m", config=config, molecule=molecule))
