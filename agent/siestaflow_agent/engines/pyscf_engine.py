"""The PySCF engine (optional extra ``siestaflow-agent[pyscf]``): molecular SCF calculations.

The engine writes ``input.json`` from the molecule and the calculation's options and runs
``python -m siestaflow_agent.engines.pyscf_run input.json`` as an ordinary job. Options
(``config["options"]``): ``method`` (RHF, UHF, RKS, UKS), ``xc`` (Kohn-Sham only), ``basis``,
``charge``, ``spin`` (2S, PySCF's convention), ``max_cycle``, ``conv_tol``. A chain may vary
any of them (``chain.parameter = "charge"``). Validation trusts PySCF's ``converged`` flag.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import sys
from pathlib import Path
from typing import Any

from siestaflow_agent.engines.base import Engine, FailureClass, StepSpec, Validation
from siestaflow_agent.engines.command import STDOUT_FILE

INPUT_FILE = "input.json"
RESULTS_FILE = "results.json"
CHKFILE = "scf.chk"
METHODS = ("RHF", "UHF", "RKS", "UKS")
DEFAULT_COMMAND = "{python} -m siestaflow_agent.engines.pyscf_run"
OPTIONS = {"method": str, "xc": str, "basis": str, "charge": int, "spin": int, "max_cycle": int, "conv_tol": float}
HARTREE_EV = 27.211386245988  # CODATA 2018, as pyscf.data.nist.HARTREE2EV (not imported: PySCF is optional)
_CYCLE = re.compile(r"^cycle=\s*(\d+)\s+E=\s*(\S+)", re.MULTILINE)


def pyscf_available() -> bool:
    """Is PySCF importable by this Python (the extra installed)?"""
    return importlib.util.find_spec("pyscf") is not None


def build_input(spec: StepSpec) -> dict[str, Any]:
    """The ``input.json`` content for ``spec``; ``ValueError`` for a bad molecule or option."""
    molecule = spec.molecule or {}
    species, positions = molecule.get("species") or [], molecule.get("positions") or []
    if not species or len(species) != len(positions):
        raise ValueError("the PySCF engine needs a molecule with as many positions as species")
    options = dict(spec.config.get("options") or {})
    if spec.parameter is not None:
        if spec.parameter not in OPTIONS:
            raise ValueError(f"chain parameter {spec.parameter!r} is not a PySCF option ({', '.join(OPTIONS)})")
        options[spec.parameter] = spec.value
    params: dict[str, Any] = {"atoms": [[s, list(map(float, p))] for s, p in zip(species, positions, strict=True)]}
    for key, kind in OPTIONS.items():
        if key in options and options[key] is not None:
            try:
                params[key] = kind(options[key])
            except (TypeError, ValueError):
                raise ValueError(f"option {key} must be {kind.__name__}, got {options[key]!r}") from None
    if params.get("method", "RHF").upper() not in METHODS:
        raise ValueError(f"option method must be one of {', '.join(METHODS)}")
    params["threads"] = spec.ntasks
    return params


class PyscfEngine(Engine):
    """PySCF SCF energies, orbitals, dipole and SCF history for a molecule."""

    name = "pyscf"

    def prepare(self, spec: StepSpec, workdir: Path) -> None:
        """Write ``input.json``."""
        (workdir / INPUT_FILE).write_text(json.dumps(build_input(spec), indent=1))

    def command(self, spec: StepSpec, workdir: Path, commands: dict[str, str]) -> list[list[str]]:
        """``[engines] pyscf`` (default: this Python) followed by ``input.json``."""
        template = commands.get(self.name, DEFAULT_COMMAND)
        words = [w.format(python=sys.executable, ntasks=spec.ntasks) for w in shlex.split(template)]
        return [words + [INPUT_FILE]]

    def validate(self, workdir: Path, exit_code: int | None) -> Validation:
        """Valid when ``results.json`` exists and PySCF says the SCF converged."""
        results = _results(workdir)
        if results is None:
            reason = _tail(workdir / "stderr.txt") or "no results.json written"
            failure = FailureClass.ABORTED if exit_code not in (0, None) else FailureClass.MISSING_OUTPUT
            return Validation(False, failure, reason)
        if not results.get("converged"):
            iterations = results.get("iterations")
            return Validation(False, FailureClass.SCF_NOT_CONVERGED,
                              f"SCF not converged after {iterations} iterations", {"iterations": iterations})
        return Validation(True, details={"iterations": results.get("iterations")})

    def extract(self, workdir: Path) -> dict[str, Any]:
        """The results PySCF wrote (small for the molecules PySCF is used for here), plus the
        sections the analyses read (see :func:`analysis_sections`)."""
        results = _results(workdir)
        if results is None:
            raise FileNotFoundError(workdir / RESULTS_FILE)
        return {**results, **analysis_sections(results)}

    def progress(self, workdir: Path) -> dict[str, Any] | None:
        """The last ``cycle= N E= X`` line of PySCF's log."""
        try:
            text = (workdir / STDOUT_FILE).read_text(errors="replace")
        except OSError:
            return None
        matches = _CYCLE.findall(text)
        if not matches:
            return None
        cycle, energy = matches[-1]
        return {"scf_iteration": int(cycle), "energy": float(energy)}

    def raw_files(self, workdir: Path) -> list[Path]:
        """The checkpoint file (orbitals), not needed once the results are on the server."""
        chk = workdir / CHKFILE
        return [chk] if chk.exists() else []


def analysis_sections(results: dict[str, Any]) -> dict[str, Any]:
    """``energies``, ``system``, ``eigenvalues`` and ``scf`` shaped like the SIESTA extraction
    (eV), so that the analyses the catalogue offers for PySCF (energy summary, SCF
    convergence) read PySCF's results as they read SIESTA's."""
    history = [float(e) * HARTREE_EV for e in results.get("scf_history") or []]
    density = list(results.get("scf_density_change") or [None] * len(history))
    atoms = results.get("n_atoms") or len(results.get("mulliken_charges") or []) or None
    cycle = {"index": 1, "kind": "scf", "step": 0, "converged": bool(results.get("converged")),
             "history": {"iteration": list(range(1, len(history) + 1)), "e_ks": history,
                         "dDmax": density, "dHmax": [None] * len(history)}}
    return {
        "energies": {"total": results.get("total_energy_ev"), "free": None, "fermi": None},
        "system": {"n_atoms": atoms},
        "eigenvalues": {"gap": results.get("gap_ev")},
        "scf": {"cycles": [cycle] if history else [], "n_cycles": 1 if history else 0,
                "all_converged": bool(results.get("converged"))},
    }


def _results(workdir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((workdir / RESULTS_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _tail(path: Path, lines: int = 3) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""
