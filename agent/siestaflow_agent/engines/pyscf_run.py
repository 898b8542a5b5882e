"""Run one PySCF SCF calculation described by a JSON file; the PySCF engine's program.

Usage: ``python -m siestaflow_agent.engines.pyscf_run input.json``. It runs in the step folder
as an ordinary job (so the executor can time, cancel and re-attach to it like any program),
prints PySCF's own log (``cycle= N E= ...``) to standard output and writes ``results.json``
(energies in Hartree, plus eV for the totals). Exit code 0 even when the SCF did not
converge: the engine judges that from ``converged`` in the results.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from siestaflow_agent.engines.pyscf_engine import CHKFILE, METHODS, RESULTS_FILE


def build_molecule(params: dict[str, Any]) -> Any:
    """The ``pyscf.gto.Mole`` for ``params`` (atoms as ``[[symbol, [x, y, z]], ...]`` in Å)."""
    from pyscf import gto

    atoms = [(symbol, tuple(float(c) for c in xyz)) for symbol, xyz in params["atoms"]]
    return gto.M(
        atom=atoms, basis=params.get("basis", "sto-3g"), charge=int(params.get("charge", 0)),
        spin=int(params.get("spin", 0)), unit=params.get("unit", "Angstrom"),
        verbose=int(params.get("verbose", 4)), output=None,
    )


def build_scf(mol: Any, params: dict[str, Any]) -> Any:
    """The mean-field object for ``params["method"]`` (RHF, UHF, RKS or UKS with ``xc``)."""
    from pyscf import dft, scf

    method = params.get("method", "RHF").upper()
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    factory = {"RHF": scf.RHF, "UHF": scf.UHF, "RKS": dft.RKS, "UKS": dft.UKS}[method]
    mf = factory(mol)
    if method.endswith("KS"):
        mf.xc = params.get("xc", "b3lyp")
    mf.max_cycle = int(params.get("max_cycle", 50))
    mf.conv_tol = float(params.get("conv_tol", 1e-9))
    mf.chkfile = CHKFILE
    return mf


def frontier(mo_energy: Any, mo_occ: Any) -> dict[str, float | None]:
    """HOMO, LUMO and gap (Hartree) over all spin channels."""
    import numpy as np

    energies, occupations = np.ravel(mo_energy), np.ravel(mo_occ)
    occupied, virtual = energies[occupations > 0], energies[occupations <= 0]
    homo = float(occupied.max()) if occupied.size else None
    lumo = float(virtual.min()) if virtual.size else None
    gap = lumo - homo if homo is not None and lumo is not None else None
    return {"homo": homo, "lumo": lumo, "gap": gap}


def run(params: dict[str, Any]) -> dict[str, Any]:
    """Run the SCF and return the results (JSON-serialisable)."""
    from pyscf import lib
    from pyscf.data.nist import HARTREE2EV

    if params.get("threads"):
        lib.num_threads(int(params["threads"]))
    mol = build_molecule(params)
    mf = build_scf(mol, params)
    history: list[float] = []
    density_change: list[float | None] = []

    def record(envs: dict[str, Any]) -> None:
        history.append(float(envs["e_tot"]))
        change = envs.get("norm_ddm")
        density_change.append(float(change) if change is not None else None)

    mf.callback = record
    energy = float(mf.kernel())
    levels = frontier(mf.mo_energy, mf.mo_occ)
    return {
        "converged": bool(mf.converged),
        "method": params.get("method", "RHF").upper(),
        "xc": getattr(mf, "xc", None),
        "basis": params.get("basis", "sto-3g"),
        "charge": mol.charge, "spin": mol.spin, "n_atoms": int(mol.natm), "n_electrons": int(mol.nelectron),
        "n_orbitals": int(mol.nao_nr()),
        "total_energy": energy, "total_energy_ev": energy * HARTREE2EV,
        "mo_energy": mf.mo_energy.tolist(), "mo_occ": mf.mo_occ.tolist(),
        **levels,
        **{f"{k}_ev": (v * HARTREE2EV if v is not None else None) for k, v in levels.items()},
        "dipole_debye": [float(x) for x in mf.dip_moment(unit="Debye", verbose=0)],
        "mulliken_charges": [float(q) for q in mf.mulliken_pop(verbose=0)[1]],
        "scf_history": history, "scf_density_change": density_change, "iterations": len(history),
    }


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` atomically (a reader never sees half a file)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``input.json`` in, ``results.json`` out (next to the input)."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m siestaflow_agent.engines.pyscf_run input.json", file=sys.stderr)
        return 2
    source = Path(argv[0])
    results = run(json.loads(source.read_text()))
    write_json(source.with_name(RESULTS_FILE), results)
    print(f"siestaflow: converged={results['converged']} E={results['total_energy']:.10f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
