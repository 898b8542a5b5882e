"""Expected values of the SIESTA sample corpus, read from its MANIFEST.md.

The manifest (written from the files themselves, independently of our parser) lists, per
case, "Key numbers from `<file>`" bullet lists. This module turns each list into a dict of
expected values, so the tests compare the parser against the manifest and not against its
own earlier output.
"""

from __future__ import annotations

import re
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data" / "siesta-samples"
MANIFEST = DATA / "MANIFEST.md"

_CASE = re.compile(r"^## (\S+)\s*$")
_OUTPUT = re.compile(r"^- \*\*Key numbers from `([^`]+)`\*\*:")
_ITEM = re.compile(r"^\s+- ([^:]+?): (.*)$")
_FLOAT = r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?"


def outputs() -> list[dict]:
    """One dict per output file described in the manifest (``case``, ``file``, fields)."""
    found: list[dict] = []
    case, current = None, None
    for line in MANIFEST.read_text(encoding="utf-8").splitlines():
        if match := _CASE.match(line):
            case, current = match.group(1), None
        elif match := _OUTPUT.match(line):
            current = {"case": case, "file": match.group(1), "path": DATA / case / match.group(1)}
            found.append(current)
        elif current is not None and (match := _ITEM.match(line)):
            current.update(_fields(match.group(1).strip(), match.group(2).strip()))
        elif not line.startswith(" "):
            current = None
    return found


def _number(pattern: str, text: str) -> float | None:
    match = re.search(pattern, text)
    return float(match.group(1)) if match else None


def _program(value: str) -> dict:
    program, version = value.split(" ", 1)
    return {"program": program.lower(), "version": version.strip("`")}


def _atoms(value: str) -> dict:
    atoms, orbitals = value.split("/")
    return {"n_atoms": int(atoms), "n_orbitals": int(orbitals)}


def _total(value: str) -> dict:
    return {"total": _number(rf"^({_FLOAT})", value),
            "ts_total": _number(rf"`ts: Total` = ({_FLOAT})", value)}


def _fermi(value: str) -> dict:
    return {"fermi": _number(rf"({_FLOAT}) eV\s*$", value),
            "fermi_from_scf": "no `Fermi =` line" in value}


def _geometry(value: str) -> dict:
    return {"geometry_steps": int(value.split()[0]),
            "max_moves": _number(r"max moves = (\d+)", value),
            "force_tol": value.partition("force tol = ")[2] or None}


def _max_force(value: str) -> dict:
    return {"max_force": _number(rf"^({_FLOAT})", value),
            "first_max_force": _number(rf"first step: ({_FLOAT})", value)}


FIELDS = {
    "program/version": _program,
    "atoms/orbitals": _atoms,
    "spin": lambda v: {"spin": v},
    "dynamics": lambda v: {"dynamics": v},
    "TS voltage": lambda v: {"ts_voltage": _number(rf"({_FLOAT})", v)},
    "final total energy": _total,
    "last FreeEng": lambda v: {"free": _number(rf"({_FLOAT})", v)},
    "Fermi energy": _fermi,
    "SCF": lambda v: _scf_fields(v),
    "geometry steps": _geometry,
    "final coordinates header": lambda v: {"coordinates_header": v.strip("`")},
    "max force (last `Max ... constrained`, largest |component|)": _max_force,
    "max |F| over atoms in the final force table": lambda v: {
        "max_atom_force": _number(rf"^({_FLOAT})", v)},
    "last spin moment |S|": lambda v: {"spin_moment": float(v)},
    "failure markers": lambda v: {"failure_markers": v},
    "currents": lambda v: {"currents": _currents(v)},
    "completion": lambda v: _completion(v),
}


def _fields(key: str, value: str) -> dict:
    """Expected values from one ``key: value`` bullet (unknown keys are ignored)."""
    parser = FIELDS.get(key)
    return parser(value) if parser else {}


def _scf_fields(value: str) -> dict:
    return {
        "n_scf_lines": int(_number(r"(\d+) `scf:` lines", value) or 0),
        "n_ts_scf_lines": int(_number(r"(\d+) `ts-scf:` lines", value) or 0),
        "n_cycles": int(_number(r"in (\d+) cycle", value)),
        "last_iteration": int(_number(r"ended at iteration (\d+)", value)),
        "n_converged_lines": int(_number(r"`SCF cycle converged` lines: (\d+)", value)),
        "max_scf_iterations": int(_number(r"MaxSCFIterations = (\d+)", value)),
    }


def _currents(value: str) -> list[dict]:
    pairs = []
    for item in value.split(";"):
        match = re.search(rf"(\S+)->(\S+): V=({_FLOAT}) V, I=({_FLOAT}) A", item.strip())
        if match:
            pairs.append({"from": match.group(1), "to": match.group(2),
                          "voltage": float(match.group(3)), "current": float(match.group(4))})
    return pairs


def _completion(value: str) -> dict:
    flags = dict(re.findall(r"`([^`]+)` = (True|False)", value))
    return {
        "end_of_run": flags.get(">> End of run") == "True",
        "job_completed": flags.get("Job completed") == "True",
        "tbt_completed": flags.get("tbt: Completed") == "True" if "tbt: Completed" in flags
        else None,
    }


def siesta_outputs() -> list[dict]:
    """The SIESTA/TranSIESTA outputs of the manifest."""
    return [o for o in outputs() if o["program"] == "siesta"]


def tbtrans_outputs() -> list[dict]:
    """The TBtrans outputs of the manifest."""
    return [o for o in outputs() if o["program"] == "tbtrans"]
