"""validate(): every corpus case gets the verdict its MANIFEST outcome describes."""

from __future__ import annotations

import shutil

import pytest
from siesta_manifest import DATA
from siestaflow_agent.engines.base import FailureClass
from siestaflow_agent.engines.siesta.layout import StepLayout, write_layout
from siestaflow_agent.engines.siesta.validate import validate

OK = None
# Expected verdict per case directory, from the "Outcome" lines of MANIFEST.md.
EXPECTED = {
    "au100_transiesta_bias_0_0.25V_v4.1/V0.00": OK,
    "au100_transiesta_bias_0_0.25V_v4.1/V0.25": OK,
    "au100_transiesta_bias_0_0.25V_v4.1/elec": OK,
    "benzene_cg_unrelaxed_v4.1": FailureClass.GEOMETRY_NOT_CONVERGED,
    "c60_tb_tbtrans_projection_v5.1": OK,
    "fe_bcc_spin_pdos_k_v5.0": OK,
    "fe_bcc_spin_v4.1": OK,
    "fe_cluster_noncol_gga_scf_not_conv_v4.1": FailureClass.SCF_NOT_CONVERGED,
    "fept_soc_scf_not_conv_trunk703": FailureClass.SCF_NOT_CONVERGED,
    "graphene_cg_unrelaxed_v5.1": FailureClass.GEOMETRY_NOT_CONVERGED,
    "graphene_spin_cg_charges_v5.1": FailureClass.GEOMETRY_NOT_CONVERGED,
    "graphene_transiesta_tbtrans_v5.1": OK,
    "graphene_transiesta_tbtrans_v5.1/electrode": OK,
    "graphite_varcell_cg_v4.1": OK,
    "h2o_broyden_relax_v4.0": OK,
    "h2o_dipole_scf_v5.1": OK,
    "h2o_scf_v4.0": OK,
    "h2o_scf_v4.1": OK,
    "si64_bulk_scf_v4.1": OK,
    "si_bandpoints_max1.0": OK,
    "si_bulk_pdos_k_v5.1": OK,
    "si_md_anneal_v4.1": OK,
    "si_scf_not_conv_abort_max1.0": FailureClass.SCF_NOT_CONVERGED,
    "sih_cg_relax_v4.1": OK,
    "srtio3_spin_polarized_v5.1": OK,
    "water50_chess_scf_not_conv_trunk623": FailureClass.SCF_NOT_CONVERGED,
}


def test_every_case_of_the_corpus_is_covered():
    cases = {p.name for p in DATA.iterdir() if p.is_dir()}
    assert cases == {key.split("/")[0] for key in EXPECTED}


@pytest.mark.parametrize("case, expected", EXPECTED.items(), ids=list(EXPECTED))
def test_it_gives_the_manifest_verdict(case, expected):
    verdict = validate(DATA / case, exit_code=0)
    assert verdict.ok is (expected is None), verdict.reason
    assert verdict.failure_class == expected


def test_unconverged_scf_with_exit_code_zero_fails():
    verdict = validate(DATA / "fe_cluster_noncol_gga_scf_not_conv_v4.1", exit_code=0)
    assert verdict.failure_class is FailureClass.SCF_NOT_CONVERGED
    assert "1000 iterations (max 1000)" in verdict.reason
    assert "SCF_NOT_CONV" in verdict.reason


def test_an_abort_says_why_and_lists_the_fatal_messages():
    verdict = validate(DATA / "si_scf_not_conv_abort_max1.0", exit_code=1)
    assert verdict.reason.startswith("aborted: SCF_NOT_CONV")
    details = verdict.details["siesta"]
    assert details["messages_fatal"][-1] == "ABNORMAL_TERMINATION"
    assert details["exit_code"] == 1


def test_an_unrelaxed_relaxation_names_force_and_tolerance():
    verdict = validate(DATA / "benzene_cg_unrelaxed_v4.1", exit_code=0)
    assert "Final (unrelaxed)" in verdict.reason
    assert "0.7079" in verdict.reason and "0.04" in verdict.reason


