"""What the SIESTA stdout parser collects: SCF cycles, geometry steps and the whole run.

Plain mutable records filled line by line by :mod:`.stdout` and turned into JSON-ready dicts by
``to_dict``. Memory and the extraction stay bounded for huge files (long MD runs, gigabyte
outputs): only the last :data:`KEPT_CYCLES` cycles keep their full iteration history, and the
per-cycle summaries and per-step records are :class:`Thinned` to at most :data:`KEPT_RECORDS`
evenly spread ones (the counts, the first and the latest stay exact), the unconverged cycles
being counted apart so that none is missed.
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from collections.abc import Iterator
from typing import Any, Generic, TypeVar

KEPT_CYCLES = 20
"""How many of the most recent SCF cycles keep their per-iteration rows."""

KEPT_RECORDS = 1000
"""At most this many cycle summaries, and as many geometry steps, are kept (evenly spread)."""

KEPT_UNCONVERGED = 20
"""The first unconverged SCF cycles listed by name (all of them are counted)."""

T = TypeVar("T")


class Thinned(Generic[T]):
    """An append-only sequence that keeps at most ``cap`` items spread evenly over all that
    were appended: item *i* is kept while *i* is a multiple of ``stride``; when more than
    ``cap`` are kept, every other one goes and ``stride`` doubles. The latest item is always
    kept too (it is still being filled in while a step or cycle runs). ``len`` is the exact
    number appended; iterating yields the kept items in order."""

    def __init__(self, cap: int = KEPT_RECORDS) -> None:
        self.cap, self.stride, self.count = cap, 1, 0
        self._kept: list[T] = []
        self._last: T | None = None

    def append(self, item: T) -> None:
        if self.count % self.stride == 0:
            self._kept.append(item)
            if len(self._kept) > self.cap:
                self._kept = self._kept[::2]
                self.stride *= 2
        self._last = item
        self.count += 1

    def keeps(self, n: int) -> bool:
        """Whether any of the next ``n`` appends would be kept."""
        return n > 0 and -self.count % self.stride < n

    def skip(self, n: int) -> None:
        """Count ``n`` appends that :meth:`keeps` says are not kept, without their items: a
        fast reader that skimmed them. ``last`` is ``None`` until the next :meth:`append`,
        which the caller guarantees (the latest item is always a real one)."""
        assert not self.keeps(n)
        self.count += n
        if n:
            self._last = None

    @property
    def last(self) -> T | None:
        """The latest item appended (None when empty, or right after :meth:`skip`)."""
        return self._last

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[T]:
        yield from self._kept
        if self.count and (self.count - 1) % self.stride:
            yield self._last  # type: ignore[misc]  # the latest, when the stride skipped it

SCF_COLUMNS = ("iteration", "eharris", "e_ks", "free_energy", "dDmax", "ef", "dHmax")
"""Columns of an ``scf:`` row (eV; ``dDmax`` dimensionless; 4.0 has no ``dHmax``)."""

RY_BOHR_TO_EV_ANG = 13.605693122994 / 0.529177210903


def clean(value: Any) -> Any:
    """``value`` with NaN/inf floats replaced by ``None`` (strict JSON), recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return value


@dataclasses.dataclass
class ScfCycle:
    """One SCF cycle (``scf`` for SIESTA, ``ts-scf`` for TranSIESTA) of one geometry step.

    ``converged`` is ``None`` while the cycle is open: after ``SCF cycle converged`` it is
    ``True`` unless SIESTA continues for ``MinSCFIterations``; ``SCF_NOT_CONV`` or the trunk
    ``:!:`` marker make it ``False``.
    """

    kind: str
    step: int
    index: int
    rows: dict[str, list[float | None]] = dataclasses.field(
        default_factory=lambda: {c: [] for c in SCF_COLUMNS}
    )
    converged: bool | None = None
    closed: bool = False
    criterion: str | None = None
    marker: str | None = None

    @property
    def last_iteration(self) -> int:
        """Number of the last iteration (0 before the first row)."""
        its = self.rows["iteration"]
        return int(its[-1]) if its else 0

    def last(self, column: str) -> float | None:
        """Value of ``column`` in the last row."""
        values = self.rows[column]
        return values[-1] if values else None

    def add(self, values: list[float]) -> None:
        """Append one ``scf:`` row (iteration first; missing trailing columns become None)."""
        for i, column in enumerate(SCF_COLUMNS):
            value = values[i] if i < len(values) else None
            self.rows[column].append(int(value) if i == 0 and value is not None else value)

    def summary(self) -> dict[str, Any]:
        """Small description kept for every cycle."""
        return {
            "index": self.index,
            "kind": self.kind,
            "step": self.step,
            "iterations": self.last_iteration,
            "converged": self.converged,
            "criterion": self.criterion,
            "marker": self.marker,
            "e_ks": self.last("e_ks"),
            "free_energy": self.last("free_energy"),
            "dDmax": self.last("dDmax"),
            "dHmax": self.last("dHmax"),
        }

    def to_dict(self) -> dict[str, Any]:
        """Summary plus the full per-iteration columns."""
        return {**self.summary(), "history": {c: list(v) for c, v in self.rows.items()}}


