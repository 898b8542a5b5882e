"""The stdout parser against the MANIFEST values of every SIESTA/TranSIESTA output."""

from __future__ import annotations

import pytest
from siesta_manifest import outputs, siesta_outputs
from siestaflow_agent.engines.siesta.stdout import parse_stdout

CASES = siesta_outputs()
IDS = [f"{c['case']}/{c['file']}" for c in CASES]


def with_field(key: str) -> list:
    """The cases whose manifest entry has ``key``, as named pytest params."""
    return [pytest.param(c, id=f"{c['case']}/{c['file']}") for c in CASES if key in c]


def test_it_reads_every_output_of_the_manifest():
    # 23 cases; au100 has 3 SIESTA + 2 TBtrans outputs, graphene TS 2 + 1.
    assert len({o["case"] for o in outputs()}) == 23
    assert len(outputs()) == 29
    assert len(CASES) == 25
    assert all(c["path"].is_file() for c in outputs())


@pytest.fixture(scope="module")
def parsed():
    return {c["file"] + c["case"]: parse_stdout(c["path"]) for c in CASES}


def _out(parsed, case):
    return parsed[case["file"] + case["case"]]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_it_finds_program_and_version(parsed, case):
    out = _out(parsed, case)
    assert (out.program, out.version) == ("siesta", case["version"])


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_it_finds_system_size_and_dynamics(parsed, case):
    out = _out(parsed, case)
    assert (out.n_atoms, out.n_orbitals) == (case["n_atoms"], case["n_orbitals"])
    assert out.dynamics == case["dynamics"]
    if "spin" in case:
        assert out.spin_configuration == case["spin"]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_it_finds_final_energies(parsed, case):
    out = _out(parsed, case)
    assert out.total_energy == pytest.approx(case["total"]) if case["total"] else (
        out.total_energy is None)
    if case["ts_total"] is not None:
        assert out.ts_final_energy["Total"] == pytest.approx(case["ts_total"])
    else:
        assert "Total" not in out.ts_final_energy
    assert out.fermi_energy == pytest.approx(case["fermi"])
    assert ("Fermi" not in out.final_energy) == case["fermi_from_scf"]
    if "free" in case:
        assert out.free_energy == pytest.approx(case["free"])


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_it_counts_scf_lines_cycles_and_iterations(parsed, case):
    out = _out(parsed, case)
    assert out.n_scf_lines == case["n_scf_lines"]
    assert out.n_ts_scf_lines == case["n_ts_scf_lines"]
    scf_cycles = [c for c in out.cycle_summaries if c["kind"] == "scf"]
    ts_cycles = [c for c in out.cycle_summaries if c["kind"] == "ts-scf"]
    # the manifest counts one cycle per geometry step (TranSIESTA: SIESTA part + TS part)
    assert max(len(scf_cycles), len(ts_cycles)) == case["n_cycles"]
    assert out.last_cycle.last_iteration == case["last_iteration"]
    assert out.n_converged_lines == case["n_converged_lines"]
    assert out.max_scf_iterations == case["max_scf_iterations"]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_it_decides_scf_convergence_per_cycle(parsed, case):
    out = _out(parsed, case)
    not_converged = "failure_markers" in case and "converge" in case["failure_markers"]
    assert bool(out.unconverged_cycles()) == not_converged
    if not_converged:
        assert out.last_cycle.converged is False
    else:
        assert all(c["converged"] is True for c in out.cycle_summaries)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_it_finds_forces(parsed, case):
    out = _out(parsed, case)
    if case.get("max_force") is None:
        assert out.max_force is None
        return
    assert out.max_force == pytest.approx(case["max_force"])
    if case.get("first_max_force") is not None:
        assert out.first_max_force == pytest.approx(case["first_max_force"])
    if "max_atom_force" in case:
        assert out.max_atom_force == pytest.approx(case["max_atom_force"], abs=1e-6)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_it_finds_completion_markers(parsed, case):
    out = _out(parsed, case)
    assert out.end_of_run == case["end_of_run"]
    assert out.job_completed == case["job_completed"]
    aborted = "Stopping Program" in case.get("failure_markers", "")
    assert out.aborted == aborted
    assert out.completed == (case["end_of_run"] and not aborted)


@pytest.mark.parametrize("case", with_field("geometry_steps"))
def test_it_follows_geometry_steps(parsed, case):
    out = _out(parsed, case)
    assert len(out.steps) == case["geometry_steps"]
    if case.get("max_moves") is not None:
        assert out.max_moves == case["max_moves"]
    if case.get("force_tol"):
        value, unit = case["force_tol"].split(None, 1)
        assert (out.force_tolerance, out.force_tolerance_unit) == (float(value), unit.strip())
    if "coordinates_header" in case:
        assert out.coordinates_header.startswith(case["coordinates_header"])
        assert out.relaxed == case["coordinates_header"].startswith("outcoor: Relaxed")
        assert len(out.positions) == len(out.species) == case["n_atoms"]
    steps_with_force = [s for s in out.steps if s.max_force is not None]
    assert steps_with_force[-1].max_force == pytest.approx(case["max_force"])


@pytest.mark.parametrize("case", with_field("spin_moment"))
def test_it_finds_the_last_spin_moment(parsed, case):
    assert _out(parsed, case).spin_moment == pytest.approx(case["spin_moment"])


@pytest.mark.parametrize("case", with_field("ts_voltage"))
def test_it_finds_the_transiesta_bias(parsed, case):
    out = _out(parsed, case)
    assert out.transiesta
    assert out.ts_voltage == pytest.approx(case["ts_voltage"])
