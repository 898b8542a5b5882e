"""Where the files of one SIESTA step live and how its programs are invoked.

``prepare`` writes ``<label>.fdf`` and a small ``siestaflow-step.json`` recording the label,
the programs to run and their stdout file names, so that ``validate``/``extract`` (which only
get the work directory) know what to expect. Without that file (a directory filled by hand or
by a test double) the stdout files are recognised by their headers.

Every program reads the fdf on standard input and writes its standard output to a file:
``siesta < label.fdf > label.out`` and ``tbtrans < label.fdf > tbt_label.out``. The executor
does the redirection itself (no shell): see :class:`Invocation`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

STEP_FILE = "siestaflow-step.json"
PROGRAMS = ("siesta", "tbtrans")
SNIFF_LINES = 400


@dataclasses.dataclass(frozen=True)
class Invocation:
    """One program run: ``argv`` executed in the work directory with ``stdin`` read from and
    ``stdout`` written to the named files (relative to the work directory)."""

    program: str
    argv: list[str]
    stdin: str | None
    stdout: str


@dataclasses.dataclass(frozen=True)
class StepLayout:
    """Label, programs in order and their stdout file names."""

    label: str
    programs: tuple[str, ...]

    @property
    def fdf(self) -> str:
        """The input file every program reads."""
        return f"{self.label}.fdf"

    def stdout(self, program: str) -> str:
        """Name of the stdout file of ``program``."""
        return f"{self.label}.out" if program == "siesta" else f"tbt_{self.label}.out"

    def to_json(self) -> str:
        """Serialised form written to :data:`STEP_FILE`."""
        data = {"label": self.label, "programs": list(self.programs),
                "stdin": self.fdf, "stdout": {p: self.stdout(p) for p in self.programs}}
        return json.dumps(data, indent=1)


def write_layout(workdir: Path, layout: StepLayout) -> None:
    """Record ``layout`` in ``workdir``."""
    (workdir / STEP_FILE).write_text(layout.to_json(), encoding="utf-8")


def read_layout(workdir: Path) -> StepLayout | None:
    """The recorded layout of ``workdir``, if ``prepare`` wrote one."""
    try:
        data = json.loads((workdir / STEP_FILE).read_text(encoding="utf-8"))
        return StepLayout(label=str(data["label"]), programs=tuple(data["programs"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def sniff_program(path: Path) -> str | None:
    """``"siesta"``/``"tbtrans"`` from the header of a stdout file, ``None`` if neither."""
    try:
        with open(path, encoding="utf-8", errors="replace", newline="\n") as handle:
            for number, line in enumerate(handle):
                if number >= SNIFF_LINES:
                    break
                if "WELCOME TO TBtrans" in line or line.startswith("TBtrans Version"):
                    return "tbtrans"
                if line.startswith("Executable") and ":" in line:
                    return "tbtrans" if "tbtrans" in line.lower() else "siesta"
                if "WELCOME TO SIESTA" in line or line.startswith("Siesta Version"):
                    return "siesta"
    except OSError:
        return None
    return None


def stdout_files(workdir: Path) -> tuple[dict[str, Path | None], tuple[str, ...]]:
    """The stdout file of each program and the programs expected to have run.

    With a recorded layout, expected programs come from it and a missing stdout maps to
    ``None``. Otherwise every ``*.out`` file is sniffed and the newest one per program wins.
    """
    layout = read_layout(workdir)
    if layout is not None:
        found: dict[str, Path | None] = {}
        for program in layout.programs:
            path = workdir / layout.stdout(program)
            found[program] = path if path.is_file() else None
        return found, layout.programs
    candidates: dict[str, Path] = {}
    for path in sorted(workdir.glob("*.out"), key=_mtime):
        program = sniff_program(path)
        if program is not None:
            candidates[program] = path
    programs = tuple(p for p in PROGRAMS if p in candidates)
    return dict(candidates), programs


def _mtime(path: Path) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0
