"""SiestaEngine / TbtransEngine: input writing, invocations, extraction, raw files."""

from __future__ import annotations

import json
import shutil
import warnings

import pytest
import sisl
from siesta_manifest import DATA
from siestaflow_agent.engines.base import StepSpec
from siestaflow_agent.engines.siesta import SiestaEngine, TbtransEngine
from siestaflow_agent.engines.siesta.layout import read_layout

FDF = """SystemLabel water
NumberOfAtoms 1
NumberOfSpecies 1
%block ChemicalSpeciesLabel
 1 6 C
%endblock ChemicalSpeciesLabel
AtomicCoordinatesFormat Ang
%block AtomicCoordinatesAndAtomicSpecies
 0.0 0.0 0.0 1
%endblock AtomicCoordinatesAndAtomicSpecies
LatticeConstant 5.0 Ang
MeshCutoff 200 Ry
TS.Voltage 0.0 eV   # replaced by the chain parameter
"""
WATER = {"species": ["O", "H", "H"],
         "positions": [[0, 0, 0], [0.757, 0.586, 0], [-0.757, 0.586, 0]],
         "cell": [[10, 0, 0], [0, 10, 0], [0, 0, 10]]}
TEMPLATES = {"siesta": "mpirun -np {ntasks} siesta", "tbtrans": "tbtrans"}


def spec(**changes) -> StepSpec:
    values = {"calculation_id": 1, "name": "w", "config": {"fdf": FDF, "options": {}},
              "molecule": WATER, "parameter": "TS.Voltage", "value": 0.25, "ntasks": 4}
    values.update(changes)
    return StepSpec(**values)


def test_prepare_writes_the_fdf_with_geometry_and_parameter(tmp_path):
    SiestaEngine().prepare(spec(config={"fdf": FDF, "options": {"parameter_unit": "V"}}),
                           tmp_path)
    fdf = sisl.io.siesta.fdfSileSiesta(str(tmp_path / "water.fdf"))
    assert fdf.get("TS.Voltage", unit="eV") == pytest.approx(0.25)
    assert fdf.get("MeshCutoff", unit="Ry") == pytest.approx(200)
    with warnings.catch_warnings():  # sisl 0.20 looks for basis files beside it, and warns it found no single kind
        warnings.filterwarnings("ignore", "Specification requirement of the file", sisl.SislWarning)
        geometry = fdf.read_geometry(order=["fdf"])
    assert [atom.Z for atom in geometry.atoms] == [8, 1, 1]
    assert geometry.xyz.ravel() == pytest.approx([0, 0, 0, 0.757, 0.586, 0, -0.757, 0.586, 0])
    assert geometry.cell.ravel() == pytest.approx([10, 0, 0, 0, 10, 0, 0, 0, 10])
    text = (tmp_path / "water.fdf").read_text()
    assert text.count("TS.Voltage") == 1 and "LatticeConstant 5.0" not in text
    assert read_layout(tmp_path).programs == ("siesta",)


def test_any_fdf_key_can_be_the_chain_parameter(tmp_path):
    SiestaEngine().prepare(spec(parameter="mesh-cutoff", value=300), tmp_path)
    text = (tmp_path / "water.fdf").read_text()
    assert "mesh-cutoff 300 Ry" in text and "MeshCutoff 200" not in text


def test_declared_species_labels_are_reused(tmp_path):
    fdf = "%block ChemicalSpeciesLabel\n 1 26 Fe_SOC\n%endblock ChemicalSpeciesLabel\n"
    molecule = {"species": ["Fe_SOC", "Fe_SOC"], "positions": [[0, 0, 0], [2, 0, 0]]}
    SiestaEngine().prepare(spec(config={"fdf": fdf, "options": {"label": "fe"}},
                                molecule=molecule, parameter=None), tmp_path)
    text = (tmp_path / "fe.fdf").read_text()
    assert text.count("Fe_SOC") == 1 and "NumberOfSpecies 1" in text
    assert "2.00000000 0.00000000 0.00000000 1" in text and "SystemLabel fe" in text


