"""Running analyses on extracted corpus data: results, not_applicable paths and plots."""

from __future__ import annotations

import pytest
from siestaflow_agent.analyses.catalogue import CATALOGUE
from siestaflow_agent.analyses.run import run_chain, run_step

ALL = list(CATALOGUE)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def by_name(results):
    return {r["name"]: r for r in results}


def assert_plots(outdir, result):
    assert sorted(result["artifacts"]) == sorted(
        [f"{result['name']}.svg", f"{result['name']}.png"])
    png = (outdir / f"{result['name']}.png").read_bytes()
    assert png.startswith(PNG_MAGIC) and len(png) > 1000
    svg = (outdir / f"{result['name']}.svg").read_text()
    assert svg.startswith("<?xml") and "<svg" in svg and svg.rstrip().endswith("</svg>")


def test_a_relaxation_step(tmp_path, extracted):
    results = by_name(run_step(ALL, extracted("sih_cg_relax_v4.1"), tmp_path))
    assert set(results) == set(ALL) - {"iv_curve"}
    summary = results["energy_summary"]
    assert summary["status"] == "ok"
    assert summary["data"]["total"] == pytest.approx(-6851.328716)  # MANIFEST
    assert summary["data"]["total_per_atom"] == pytest.approx(-6851.328716 / 65)
    relax = results["relaxation"]
    assert relax["status"] == "ok" and len(relax["data"]["step"]) == 14  # 14 CG moves
    assert relax["data"]["max_force"][0] == pytest.approx(9.575346)  # MANIFEST first step
    assert relax["data"]["max_force"][-1] == pytest.approx(0.032035)
    assert relax["data"]["force_tolerance"] == pytest.approx(0.04) and relax["data"]["relaxed"]
    assert_plots(tmp_path, relax)
    assert results["scf_convergence"]["status"] == "ok"
    assert_plots(tmp_path, results["scf_convergence"])
    for absent in ("band_structure", "dos", "transmission"):
        assert results[absent]["status"] == "not_applicable", absent
        assert results[absent]["message"] and not results[absent]["artifacts"]


def test_bands_and_dos(tmp_path, extracted):
    results = by_name(run_step(["band_structure", "dos"], extracted(
        "srtio3_spin_polarized_v5.1"), tmp_path))
    bands = results["band_structure"]
    assert bands["status"] == "ok" and bands["data"]["labels"][0] == "Gamma"
    assert bands["data"]["fermi"] == pytest.approx(-3.66344, abs=1e-5)  # MANIFEST
    assert_plots(tmp_path, bands)
    assert results["dos"]["status"] == "ok"
    assert_plots(tmp_path, results["dos"])


def test_pdos_only(tmp_path, extracted):
    result = by_name(run_step(["dos"], extracted("si_bulk_pdos_k_v5.1"), tmp_path))["dos"]
    assert result["status"] == "ok" and result["data"]["species"] == ["Si"]


def test_scf_convergence_of_a_non_converged_run(tmp_path, extracted):
    result = by_name(run_step(["scf_convergence"], extracted(
        "fe_cluster_noncol_gga_scf_not_conv_v4.1"), tmp_path))["scf_convergence"]
    assert result["status"] == "ok" and result["data"]["all_converged"] is False
    assert len(result["data"]["cycles"][-1]["iteration"]) == 1000  # MANIFEST: 1000 scf lines


def test_an_aborted_run_has_no_energy_summary(tmp_path, extracted):
    results = by_name(run_step(ALL, extracted("si_scf_not_conv_abort_max1.0"), tmp_path))
    assert results["energy_summary"]["status"] == "not_applicable"
    assert results["scf_convergence"]["status"] == "ok"


def test_nothing_extracted_gives_not_applicable_everywhere(tmp_path):
    results = run_step(ALL, {}, tmp_path)
    assert {r["status"] for r in results} == {"not_applicable"}
    assert run_chain(ALL, [{}, {}], tmp_path)[0]["status"] == "not_applicable"
    assert not list(tmp_path.iterdir())


def test_transmission_of_a_tbtrans_step(tmp_path, extracted):
    result = by_name(run_step(["transmission"], extracted(
        "graphene_transiesta_tbtrans_v5.1"), tmp_path))["transmission"]
    assert result["status"] == "ok"
    pair = next(p for p in result["data"]["pairs"] if (p["from"], p["to"]) == ("Left", "Right"))
    assert pair["energy"] == [-0.75, -0.25, 0.25, 0.75]
    assert pair["transmission"][0] == pytest.approx(0.36363636)  # AVTRANS file value
    assert_plots(tmp_path, result)


def test_iv_curve_over_a_bias_sweep(tmp_path, extracted):
    steps = [extracted("au100_transiesta_bias_0_0.25V_v4.1/V0.00"),
             extracted("au100_transiesta_bias_0_0.25V_v4.1/V0.25")]
    [result] = run_chain(["transmission", "iv_curve"], steps, tmp_path, values=[0.0, 0.25])
    assert result["name"] == "iv_curve" and result["status"] == "ok"
    [pair] = result["data"]["pairs"]
    assert (pair["from"], pair["to"]) == ("Left", "Right")
    assert pair["voltage"] == [0.0, 0.25]
    assert pair["current"] == pytest.approx([0.0, 7.69618e-06])  # MANIFEST currents
    assert_plots(tmp_path, result)


def test_iv_curve_needs_two_biases(tmp_path, extracted):
    steps = [extracted("au100_transiesta_bias_0_0.25V_v4.1/V0.25")]
    [result] = run_chain(["transmission", "iv_curve"], steps, tmp_path)
    assert result["status"] == "not_applicable"


def test_a_broken_analysis_fails_alone(tmp_path, extracted):
    data = dict(extracted("h2o_scf_v4.1"))
    data["relaxation"] = {"steps": [{"index": 0}, {"index": 1}]}  # malformed
    results = by_name(run_step(["energy_summary", "relaxation"], data, tmp_path))
    assert results["relaxation"]["status"] == "failed" and "KeyError" in results[
        "relaxation"]["message"]
    assert results["energy_summary"]["status"] == "ok"
