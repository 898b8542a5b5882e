"""Format quirks of SIESTA stdout: run-together columns, old markers, truncation, bad bytes."""

from __future__ import annotations

import json
import math

import pytest
from siesta_manifest import DATA, siesta_outputs
from siestaflow_agent.engines.siesta.fortran import split_numbers
from siestaflow_agent.engines.siesta.progress import progress
from siestaflow_agent.engines.siesta.stdout import parse_lines, parse_stdout

AU_025 = DATA / "au100_transiesta_bias_0_0.25V_v4.1" / "V0.25" / "au_100.out"
AU_000 = DATA / "au100_transiesta_bias_0_0.25V_v4.1" / "V0.00" / "au_100.out"
WATER50 = DATA / "water50_chess_scf_not_conv_trunk623" / "CheSS.out"
GRAPHENE_TS = DATA / "graphene_transiesta_tbtrans_v5.1" / "RUN.out"
H2O_40 = DATA / "h2o_scf_v4.0" / "h2o.out"
H2O_DIPOLE = DATA / "h2o_dipole_scf_v5.1" / "RUN.out"


def test_it_splits_run_together_fixed_width_columns():
    assert split_numbers("-0.887920170.113695") == [-0.88792, 170.113695]
    assert split_numbers("1.5-2.25 3") == [1.5, -2.25, 3.0]
    assert math.isnan(split_numbers("*******")[0])
    # plain columns (the quick path), and a line where one glued or Fortran-exponent token
    # sends the whole line the long way
    assert split_numbers("  1   -6845.857108  0.308685 -2.315723") == [1.0, -6845.857108, 0.308685, -2.315723]
    assert split_numbers("2 1.0D-3 -0.5") == [2.0, 0.001, -0.5]
    assert split_numbers("3 -0.887920170.113695 4.0") == [3.0, -0.88792, 170.113695, 4.0]
    with pytest.raises(ValueError):
        split_numbers("iscf Eharris(eV)")


def test_it_reads_the_run_together_scf_row_of_a_real_output():
    # au_100.out line 766: "scf:    2  ... 0.898333 -0.887920170.113695"
    out = parse_stdout(AU_025)
    siesta_cycle = next(c for c in out.cycles if c.kind == "scf")
    assert siesta_cycle.rows["iteration"][1] == 2
    assert siesta_cycle.rows["ef"][1] == pytest.approx(-0.887920)
    assert siesta_cycle.rows["dHmax"][1] == pytest.approx(170.113695)
    assert len(siesta_cycle.rows["iteration"]) == 36


def test_it_keeps_the_last_iteration_before_the_trunk_marker():
    out = parse_stdout(WATER50)
    cycle = out.last_cycle
    assert cycle.rows["iteration"] == list(range(1, 11))  # sisl drops the 10th
    assert cycle.rows["e_ks"][-1] == pytest.approx(-23158.192845)
    assert cycle.converged is False
    assert cycle.marker.startswith(":!: SCF did not converge")


def test_it_accepts_end_of_run_without_job_completed_only_for_trunk_builds(tmp_path):
    out = parse_stdout(WATER50)
    assert out.end_of_run and not out.job_completed and out.completed
    renamed = tmp_path / "CheSS.out"
    renamed.write_text(WATER50.read_text().replace("trunk-623", "v4.1-b4-351"))
    assert not parse_stdout(renamed).completed


def test_it_follows_min_scf_iterations_continuation():
    out = parse_stdout(GRAPHENE_TS)
    ts_cycles = [c for c in out.cycles if c.kind == "ts-scf"]
    assert len(ts_cycles) == 1
    assert ts_cycles[0].rows["iteration"] == [1, 2, 3]
    assert ts_cycles[0].converged is True
    assert out.n_converged_lines == 4


def test_a_cycle_cut_after_continued_is_not_converged():
    lines = GRAPHENE_TS.read_text().splitlines(keepends=True)
    cut = next(i for i, line in enumerate(lines) if "SCF cycle continued" in line)
    out = parse_lines(lines[: cut + 1])
    assert out.last_cycle.kind == "ts-scf"
    assert out.last_cycle.converged is None
    assert len(out.unconverged_cycles()) == 1


@pytest.mark.parametrize("path, siesta_total, ts_total", [
    (AU_000, -160530.652861, -177183.046083),
    (AU_025, -160530.612261, -177182.699389),
    (GRAPHENE_TS, -3879.07432, -5045.362049),
])
def test_it_keeps_transiesta_total_apart_from_siesta_total(path, siesta_total, ts_total):
    data = parse_stdout(path).to_dict()
    assert data["energies"]["total"] == pytest.approx(siesta_total)
    assert data["energies"]["ts_total"] == pytest.approx(ts_total)
    assert data["energies"]["components"]["Total"] == pytest.approx(siesta_total)


def test_it_reads_the_old_40_scf_format_and_fermi_from_the_last_row():
    out = parse_stdout(H2O_40)
    rows = out.last_cycle.rows
    assert rows["iteration"][-1] == 22
    assert rows["e_ks"][-1] == pytest.approx(-465.8376)
    assert rows["dHmax"] == [None] * 22
    assert "Fermi" not in out.final_energy
    assert out.fermi_energy == pytest.approx(-2.1598)


def test_it_survives_garbage_bytes_of_a_real_output():
    assert b"\x00" in H2O_DIPOLE.read_bytes()
    out = parse_stdout(H2O_DIPOLE)
    assert out.total_energy == pytest.approx(-950.957882)
    assert out.completed


def test_it_survives_injected_garbage_bytes(tmp_path):
    raw = (DATA / "h2o_scf_v4.1" / "h2o.out").read_bytes()
    middle = len(raw) // 2
    noisy = tmp_path / "noisy.out"
    noisy.write_bytes(raw[:middle] + b"\n\xff\xfe\x00\r\x80garbage\x9f\n" + raw[middle:])
    out = parse_stdout(noisy)
    assert out.total_energy == pytest.approx(-465.83915)
    assert out.completed


def test_a_file_cut_mid_scf_line_is_parsed_without_error(tmp_path):
    text = AU_025.read_text()
    cut = text.index("   scf:   12  -160530.358354") + 20  # inside the row
    truncated = tmp_path / "au_100.out"
    truncated.write_text(text[:cut])
    out = parse_stdout(truncated)
    assert out.last_cycle.rows["iteration"][-1] == 11  # the cut row is ignored
    assert out.last_cycle.converged is None
    assert not out.end_of_run and not out.aborted and not out.completed
    assert out.total_energy is None


@pytest.mark.parametrize("case", siesta_outputs(), ids=lambda c: f"{c['case']}/{c['file']}")
def test_the_extraction_is_strict_json(case):
    extracted = parse_stdout(case["path"]).to_dict()
    text = json.dumps(extracted, allow_nan=False)  # raises on NaN or infinity
    assert json.loads(text) == extracted  # nothing lost: only JSON types


def test_progress_reads_the_tail_of_a_growing_file(tmp_path):
    source = DATA / "sih_cg_relax_v4.1" / "sih.out"
    text = source.read_text()
    cut = text.index("Begin CG opt. move =      5")
    cut = text.index("   scf:    4", cut) + 90
    running = tmp_path / "sih.out"
    running.write_text(text[:cut])
    info = progress(running)
    assert info["geometry_kind"] == "CG" and info["geometry_step"] == 5
    assert info["scf_kind"] == "scf" and info["scf_iteration"] == 4
    assert info["energy"] < -6800 and info["finished"] is False
    assert progress(source)["finished"] is True
    assert progress(tmp_path / "absent.out") is None
