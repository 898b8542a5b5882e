"""The engine interface: what every numerical program plugged into the agent provides.

An engine turns a calculation step's specification into input files and a command,
and afterwards decides from the files on disk whether the run is valid and extracts the
small part of the results that matters. Engines never talk to the server and never run
processes themselves: the executor runs the command, the loop reports.
"""

from __future__ import annotations

import abc
import dataclasses
import enum
from pathlib import Path
from typing import Any


class FailureClass(enum.StrEnum):
    """Why a run is not valid. Shared with the server (stored on failed calculations)."""

    SCF_NOT_CONVERGED = "scf_not_converged"
    GEOMETRY_NOT_CONVERGED = "geometry_not_converged"
    ABORTED = "aborted"
    TIMEOUT = "timeout"
    OUT_OF_MEMORY = "out_of_memory"
    KILLED = "killed"
    MISSING_OUTPUT = "missing_output"
    UNKNOWN = "unknown"


@dataclasses.dataclass(frozen=True)
class Validation:
    """The verdict on one finished run."""

    ok: bool
    failure_class: FailureClass | None = None
    reason: str = ""
    details: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class StepSpec:
    """Everything an engine needs to prepare one step of a calculation.

    ``config`` is the calculation's configuration as the server sends it
    (``{"fdf": "...", "options": {...}}`` for SIESTA), ``parameter``/``value`` the chain
    parameter of this step (``None`` for a single run), ``molecule`` the structure
    (``{"species": [...], "positions": [[x, y, z], ...], "cell": None | 3x3}``, Å).
    """

    calculation_id: int
    name: str
    config: dict[str, Any]
    molecule: dict[str, Any] | None = None
    step_index: int = 0
    step_count: int = 1
    parameter: str | None = None
    value: Any = None
    unit: str = ""  # of the chain's values (e.g. "V"; "deg" for a rotation)
    ntasks: int = 1


class Engine(abc.ABC):
    """One numerical program. Subclasses are registered by ``name`` in ``engines.REGISTRY``."""

    name: str = ""

    @abc.abstractmethod
    def prepare(self, spec: StepSpec, workdir: Path) -> None:
        """Write the input files of ``spec`` into ``workdir`` (already holding staged files)."""

    @abc.abstractmethod
    def command(self, spec: StepSpec, workdir: Path, commands: dict[str, str]) -> list[list[str]]:
        """The command lines to run in ``workdir``, in order, from the configured templates."""

    @abc.abstractmethod
    def validate(self, workdir: Path, exit_code: int | None) -> Validation:
        """Decide from the files in ``workdir`` (and the exit code) whether the run is valid."""

    @abc.abstractmethod
    def extract(self, workdir: Path) -> dict[str, Any]:
        """The extracted results (JSON-serialisable), in one pass per file."""

    def progress(self, workdir: Path) -> dict[str, Any] | None:
        """Cheap progress of a running step (e.g. current SCF iteration and energy)."""
        return None

    def next_step_files(self, workdir: Path, carry: list[str]) -> list[Path]:
        """The files a following chain step needs (glob patterns in ``carry``)."""
        found: list[Path] = []
        for pattern in carry:
            found.extend(sorted(p for p in workdir.glob(pattern) if p.is_file()))
        return found

    def raw_files(self, workdir: Path) -> list[Path]:
        """Files that may be deleted once the server has the extracted results."""
        return []