def test_md_is_not_a_relaxation():
    verdict = validate(DATA / "si_md_anneal_v4.1", exit_code=0)
    assert verdict.ok and verdict.details["siesta"]["dynamics"] == "Annealing MD run"


def _copy_out(tmp_path, relative):
    target = tmp_path / "run"
    target.mkdir()
    source = DATA / relative
    shutil.copy(source, target / source.name)
    return target / source.name


def test_a_file_cut_mid_scf_line_was_killed(tmp_path):
    out = _copy_out(tmp_path, "h2o_scf_v4.1/h2o.out")
    text = out.read_text()
    out.write_text(text[: text.index("   scf:    7") + 25])
    verdict = validate(out.parent, exit_code=137)
    assert verdict.failure_class is FailureClass.KILLED
    assert "scf iteration 6" in verdict.reason and "exit code 137" in verdict.reason


def test_a_file_with_only_the_header_was_killed(tmp_path):
    out = _copy_out(tmp_path, "h2o_scf_v4.1/h2o.out")
    out.write_text("".join(out.read_text().splitlines(keepends=True)[:30]))
    assert validate(out.parent, exit_code=None).failure_class is FailureClass.KILLED


def test_an_empty_or_absent_stdout_is_missing_output(tmp_path):
    assert validate(tmp_path, exit_code=0).failure_class is FailureClass.MISSING_OUTPUT
    write_layout(tmp_path, StepLayout(label="h2o", programs=("siesta",)))
    assert validate(tmp_path, exit_code=0).failure_class is FailureClass.MISSING_OUTPUT
    (tmp_path / "h2o.out").write_text("")
    assert validate(tmp_path, exit_code=0).failure_class is FailureClass.MISSING_OUTPUT


def test_garbage_instead_of_an_output_is_missing_output(tmp_path):
    write_layout(tmp_path, StepLayout(label="h2o", programs=("siesta",)))
    (tmp_path / "h2o.out").write_bytes(b"\x00\xff\xfe segmentation fault\n\x80\x81\n")
    verdict = validate(tmp_path, exit_code=139)
    assert verdict.failure_class is FailureClass.MISSING_OUTPUT


def test_a_missing_tbtrans_output_fails_a_siesta_plus_tbtrans_step(tmp_path):
    shutil.copy(DATA / "h2o_scf_v4.1" / "h2o.out", tmp_path / "h2o.out")
    write_layout(tmp_path, StepLayout(label="h2o", programs=("siesta", "tbtrans")))
    verdict = validate(tmp_path, exit_code=0)
    assert verdict.failure_class is FailureClass.MISSING_OUTPUT
    assert "TBtrans" in verdict.reason


def test_a_tbtrans_output_without_end_was_killed(tmp_path):
    text = (DATA / "graphene_transiesta_tbtrans_v5.1" / "TBT.out").read_text()
    (tmp_path / "tbt_graphene.out").write_text(text[: text.index("tbt: Completed")])
    write_layout(tmp_path, StepLayout(label="graphene", programs=("tbtrans",)))
    assert validate(tmp_path, exit_code=None).failure_class is FailureClass.KILLED


@pytest.mark.parametrize("marker, expected", [
    ("OUT_OF_TIME: Time is up.", FailureClass.TIMEOUT),
    ("GEOM_NOT_CONV: Geometry relaxation not converged", FailureClass.GEOMETRY_NOT_CONVERGED),
    ("fdf: Bad input in fdf file", FailureClass.ABORTED),
])
def test_a_die_is_classified_by_its_marker(tmp_path, marker, expected):
    text = (DATA / "h2o_scf_v4.1" / "h2o.out").read_text()
    cut = text.index("siesta: Final energy")
    (tmp_path / "h2o.out").write_text(text[:cut] + f"{marker}\nStopping Program from Node:    0\n")
    verdict = validate(tmp_path, exit_code=1)
    assert verdict.failure_class is expected
    assert marker.split(":")[0] in verdict.reason


def test_a_nonzero_exit_code_after_a_complete_run_is_reported_not_decisive():
    verdict = validate(DATA / "h2o_scf_v4.1", exit_code=255)
    assert verdict.ok and verdict.details["exit_code"] == 255
