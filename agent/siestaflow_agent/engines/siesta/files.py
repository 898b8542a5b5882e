"""Readers for SIESTA's small auxiliary files.

sisl reads ``.EIG``, ``.bands`` and ``.PDOS`` well, so those go through its siles (imported
lazily: importing sisl costs about a second). ``.DOS``, ``MESSAGES``, ``0_NORMAL_EXIT`` and
``OUTVARS.yml`` have no sile and are simple text read here. Every reader returns plain
JSON-ready data (lists, floats, strings) and raises ``OSError``/``ValueError`` on a file it
cannot read.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .fortran import split_numbers, to_float
from .records import clean
from .stdout import open_text

RY_TO_EV = 13.605693122994
MAX_EIGENVALUES = 100_000
"""Above this many values the full eigenvalue list is left out (the summary stays)."""


def read_eig(path: str | os.PathLike[str]) -> dict[str, Any]:
    """``.EIG``: Fermi level, band edges and eigenvalues (eV, absolute) as ``[spin][k][band]``.

    ``vbm``/``cbm`` are the highest eigenvalue at or below and the lowest above the Fermi
    level over all spins and k-points; ``gap`` is their difference.
    """
    import sisl

    sile = sisl.io.siesta.eigSileSiesta(str(path))
    fermi = float(sile.read_fermi_level())
    eig = sile.read_data() + fermi  # sisl shifts to E_F = 0; keep the file's absolute values
    nspin, nk, nbands = (int(n) for n in eig.shape)
    below, above = eig[eig <= fermi], eig[eig > fermi]
    vbm = float(below.max()) if below.size else None
    cbm = float(above.min()) if above.size else None
    return clean({
        "fermi": fermi, "nspin": nspin, "nk": nk, "nbands": nbands, "vbm": vbm, "cbm": cbm,
        "gap": cbm - vbm if vbm is not None and cbm is not None else None,
        "eigenvalues": eig.tolist() if eig.size <= MAX_EIGENVALUES else None, "unit": "eV",
    })


def read_bands(path: str | os.PathLike[str]) -> dict[str, Any]:
    """``.bands``: Fermi level, k-path and eigenvalues (eV, absolute) as ``[spin][k][band]``.

    For a ``BandLines`` file ``k`` is the path distance (1/Bohr) with tick positions and
    labels; for ``BandPoints`` ``k`` is the list of k-points and there are no ticks.
    """
    import sisl

    with open_text(path) as handle:
        fermi = to_float(handle.readline().split()[0])
    data = sisl.io.siesta.bandsSileSiesta(str(path)).read_data()
    if len(data) == 3:
        (ticks, labels), k, eig = data
        ticks, labels = [float(t) for t in ticks], [str(lab) for lab in labels]
    else:
        k, eig = data
        ticks, labels = [], []
    eig = eig.transpose(1, 0, 2) + fermi  # sisl: (k, spin, band), shifted to E_F = 0
    return clean({
        "fermi": fermi, "k": k.tolist(), "path": bool(ticks), "ticks": ticks,
        "labels": labels, "nspin": int(eig.shape[0]), "nk": int(eig.shape[1]),
        "nbands": int(eig.shape[2]), "eigenvalues": eig.tolist(), "unit": "eV",
    })


def read_pdos(path: str | os.PathLike[str]) -> dict[str, Any]:
    """``.PDOS``/``.PDOS.xml``: PDOS (states/eV) summed per species, ``[spin][E]``.

    sisl returns the energies relative to the Fermi level (``energy_reference: "fermi"``).
    """
    import sisl

    geometry, energy, pdos = sisl.io.siesta.pdosSileSiesta(str(path)).read_data()
    by_species: dict[str, list[list[float]]] = {}
    for atom_index, atom in enumerate(geometry.atoms):
        orbitals = geometry.a2o(atom_index, all=True)
        summed = pdos[:, orbitals, :].sum(axis=1)  # (spin, E)
        name = atom.tag
        if name in by_species:
            summed = summed + _as_array(by_species[name])
        by_species[name] = summed.tolist()
    return clean({
        "energy": energy.tolist(), "total": pdos.sum(axis=1).tolist(),
        "species": by_species, "nspin": int(pdos.shape[0]), "unit": "states/eV",
        "energy_reference": "fermi",
    })


def _as_array(values: list[list[float]]) -> Any:
    import numpy

    return numpy.asarray(values)


def read_dos(path: str | os.PathLike[str]) -> dict[str, Any]:
    """``.DOS``: energy (eV) and total DOS (states/eV) per spin (``dos[spin][i]``)."""
    energy: list[float] = []
    columns: list[list[float]] = []
    with open_text(path) as handle:
        for line in handle:
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            values = split_numbers(line)
            energy.append(values[0])
            if not columns:
                columns = [[] for _ in values[1:]]
            for column, value in zip(columns, values[1:], strict=False):
                column.append(value)
    if not energy:
        raise ValueError(f"{path}: no data")
    return clean({"energy": energy, "dos": columns, "nspin": len(columns), "unit": "states/eV"})


def read_messages(path: str | os.PathLike[str]) -> dict[str, Any]:
    """``MESSAGES``: the ``INFO``/``WARNING``/``FATAL`` lines of the last run."""
    levels: dict[str, list[str]] = {"info": [], "warning": [], "fatal": []}
    lines: list[str] = []
    with open_text(path) as handle:
        for line in handle:
            text = line.rstrip("\r\n")
            if not text.strip():
                continue
            lines.append(text)
            head, _, body = text.partition(":")
            key = head.strip().lower()
            if key in levels:
                levels[key].append(body.strip())
    return {
        **levels,
        "lines": lines,
        "job_completed": any(m.startswith("Job completed") for m in levels["info"]),
    }


def read_normal_exit(path: str | os.PathLike[str]) -> dict[str, Any]:
    """``0_NORMAL_EXIT``: the sentinel SIESTA writes as its very last action."""
    text = Path(path).read_text(encoding="utf-8", errors="replace").strip()
    exit_code = None
    if "exit:" in text:
        try:
            exit_code = int(text.rpartition("exit:")[2].split()[0])
        except (ValueError, IndexError):
            exit_code = None
    return {"text": text, "mpi_exit": exit_code, "completed": "completed" in text.lower()}


def read_outvars(path: str | os.PathLike[str]) -> dict[str, Any]:
    """``OUTVARS.yml``: the two-level ``section: {key: value}`` YAML of 4.1+ (energies in Ry).

    Adds ``energies_ev`` with the energies converted to eV. Only this flat layout is read;
    it avoids a YAML dependency for one small file.
    """
    data: dict[str, Any] = {}
    section: dict[str, Any] | None = None
    with open_text(path) as handle:
        for line in handle:
            text = line.split("#", 1)[0].rstrip()
            if not text.strip() or text.startswith(("%", "---", "...")):
                continue
            key, _, value = text.strip().partition(":")
            if not text.startswith((" ", "\t")):
                section = data.setdefault(key, {}) if not value.strip() else None
                if section is None:
                    data[key] = _yaml_scalar(value)
            elif section is not None:
                section[key] = _yaml_scalar(value)
    energies = data.get("energies")
    if isinstance(energies, dict):
        data["energies_ev"] = {
            k: v * RY_TO_EV for k, v in energies.items() if isinstance(v, float)
        }
    return clean(data)


def _yaml_scalar(text: str) -> Any:
    value = text.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    try:
        return to_float(value)
    except ValueError:
        return value