def test_invocations_redirect_the_fdf_and_the_stdout(tmp_path):
    engine = SiestaEngine()
    step = spec(config={"fdf": FDF, "options": {"programs": ["siesta", "tbtrans"]}})
    runs = engine.invocations(step, tmp_path, TEMPLATES)
    assert [(r.argv, r.stdin, r.stdout) for r in runs] == [
        (["mpirun", "-np", "4", "siesta"], "water.fdf", "water.out"),
        (["tbtrans"], "water.fdf", "tbt_water.out"),
    ]
    assert engine.command(step, tmp_path, TEMPLATES) == [r.argv for r in runs]
    tbt = TbtransEngine().invocations(spec(), tmp_path, TEMPLATES)
    assert [r.program for r in tbt] == ["tbtrans"]


def test_unknown_programs_are_refused(tmp_path):
    with pytest.raises(ValueError):
        SiestaEngine().prepare(spec(config={"fdf": FDF, "options": {"programs": ["vasp"]}}),
                               tmp_path)


def test_raw_files_are_the_large_ones_never_the_kept_ones(tmp_path):
    raw = ["w.TSGFLeft", "w.TBT.nc", "w.RHO", "w.VT", "w.DM", "w.TSDE", "w.TSHS", "w.HSX",
           "w.PDOS", "w.ORB_INDX", "Si.ion.nc", "w.WFSX"]
    kept = ["w.out", "tbt_w.out", "MESSAGES", "0_NORMAL_EXIT", "OUTVARS.yml", "w.XV",
            "w.STRUCT_OUT", "w.FA", "w.EIG", "w.bands", "w.DOS", "w.TBT.AVTRANS_Left-Right",
            "fdf.20240725T141820.224.log", "w.fdf"]
    for name in raw + kept:
        (tmp_path / name).write_text("x")
    assert sorted(p.name for p in SiestaEngine().raw_files(tmp_path)) == sorted(raw)


def test_next_step_files_follow_the_carry_patterns(tmp_path):
    for name in ("w.TSDE", "w.DM", "w.out"):
        (tmp_path / name).write_text("x")
    found = SiestaEngine().next_step_files(tmp_path, ["*.TSDE", "*.DM"])
    assert [p.name for p in found] == ["w.TSDE", "w.DM"]


def test_extract_gives_json_with_auxiliary_files(tmp_path):
    shutil.copytree(DATA / "srtio3_spin_polarized_v5.1", tmp_path / "run")
    data = SiestaEngine().extract(tmp_path / "run")
    json.dumps(data, allow_nan=False)
    assert data["errors"] == []
    assert data["energies"]["total"] == pytest.approx(-3891.899209)  # MANIFEST
    assert data["eigenvalues"]["fermi"] == pytest.approx(-3.66344, abs=1e-5)
    assert data["bands"]["nk"] == 150 and data["dos"]["nspin"] == 2
    assert data["files"]["normal_exit"]["mpi_exit"] == 0
    assert data["files"]["outvars"]["energies_ev"]["Etot"] == pytest.approx(-3891.899, abs=1e-3)


def test_extract_of_a_transport_step(tmp_path):
    shutil.copytree(DATA / "graphene_transiesta_tbtrans_v5.1", tmp_path / "run")
    data = SiestaEngine().extract(tmp_path / "run")
    transport = data["transport"]
    assert transport["ts_voltage"] == 0.0 and transport["electrodes"] == ["Left", "Right"]
    assert len(transport["currents"]) == 2 and transport["tbtrans"]["completed"]
    pairs = {(t["from"], t["to"]) for t in transport["transmission"]}
    assert ("Left", "Right") in pairs and "dos" not in data  # TBT.DOS is not a SIESTA .DOS
    json.dumps(data, allow_nan=False)


def test_a_broken_auxiliary_file_is_reported_not_raised(tmp_path):
    shutil.copy(DATA / "h2o_scf_v4.1" / "h2o.out", tmp_path / "h2o.out")
    (tmp_path / "h2o.EIG").write_text("garbage\n")
    data = SiestaEngine().extract(tmp_path)
    assert "eigenvalues" not in data and data["errors"][0].startswith("h2o.EIG")
    assert data["energies"]["total"] == pytest.approx(-465.83915)


def test_progress_of_a_step(tmp_path):
    shutil.copy(DATA / "h2o_scf_v4.1" / "h2o.out", tmp_path / "h2o.out")
    info = SiestaEngine().progress(tmp_path)
    assert info["program"] == "siesta" and info["scf_iteration"] == 12
    assert SiestaEngine().progress(tmp_path / "empty") is None
