"""TBtrans: its stdout (completion, currents, bias) and its ASCII transmission files.

TBtrans never prints ``Job completed``; it finishes with ``tbt: Completed in <t> s`` and
``>> End of run``. After ``Currents (ensure entire Fermi function window):`` it prints, per
electrode pair, ``Left -> Right, V [V] / I [A]: 0.250000 V / 0.769618E-05 A`` (plus a power
line). Electrode names are chosen by the user and may contain ``-``, so the suffix of an ASCII
file such as ``label.TBT.AVTRANS_el-1-el-3`` is split with the names declared in the fdf
(``%block TS.Elecs`` / ``TBT.Elecs`` or ``%block TS.Elec.<name>`` / ``TBT.Elec.<name>``).
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .fortran import find_numbers, to_float
from .records import clean
from .stdout import HEADER_LINES, open_text

_VERSION = re.compile(r"^(?:TBtrans\s+)?Version\s*:\s*(\S+)", re.IGNORECASE)
_CURRENT = re.compile(
    r"^(?P<a>.+?)\s+->\s+(?P<b>.+?),\s*V \[V\] / (?P<what>[IP]) \[[AW]\]:\s*"
    r"(?P<v>\S+)\s*V\s*/\s*(?P<x>\S+)\s*[AW]\s*$"
)
_ELEC_BLOCK = re.compile(r"^\s*%block\s+(?:ts|tbt)[._]elec[._](\S+)", re.IGNORECASE)
_ELECS_BLOCK = re.compile(r"^\s*%block\s+(?:ts|tbt)[._]elecs\s*$", re.IGNORECASE)
_ENDBLOCK = re.compile(r"^\s*%endblock", re.IGNORECASE)
_LABEL = re.compile(r"^\s*SystemLabel\s+(\S+)", re.IGNORECASE)


@dataclasses.dataclass
class TbtransOutput:
    """What a TBtrans stdout file says."""

    version: str | None = None
    label: str | None = None
    is_tbtrans: bool = False
    completed_line: bool = False
    end_of_run: bool = False
    aborted: bool = False
    abort_reason: str | None = None
    voltage: float | None = None
    electrodes: list[str] = dataclasses.field(default_factory=list)
    currents: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    n_lines: int = 0

    @property
    def completed(self) -> bool:
        """``tbt: Completed`` and ``>> End of run`` were printed."""
        return self.completed_line and self.end_of_run

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return clean({**dataclasses.asdict(self), "completed": self.completed})


def parse_tbtrans_stdout(path: str | os.PathLike[str]) -> TbtransOutput:
    """Parse a TBtrans stdout file in one pass."""
    out = TbtransOutput()
    in_electrodes = False
    prev = ""
    with open_text(path) as handle:
        for line in handle:
            out.n_lines += 1
            text = line.strip()
            if not text:
                continue
            in_electrodes = _tbtrans_line(out, text, prev, in_electrodes)
            prev = text
    return out


def _tbtrans_line(out: TbtransOutput, text: str, prev: str, in_electrodes: bool) -> bool:
    """Handle one non-blank line; returns whether the electrode list is being read."""
    if out.n_lines <= HEADER_LINES:
        _tbtrans_header(out, text)
    if text.startswith("tbt:"):
        return _tbt_line(out, text[4:], in_electrodes)
    if text.startswith(">> End of run"):
        out.end_of_run = True
    elif text.startswith("Stopping Program") and not out.aborted:
        out.aborted, out.abort_reason = True, prev
    elif "->" in text and "V [V]" in text:
        _current_line(out, text)
    return in_electrodes


def _tbtrans_header(out: TbtransOutput, text: str) -> None:
    match = _VERSION.match(text)
    if match and out.version is None:
        out.version = match.group(1)
    if "WELCOME TO TBtrans" in text or (text.startswith("Executable") and "tbtrans" in text):
        out.is_tbtrans = True
    if text.startswith("reinit: System Label:"):
        out.label = text.partition("Label:")[2].strip() or None


def _tbt_line(out: TbtransOutput, raw: str, in_electrodes: bool) -> bool:
    """A ``tbt:`` line (``raw`` keeps its indentation: electrode properties are indented)."""
    body = raw.strip()
    if body.startswith("Completed"):
        out.completed_line = True
    elif body.startswith("Voltage"):
        numbers = find_numbers(body.partition("=")[2])
        out.voltage = numbers[0] if numbers else None
    elif body.startswith("No applied bias"):
        out.voltage = 0.0
    elif body.startswith(">> Electrodes <<"):
        return True
    elif in_electrodes and body.startswith(">> "):
        out.electrodes.append(body[3:].strip())
    elif in_electrodes and not raw.startswith("   "):
        return False
    return in_electrodes


def _current_line(out: TbtransOutput, text: str) -> None:
    match = _CURRENT.match(text)
    if not match:
        return
    try:
        voltage, value = to_float(match["v"]), to_float(match["x"])
    except ValueError:
        return
    pair = next(
        (c for c in out.currents if c["from"] == match["a"] and c["to"] == match["b"]), None
    )
    if pair is None:
        pair = {"from": match["a"], "to": match["b"], "voltage": voltage,
                "current": None, "power": None}
        out.currents.append(pair)
    pair["current" if match["what"] == "I" else "power"] = value


# -- fdf electrode names -------------------------------------------------------------------


def electrode_names(fdf_lines: Iterable[str]) -> list[str]:
    """Electrode names declared in fdf text: the ``TS.Elecs``/``TBT.Elecs`` list, or the
    names of ``%block TS.Elec.<name>``/``TBT.Elec.<name>`` blocks (first occurrence order)."""
    listed: list[str] = []
    from_blocks: list[str] = []
    in_list = False
    for raw in fdf_lines:
        line = raw.split("#", 1)[0].rstrip()
        if in_list:
            if _ENDBLOCK.match(line):
                in_list = False
            elif line.strip():
                listed.append(line.split()[0])
            continue
        if _ELECS_BLOCK.match(line):
            in_list = True
            continue
        match = _ELEC_BLOCK.match(line)
        if match and match.group(1) not in from_blocks:
            from_blocks.append(match.group(1))
    names = listed or from_blocks
    return list(dict.fromkeys(names))


def electrode_names_from_file(path: str | os.PathLike[str]) -> list[str]:
    """:func:`electrode_names` of an fdf file."""
    with open_text(path) as handle:
        return electrode_names(handle)


def system_label(fdf_lines: Iterable[str]) -> str | None:
    """The ``SystemLabel`` of fdf text, if any."""
    for line in fdf_lines:
        match = _LABEL.match(line)
        if match:
            return match.group(1)
    return None


def split_pair(suffix: str, names: list[str]) -> tuple[str, str] | None:
    """Split ``A-B`` into the electrode names ``(A, B)``.

    With known ``names`` only a split into two of them is accepted; without names the suffix
    is split only if it holds exactly one ``-``. ``None`` when ambiguous or unknown.
    """
    if names:
        for first in names:
            rest = suffix[len(first) + 1:]
            if suffix.startswith(first + "-") and rest in names:
                return first, rest
        return None
    parts = suffix.split("-")
    return (parts[0], parts[1]) if len(parts) == 2 and all(parts) else None


# -- ASCII transmission files --------------------------------------------------------------


def read_transmission(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Energy (eV) and transmission of a ``*.TBT.TRANS_*`` or ``*.TBT.AVTRANS_*`` file.

    A k-resolved file (``# kb= ... w= ...`` blocks) is averaged with the k-point weights;
    returns ``{"energy", "transmission", "k_points", "k_resolved"}``.
    """
    energy: list[float] = []
    weighted: list[float] = []
    weights: list[float] = []
    k_index, position = -1, 0
    with open_text(path) as handle:
        for line in handle:
            text = line.strip()
            if text.startswith("#"):
                if text.startswith("# kb="):
                    k_index += 1
                    weights.append(to_float(text.rpartition("w=")[2].strip()))
                    position = 0
                continue
            parts = text.split()
            if len(parts) < 2:
                continue
            e, t = to_float(parts[0]), to_float(parts[1])
            if k_index <= 0:
                energy.append(e)
                weighted.append(t * (weights[0] if weights else 1.0))
            else:
                weighted[position] += t * weights[k_index]
                position += 1
    total = sum(weights) if weights else 1.0
    return {
        "energy": energy,
        "transmission": [t / total for t in weighted],
        "k_points": max(k_index + 1, 1),
        "k_resolved": bool(weights),
    }


def transmission_files(workdir: Path, names: list[str]) -> list[dict[str, Any]]:
    """The electrode-pair transmission files in ``workdir``, k-averaged ones preferred.

    Each item: ``{"from", "to", "suffix", "path", "averaged"}`` (``from``/``to`` None when the
    suffix cannot be split unambiguously).
    """
    found: dict[str, dict[str, Any]] = {}
    for averaged, pattern in ((True, "*.TBT.AVTRANS_*"), (False, "*.TBT.TRANS_*")):
        for path in sorted(workdir.glob(pattern)):
            suffix = path.name.split("TRANS_", 1)[1]
            if suffix in found or not path.is_file():
                continue
            pair = split_pair(suffix, names)
            found[suffix] = {
                "from": pair[0] if pair else None, "to": pair[1] if pair else None,
                "suffix": suffix, "path": path, "averaged": averaged,
            }
    return list(found.values())