@dataclasses.dataclass(frozen=True)
class StepShape:
    """What one whole geometry step (from its ``Begin`` line to the next) adds to the counters,
    as measured by parsing one step of that shape; ``fields`` are the :class:`SiestaOutput`
    attributes its lines surely set (last value seen wins)."""

    n_cycles: int
    converged: bool
    n_scf_lines: int
    n_ts_scf_lines: int
    n_converged_lines: int
    fields: tuple[str, ...]


@dataclasses.dataclass
class GeometryStep:
    """One geometry or MD step (``Begin CG opt. move = K``) or the single point."""

    index: int
    kind: str
    energy: float | None = None
    free_energy: float | None = None
    max_force: float | None = None
    max_force_unconstrained: float | None = None
    stress_kbar: list[float] | None = None
    scf_iterations: int = 0
    scf_converged: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return dataclasses.asdict(self)


@dataclasses.dataclass
class SiestaOutput:
    """Everything read from one SIESTA/TranSIESTA stdout file."""

    program: str | None = None
    version: str | None = None
    executable: str | None = None
    transiesta: bool = False
    n_lines: int = 0
    # completion
    job_completed: bool = False
    end_of_run: bool = False
    aborted: bool = False
    abort_line: str | None = None
    abort_reason: str | None = None
    abnormal_termination: bool = False
    scf_not_conv_markers: list[str] = dataclasses.field(default_factory=list)  # the first KEPT_UNCONVERGED
    geom_not_conv: bool = False
    out_of_time: bool = False
    # input echo
    n_atoms: int | None = None
    n_orbitals: int | None = None
    spin_configuration: str | None = None
    spin_components: int | None = None
    dynamics: str | None = None
    min_scf_iterations: int | None = None
    max_scf_iterations: int | None = None
    scf_must_converge: bool | None = None
    max_moves: int | None = None
    force_tolerance: float | None = None
    force_tolerance_unit: str | None = None
    ts_voltage: float | None = None
    # SCF
    cycles: deque[ScfCycle] = dataclasses.field(default_factory=lambda: deque(maxlen=KEPT_CYCLES))
    cycle_summaries: Thinned[dict[str, Any]] = dataclasses.field(default_factory=Thinned)
    n_unconverged: int = 0
    first_unconverged: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    n_scf_lines: int = 0
    n_ts_scf_lines: int = 0
    n_converged_lines: int = 0
    # steps, forces, stress
    steps: Thinned[GeometryStep] = dataclasses.field(default_factory=Thinned)
    max_force: float | None = None
    first_max_force: float | None = None
    max_force_unconstrained: float | None = None
    final_forces: list[list[float]] = dataclasses.field(default_factory=list)
    stress_kbar: list[float] | None = None
    stress_static: list[list[float]] = dataclasses.field(default_factory=list)
    pressure_kbar: list[float] | None = None
    # energies
    final_energy: dict[str, float] = dataclasses.field(default_factory=dict)
    ts_final_energy: dict[str, float] = dataclasses.field(default_factory=dict)
    free_energy: float | None = None
    # geometry and spin
    coordinates_header: str | None = None
    relaxed: bool | None = None
    coordinates_unit: str | None = None
    species: list[str] = dataclasses.field(default_factory=list)
    positions: list[list[float]] = dataclasses.field(default_factory=list)
    cell: list[list[float]] | None = None
    spin_moment: float | None = None
    spin_vector: list[float] | None = None

    @property
    def is_trunk(self) -> bool:
        """Written by a pre-4.1 development (``trunk-NNN``) build."""
        return bool(self.version and self.version.startswith("trunk"))

    @property
    def completed(self) -> bool:
        """``Job completed`` and ``>> End of run``; trunk builds only print the latter."""
        if self.job_completed and self.end_of_run:
            return True
        return self.end_of_run and self.is_trunk and not self.aborted

    @property
    def is_relaxation(self) -> bool:
        """A geometry optimisation (CG, Broyden, FIRE, ...), not a single point or MD."""
        if self.dynamics and "optimization" in self.dynamics.lower():
            return True
        return any(step.kind not in ("MD", "FC", "single-point") for step in self.steps)

    @property
    def last_cycle(self) -> ScfCycle | None:
        """The most recent SCF cycle."""
        return self.cycles[-1] if self.cycles else None

    @property
    def total_energy(self) -> float | None:
        """``siesta: Total`` of the final energy block (never ``ts: Total``)."""
        return self.final_energy.get("Total")

    @property
    def fermi_energy(self) -> float | None:
        """``siesta: Fermi`` of the final block, else the Ef column of the last ``scf:`` row."""
        if "Fermi" in self.final_energy:
            return self.final_energy["Fermi"]
        for cycle in reversed(self.cycles):
            if cycle.kind == "scf" and cycle.last("ef") is not None:
                return cycle.last("ef")
        return None

    @property
    def force_tolerance_ev_ang(self) -> float | None:
        """Force tolerance converted to eV/Ang."""
        if self.force_tolerance is None:
            return None
        unit = (self.force_tolerance_unit or "eV/Ang").lower()
        factor = RY_BOHR_TO_EV_ANG if unit.startswith("ry") else 1.0
        return self.force_tolerance * factor

    @property
    def max_atom_force(self) -> float | None:
        """Largest |F| over the atoms of the final force table (None when not printed)."""
        if not self.final_forces:
            return None
        return max(math.sqrt(sum(c * c for c in f)) for f in self.final_forces)

    def add_cycle_summary(self, summary: dict[str, Any]) -> None:
        """Record a closed SCF cycle (its summary may be thinned away; an unconverged one is
        always counted, and listed while fewer than :data:`KEPT_UNCONVERGED` are)."""
        self.cycle_summaries.append(summary)
        if summary["converged"] is not True:
            self.n_unconverged += 1
            if len(self.first_unconverged) < KEPT_UNCONVERGED:
                self.first_unconverged.append(summary)

    def unconverged_cycles(self) -> list[dict[str, Any]]:
        """Summaries of the first SCF cycles that did not end converged (``n_unconverged``
        counts them all)."""
        return list(self.first_unconverged)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready extraction (keys: program, energies, scf, forces, stress, ...)."""
        return clean(
            {
                "program": {"name": self.program, "version": self.version,
                            "transiesta": self.transiesta},
                "status": self._status_dict(),
                "system": {"n_atoms": self.n_atoms, "n_orbitals": self.n_orbitals,
                           "spin": self.spin_configuration, "dynamics": self.dynamics},
                "energies": {
                    "total": self.total_energy,
                    # FreeEng is also echoed before each SCF cycle: final only with the block
                    "free": self.free_energy if self.final_energy else None,
                    "fermi": self.fermi_energy,
                    "fermi_source": "final" if "Fermi" in self.final_energy else "scf",
                    "ts_total": self.ts_final_energy.get("Total"),
                    "components": dict(self.final_energy),
                    "ts_components": dict(self.ts_final_energy), "unit": "eV",
                },
                "scf": self._scf_dict(),
                "forces": {
                    "max_constrained": self.max_force, "first_max_constrained": self.first_max_force,
                    "max_unconstrained": self.max_force_unconstrained,
                    "max_atom_norm": self.max_atom_force, "final": self.final_forces,
                    "tolerance": self.force_tolerance_ev_ang, "unit": "eV/Ang",
                },
                "stress": {"voigt_kbar": self.stress_kbar, "static_ev_ang3": self.stress_static or None,
                           "pressure_kbar": self.pressure_kbar},
                "geometry": self._geometry_dict(),
                "relaxation": {
                    "is_relaxation": self.is_relaxation, "relaxed": self.relaxed,
                    "max_moves": self.max_moves, "force_tolerance": self.force_tolerance_ev_ang,
                    "n_steps": len(self.steps), "steps_stride": self.steps.stride,
                    "steps": [s.to_dict() for s in self.steps],
                },
                "spin": {"configuration": self.spin_configuration, "moment": self.spin_moment,
                         "vector": self.spin_vector},
                "transport": {"ts_voltage": self.ts_voltage},
            }
        )

    def _status_dict(self) -> dict[str, Any]:
        return {
            "completed": self.completed, "job_completed": self.job_completed,
            "end_of_run": self.end_of_run, "aborted": self.aborted,
            "abort_reason": self.abort_reason, "scf_not_conv_markers": self.scf_not_conv_markers,
            "geom_not_conv": self.geom_not_conv, "out_of_time": self.out_of_time,
        }

    def _scf_dict(self) -> dict[str, Any]:
        return {
            "min_iterations": self.min_scf_iterations, "max_iterations": self.max_scf_iterations,
            "must_converge": self.scf_must_converge, "n_cycles": len(self.cycle_summaries),
            "n_scf_lines": self.n_scf_lines, "n_ts_scf_lines": self.n_ts_scf_lines,
            "all_converged": bool(self.cycle_summaries) and not self.n_unconverged,
            "n_unconverged": self.n_unconverged, "unconverged": self.unconverged_cycles(),
            "summaries_stride": self.cycle_summaries.stride, "summaries": list(self.cycle_summaries),
            "cycles": [c.to_dict() for c in self.cycles],
        }

    def _geometry_dict(self) -> dict[str, Any]:
        return {
            "header": self.coordinates_header, "unit": self.coordinates_unit,
            "species": self.species, "positions": self.positions,
            "cell": self.cell, "cell_unit": "Ang",
        }
