"""What the agent offers in its heartbeat, the TOML writer tools use, and PySCF's results in
the shape the analyses read."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from siestaflow_agent import config, engines
from siestaflow_agent.analyses import run as analyses_run
from siestaflow_agent.engines.pyscf_engine import HARTREE_EV, analysis_sections


def agent_config(tmp_path: Path, **values) -> config.AgentConfig:
    return config.build({"api_url": "http://127.0.0.1:1", "api_key": "k", "work_dir": str(tmp_path), **values})


def fake_program(folder: Path, name: str) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


def test_siesta_is_offered_only_when_its_program_is_found(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert "siesta" not in engines.available(agent_config(tmp_path))

    fake_program(tmp_path / "bin", "siesta")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    offered = engines.available(agent_config(tmp_path))
    assert "siesta" in offered and "tbtrans" not in offered


def test_a_configured_siesta_command_decides_what_is_offered(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    siesta = fake_program(tmp_path / "opt", "siesta-5.2")
    assert "siesta" in engines.available(agent_config(tmp_path, engines={"siesta": str(siesta)}))
    assert "siesta" not in engines.available(agent_config(tmp_path, engines={"siesta": "mpirun -np 2 siesta"}))


def test_to_toml_writes_what_load_reads_back(tmp_path):
    values = {"api_url": "http://127.0.0.1:8000", "api_key": 'sfk_"quoted"\\é', "work_dir": str(tmp_path),
              "heartbeat_interval": 0.5, "claim_wait": 2, "engines": {"pyscf": "{python} -m x"},
              "cleanup": {"enabled": False, "keep": ["*.json"]}, "programs": {"toy": {"command": "echo hi"}}}
    text = config.to_toml(values)

    assert tomllib.loads(text) == values
    path = tmp_path / "agent.toml"
    path.write_text(text)
    loaded = config.load(path, environ={})
    assert loaded.api_key == values["api_key"] and loaded.claim_wait == 2 and loaded.cleanup.enabled is False


def test_to_toml_refuses_values_toml_cannot_hold():
    with pytest.raises(TypeError, match="NoneType"):
        config.to_toml({"api_key": None})


RESULTS = {"converged": True, "total_energy": -74.96, "total_energy_ev": -74.96 * HARTREE_EV, "gap_ev": 27.1,
           "n_atoms": 3, "scf_history": [-74.9, -74.95, -74.96], "scf_density_change": [1.0, 0.1, 0.001]}


def test_pyscf_results_feed_the_energy_summary_and_scf_convergence(tmp_path):
    extracted = {**RESULTS, **analysis_sections(RESULTS)}
    summary, scf = analyses_run.run_step(["energy_summary", "scf_convergence"], extracted, tmp_path)

    assert summary["status"] == "ok"
    assert summary["data"]["total"] == pytest.approx(-74.96 * HARTREE_EV)
    assert summary["data"]["total_per_atom"] == pytest.approx(-74.96 * HARTREE_EV / 3)
    assert scf["status"] == "ok", scf["message"]
    assert scf["data"]["cycles"][0]["iteration"] == [1, 2, 3]
    assert scf["data"]["cycles"][0]["dDmax"] == [1.0, 0.1, 0.001]
    assert (tmp_path / "scf_convergence.svg").exists()


def test_pyscf_results_without_history_make_scf_convergence_not_applicable(tmp_path):
    results = {**RESULTS, "scf_history": [], "scf_density_change": []}
    _summary, scf = analyses_run.run_step(["energy_summary", "scf_convergence"],
                                          {**results, **analysis_sections(results)}, tmp_path)
    assert scf["status"] == "not_applicable"
