"""Writing SIESTA input: fdf text edits and the fdf geometry block of a molecule.

fdf labels are case-insensitive and ignore ``.``, ``_`` and ``-`` (``TS.Voltage`` ==
``ts_voltage``), so keys are compared in that normalised form. Overriding a key removes every
line (or ``%block``) that sets it and writes the new value at the top of the file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

ELEMENTS = (
    "X H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge "
    "As Se Br Kr Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm "
    "Eu Gd Tb Dy Ho Er Tm Yb Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th Pa U "
    "Np Pu Am Cm Bk Cf Es Fm Md No Lr Rf Db Sg Bh Hs Mt Ds Rg Cn Nh Fl Mc Lv Ts Og"
).split()
"""Element symbols indexed by atomic number (``ELEMENTS[8] == "O"``)."""

DEFAULT_UNITS = {"tsvoltage": "eV", "tbtvoltage": "eV", "electronictemperature": "K",
                 "meshcutoff": "Ry"}
"""Unit written after a bare number for these (normalised) keys."""

UNIT_ALIASES = {("tsvoltage", "V"): "eV", ("tbtvoltage", "V"): "eV"}
"""A bias of 1 V is given to SIESTA as the energy 1 eV."""

GEOMETRY_KEYS = ("NumberOfAtoms", "NumberOfSpecies", "ChemicalSpeciesLabel",
                 "AtomicCoordinatesFormat", "AtomicCoordinatesAndAtomicSpecies")
CELL_KEYS = ("LatticeConstant", "LatticeVectors", "LatticeParameters")

_BLOCK = re.compile(r"^\s*%block\s+(\S+)", re.IGNORECASE)
_ENDBLOCK = re.compile(r"^\s*%endblock", re.IGNORECASE)


def normalise_key(key: str) -> str:
    """fdf label comparison form: lower case without ``.``, ``_``, ``-``."""
    return re.sub(r"[._\-]", "", key).lower()


def line_key(line: str) -> str | None:
    """The label a single fdf line sets (None for comments, blank lines and blocks)."""
    text = line.split("#", 1)[0].split(";", 1)[0].strip()
    if not text or text.startswith("%"):
        return None
    return text.split()[0]


def get_value(text: str, key: str) -> str | None:
    """The value of a single-line fdf ``key`` (first occurrence), without comments."""
    wanted = normalise_key(key)
    for line in text.splitlines():
        found = line_key(line)
        if found and normalise_key(found) == wanted:
            return line.split("#", 1)[0].strip()[len(found):].strip()
    return None


def remove_keys(text: str, keys: Sequence[str]) -> str:
    """``text`` without the lines and ``%block``s that set any of ``keys``."""
    wanted = {normalise_key(k) for k in keys}
    kept: list[str] = []
    skipping = False
    for line in text.splitlines():
        if skipping:
            skipping = not _ENDBLOCK.match(line)
            continue
        block = _BLOCK.match(line)
        if block and normalise_key(block.group(1)) in wanted:
            skipping = True
            continue
        key = line_key(line)
        if key and normalise_key(key) in wanted:
            continue
        kept.append(line)
    return "\n".join(kept)


def format_value(key: str, value: Any, unit: str | None = None) -> str:
    """One fdf line ``key value [unit]`` for a Python value (bools as ``true``/``false``)."""
    if isinstance(value, bool):
        return f"{key} {'true' if value else 'false'}"
    if isinstance(value, (list, tuple)):
        return f"{key} {' '.join(str(v) for v in value)}"
    if isinstance(value, (int, float)):
        norm = normalise_key(key)
        unit = UNIT_ALIASES.get((norm, unit or ""), unit) or DEFAULT_UNITS.get(norm)
        return f"{key} {value:g} {unit}".rstrip() if unit else f"{key} {value:g}"
    return f"{key} {value}"


def override(text: str, values: Mapping[str, str]) -> str:
    """Set ``values`` (``{key: "key value [unit]" line}``) in ``text``, removing old settings."""
    if not values:
        return text
    header = "# --- set by siestaflow ---\n" + "\n".join(values.values()) + "\n# ---\n"
    return header + remove_keys(text, list(values))


def species_labels(text: str) -> list[tuple[int, int, str]]:
    """``(index, Z, label)`` rows of the ``ChemicalSpeciesLabel`` block of ``text``."""
    rows: list[tuple[int, int, str]] = []
    inside = False
    for line in text.splitlines():
        if inside:
            if _ENDBLOCK.match(line):
                break
            parts = line.split("#", 1)[0].split()
            if len(parts) >= 3:
                rows.append((int(parts[0]), int(parts[1]), parts[2]))
            continue
        block = _BLOCK.match(line)
        inside = bool(block and normalise_key(block.group(1)) == "chemicalspecieslabel")
    return rows


def geometry_block(molecule: Mapping[str, Any], text: str = "") -> tuple[str, list[str]]:
    """The fdf geometry of ``molecule`` and the keys it replaces in ``text``.

    Species already declared in ``text``'s ``ChemicalSpeciesLabel`` (e.g. ``Fe_SOC``) keep
    their numbering; otherwise species are numbered in order of appearance and labelled by
    element symbol. Positions are Cartesian Angstrom; a ``cell`` adds ``LatticeVectors``.
    """
    species: list[str] = list(molecule["species"])
    positions: list[list[float]] = [list(map(float, p)) for p in molecule["positions"]]
    if len(species) != len(positions):
        raise ValueError("molecule: species and positions differ in length")
    declared = species_labels(text)
    if declared and set(species) <= {label for _, _, label in declared}:
        table = declared
        replaced = [k for k in GEOMETRY_KEYS if k != "ChemicalSpeciesLabel"]
    else:
        table = [(i + 1, atomic_number(s), s) for i, s in enumerate(dict.fromkeys(species))]
        replaced = list(GEOMETRY_KEYS)
    index = {label: i for i, _, label in table}
    lines = [f"NumberOfAtoms {len(species)}", f"NumberOfSpecies {len(table)}"]
    if "ChemicalSpeciesLabel" in replaced:
        lines += ["%block ChemicalSpeciesLabel"]
        lines += [f"  {i} {z} {label}" for i, z, label in table]
        lines += ["%endblock ChemicalSpeciesLabel"]
    lines += ["AtomicCoordinatesFormat Ang", "%block AtomicCoordinatesAndAtomicSpecies"]
    lines += [f"  {x:.8f} {y:.8f} {z:.8f} {index[s]}" for (x, y, z), s in zip(positions, species, strict=True)]
    lines += ["%endblock AtomicCoordinatesAndAtomicSpecies"]
    cell = molecule.get("cell")
    if cell:
        lines += ["LatticeConstant 1.0 Ang", "%block LatticeVectors"]
        lines += [f"  {a:.8f} {b:.8f} {c:.8f}" for a, b, c in cell]
        lines += ["%endblock LatticeVectors"]
        replaced += list(CELL_KEYS)
    return "\n".join(lines) + "\n", replaced


def atomic_number(symbol: str) -> int:
    """Atomic number of an element symbol (``"Fe"`` or a label like ``"Fe_soc"``, ``"C1"``)."""
    match = re.match(r"[A-Z][a-z]?", symbol.strip().capitalize())
    if match and match.group(0) in ELEMENTS:
        return ELEMENTS.index(match.group(0))
    raise ValueError(f"unknown element {symbol!r}")
