"""A small reader of SIESTA's fdf input format, shared by the server (to validate what a
user submits) and the agent.

fdf labels are case-insensitive and ignore ``.``, ``_`` and ``-`` (``TS.Voltage`` is
``ts_voltage``); comments start with ``#``, ``!`` or ``;``; blocks run from
``%block Name`` to ``%endblock Name``. ``%include`` and ``Label < file`` redirections are
kept as keys (they are resolved by SIESTA in the run folder).
"""

from __future__ import annotations

import dataclasses
import re

_COMMENT = re.compile(r"[#!;]")


class FdfError(ValueError):
    """An fdf text that cannot be read; ``line`` is 1-based."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line


def normalise(label: str) -> str:
    """fdf's label equivalence: case, ``.``, ``_`` and ``-`` do not matter."""
    return re.sub(r"[._-]", "", label).lower()


@dataclasses.dataclass
class Fdf:
    """Keys and blocks of an fdf text, by normalised label, with their line numbers."""

    keys: dict[str, tuple[str, str, int]]  # label -> (original label, value, line)
    blocks: dict[str, tuple[str, list[str], int]]  # label -> (original label, lines, line)

    def get(self, label: str, default: str | None = None) -> str | None:
        found = self.keys.get(normalise(label))
        return found[1] if found else default

    def block(self, label: str) -> list[str] | None:
        found = self.blocks.get(normalise(label))
        return found[1] if found else None


def _strip(line: str) -> str:
    return _COMMENT.split(line, 1)[0].strip()


def parse(text: str) -> Fdf:
    """Read ``text``; raises :class:`FdfError` naming the line of the first problem."""
    keys: dict[str, tuple[str, str, int]] = {}
    blocks: dict[str, tuple[str, list[str], int]] = {}
    open_block: tuple[str, list[str], int] | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = _strip(raw)
        if not line:
            continue
        words = line.split()
        head = words[0].lower()
        if head == "%block":
            if open_block:
                raise FdfError(f"%block {words[1] if len(words) > 1 else ''} inside block {open_block[0]}", number)
            if len(words) < 2:
                raise FdfError("%block without a name", number)
            open_block = (words[1], [], number)
        elif head == "%endblock":
            if not open_block:
                raise FdfError("%endblock without a %block", number)
            if len(words) > 1 and normalise(words[1]) != normalise(open_block[0]):
                raise FdfError(f"%endblock {words[1]} closes block {open_block[0]}", number)
            blocks[normalise(open_block[0])] = open_block
            open_block = None
        elif open_block:
            open_block[1].append(line)
        elif head.startswith("%"):
            keys[normalise(words[0])] = (words[0], " ".join(words[1:]), number)
        else:
            keys[normalise(words[0])] = (words[0], " ".join(words[1:]), number)
    if open_block:
        raise FdfError(f"block {open_block[0]} is never closed (%endblock missing)", open_block[2])
    return Fdf(keys=keys, blocks=blocks)


def species_labels(doc: Fdf) -> list[tuple[int, int, str]]:
    """``ChemicalSpeciesLabel`` as (index, atomic number, label) rows."""
    rows = []
    found = doc.blocks.get(normalise("ChemicalSpeciesLabel"))
    if not found:
        return rows
    _label, lines, start = found
    for offset, line in enumerate(lines, start=1):
        words = line.split()
        try:
            rows.append((int(words[0]), int(words[1]), words[2]))
        except (IndexError, ValueError):
            raise FdfError(f"ChemicalSpeciesLabel row {line!r} is not 'index Z label'", start + offset) from None
    return rows


def set_key(text: str, label: str, value: str) -> str:
    """``text`` with the key ``label`` set to ``value`` (replacing it where it is, else appended)."""
    wanted = normalise(label)
    lines = text.splitlines()
    depth = 0
    for i, raw in enumerate(lines):
        words = _strip(raw).split()
        if not words:
            continue
        head = words[0].lower()
        if head == "%block":
            depth += 1
        elif head == "%endblock":
            depth -= 1
        elif depth == 0 and normalise(words[0]) == wanted:
            lines[i] = f"{words[0]} {value}"
            return "\n".join(lines) + "\n"
    return "\n".join([*lines, f"{label} {value}"]) + "\n"
