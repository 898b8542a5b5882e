"""Where a running SIESTA calculation is, from the tail of its stdout only (the whole file
is :func:`stdout.parse_stdout`'s)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .fortran import split_numbers
from .stdout import BEGIN_STEP

TAIL_START = 64 * 1024
TAIL_MAX = 4 * 1024 * 1024


def progress(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """Where a (possibly still running) SIESTA run is, from the tail of its stdout only.

    Reads the last 64 KiB (growing up to 4 MiB until an ``scf:`` row is found) and returns
    ``{"scf_kind", "scf_iteration", "energy", "free_energy", "dDmax", "geometry_step",
    "geometry_kind", "finished"}``, or ``None`` when the file does not exist.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError:
        return None
    size_read = TAIL_START
    while True:
        lines = _tail_lines(path, size, size_read)
        info = _scan_tail(lines)
        if info["scf_iteration"] is not None or size_read >= min(size, TAIL_MAX):
            return info
        size_read *= 4


def _tail_lines(path: Path, size: int, amount: int) -> list[str]:
    with open(path, "rb") as handle:
        handle.seek(max(0, size - amount))
        data = handle.read(amount)
    lines = data.decode("utf-8", errors="replace").split("\n")
    return lines[1:] if size > amount else lines  # the first one may be cut


def _scan_tail(lines: list[str]) -> dict[str, Any]:
    info: dict[str, Any] = {
        "scf_kind": None, "scf_iteration": None, "energy": None, "free_energy": None,
        "dDmax": None, "geometry_step": None, "geometry_kind": None, "finished": False,
    }
    for line in lines:
        text = line.strip()
        word, _, rest = text.partition(" ")
        if word in ("scf:", "ts-scf:"):
            _tail_scf_row(info, word[:-1], rest)
        elif word == "Begin":
            match = BEGIN_STEP.match(text)
            if match and match.group(2):
                info["geometry_kind"], info["geometry_step"] = match.group(1), int(match.group(2))
        elif text.startswith((">> End of run", "Stopping Program")):
            info["finished"] = True
    return info


def _tail_scf_row(info: dict[str, Any], kind: str, rest: str) -> None:
    try:
        values = split_numbers(rest)
    except ValueError:
        return
    if len(values) >= 6 and values[0].is_integer():
        info.update(scf_kind=kind, scf_iteration=int(values[0]), energy=values[2],
                    free_energy=values[3], dDmax=values[4])
