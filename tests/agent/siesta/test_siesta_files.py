"""Readers of the small auxiliary files (.EIG, .bands, .DOS, .PDOS, MESSAGES, ...)."""

from __future__ import annotations

import pytest
from siesta_manifest import DATA
from siestaflow_agent.engines.siesta import files

SRTIO3 = DATA / "srtio3_spin_polarized_v5.1"
SI_PDOS = DATA / "si_bulk_pdos_k_v5.1"


def test_eig_gives_the_fermi_level_of_the_run_and_all_eigenvalues():
    data = files.read_eig(SRTIO3 / "SrTiO3.EIG")
    assert data["fermi"] == pytest.approx(-3.66344, abs=1e-5)  # MANIFEST Fermi energy
    assert (data["nspin"], data["nbands"]) == (2, 72)  # spin-polarised, 72 orbitals
    assert len(data["eigenvalues"]) == 2 and len(data["eigenvalues"][0]) == data["nk"]
    assert data["vbm"] <= data["fermi"] < data["cbm"]


def test_bands_with_a_path_has_ticks_and_labels():
    data = files.read_bands(SRTIO3 / "SrTiO3.bands")
    assert data["fermi"] == pytest.approx(-3.66344, abs=1e-5)
    assert data["path"] and data["labels"] == ["Gamma", "X", "M", "Gamma", "R", "X"]
    assert (data["nspin"], data["nk"], data["nbands"]) == (2, 150, 72)
    assert data["eigenvalues"][0][0][0] == pytest.approx(-60.8605)  # first value in the file


def test_bandpoints_file_has_k_points_and_no_labels():
    data = files.read_bands(DATA / "si_bandpoints_max1.0" / "aiida.bands")
    assert data["fermi"] == pytest.approx(-3.575785, abs=1e-6)  # MANIFEST Fermi energy
    assert not data["path"] and data["labels"] == []
    assert data["nk"] == 3 and data["nbands"] == 26  # 3 k-points (MANIFEST), 26 orbitals
    assert data["k"][0] == pytest.approx([0.0, 0.61232, 0.30616])


def test_dos_of_polarised_and_unpolarised_runs():
    polarised = files.read_dos(SRTIO3 / "SrTiO3.DOS")
    assert polarised["nspin"] == 2 and polarised["energy"][0] == pytest.approx(-70.0)
    single = files.read_dos(SI_PDOS / "Si_pdos.DOS")
    assert single["nspin"] == 1 and single["dos"][0][0] == pytest.approx(0.14069)


def test_pdos_is_summed_per_species():
    data = files.read_pdos(SI_PDOS / "Si_pdos.PDOS")
    assert list(data["species"]) == ["Si"] and data["nspin"] == 1
    assert len(data["energy"]) == len(data["total"][0]) == 200
    assert data["species"]["Si"][0] == pytest.approx(data["total"][0])


def test_messages_of_an_aborted_run_hold_the_fatal_lines():
    data = files.read_messages(DATA / "si_scf_not_conv_abort_max1.0" / "MESSAGES")
    assert data["fatal"][0].startswith("SCF_NOT_CONV")
    assert "ABNORMAL_TERMINATION" in data["fatal"] and not data["job_completed"]
    ok = files.read_messages(DATA / "graphene_cg_unrelaxed_v5.1" / "MESSAGES")
    assert ok["job_completed"] and ok["warning"]


def test_normal_exit_sentinel():
    data = files.read_normal_exit(SRTIO3 / "0_NORMAL_EXIT")
    assert data == {"text": "SIESTA completed, MPI exit: 0", "mpi_exit": 0, "completed": True}


def test_outvars_energies_in_rydberg_and_ev():
    data = files.read_outvars(SRTIO3 / "OUTVARS.yml")
    assert data["siesta"]["version"] == "5.1-MaX-42-gb6955e60a"
    assert data["energies"]["Etot"] == pytest.approx(-286.04932)
    assert data["energies_ev"]["Etot"] == pytest.approx(-3891.899209, abs=1e-3)  # MANIFEST


def test_a_broken_file_raises_value_error(tmp_path):
    broken = tmp_path / "x.DOS"
    broken.write_text("not numbers\n")
    with pytest.raises(ValueError):
        files.read_dos(broken)
