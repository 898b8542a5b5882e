"""Single-pass streaming parser of SIESTA / TranSIESTA standard output.

The file is read once, line by line, with undecodable bytes replaced, so memory does not
grow with the file size (gigabyte outputs of long MD runs) and garbage bytes do not stop the
parse. Each line is dispatched on its first word to a small handler; multi-line tables
(final energies, forces, coordinates, cell, static stress) are read by a "block" handler that
stays active until its table ends.

Markers follow ``shared/siesta-outputs.md``: ``Job completed`` / ``>> End of run``, ``SCF cycle
converged`` (and the ``MinSCFIterations`` "continued" line), ``SCF_NOT_CONV``, the trunk
``:!:``, ``outcoor: Relaxed`` vs ``Final (unrelaxed)``, ``Stopping Program`` for ``die``.

Use :func:`parse_stdout` for a finished file (``progress.py`` reads a growing one's tail).
:func:`parse_stdout` reads through ``skim.py``, which counts most steps of a long run with
:meth:`StdoutParser.skip_step` and feeds the rest here; :func:`parse_lines` feeds every line.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from typing import IO

from .fortran import find_numbers, split_numbers, to_float
from .records import KEPT_UNCONVERGED, GeometryStep, ScfCycle, SiestaOutput, StepShape

HEADER_LINES = 400
"""The version line is searched in this many first lines (trunk builds print it late)."""

_VERSION = re.compile(r"^(?:(Siesta|TBtrans)\s+)?Version\s*:\s*(\S+)", re.IGNORECASE)
_EXECUTABLE = re.compile(r"^Executable\s*:\s*(\S+)")
BEGIN_STEP = re.compile(r"^Begin\s+(\S+)\s+(?:opt\.\s+move|step)\s*=?\s*(\d+)?")
_OUTCOOR = re.compile(r"^outcoor:\s*(.*?)\s*atomic coordinates\s*\(([^)]*)\)", re.IGNORECASE)
_REDATA = re.compile(r"^redata:\s*(.*?)\s*=\s*(.*?)\s*$")

Block = Callable[[str], bool]


def open_text(path: str | os.PathLike[str]) -> IO[str]:
    """Open a SIESTA text output tolerantly: bad bytes replaced, only ``\\n`` ends a line."""
    return open(path, encoding="utf-8", errors="replace", newline="\n")


_last_parsed: tuple[tuple[str, int, int], SiestaOutput] | None = None


def parse_stdout(path: str | os.PathLike[str]) -> SiestaOutput:
    """Parse a SIESTA/TranSIESTA stdout file in one pass.

    The last file parsed is remembered while it is unchanged (same path, size and
    modification time), so a step's validation and extraction read a large output once.
    Treat the answer as read-only."""
    global _last_parsed
    stat = os.stat(path)
    key = (os.path.realpath(path), stat.st_size, stat.st_mtime_ns)
    if _last_parsed is not None and _last_parsed[0] == key:
        return _last_parsed[1]
    from .skim import Skimmer  # skim.py drives this module's parser: imported when used

    with open(path, "rb") as handle:
        out = Skimmer().read(handle)
    _last_parsed = (key, out)
    return out


def parse_lines(lines: Iterable[str]) -> SiestaOutput:
    """Parse an iterable of stdout lines (e.g. an open file)."""
    parser = StdoutParser()
    parser.feed_lines(lines)
    return parser.finish()


class StdoutParser:
    """Line-fed state machine filling a :class:`SiestaOutput`."""

    def __init__(self) -> None:
        self.out = SiestaOutput()
        self._block: Block | None = None
        self._cycle: ScfCycle | None = None
        self._n_cycles = 0
        self._prev = ""
        self._last_marker: str | None = None
        self._handlers: dict[str, Callable[[str, str], None]] = {
            "scf:": self._on_scf,
            "ts-scf:": self._on_scf,
            "SCF": self._on_scf_status,
            "SCF_NOT_CONV:": self._on_scf_not_conv,
            ":!:": self._on_trunk_marker,
            "Max": self._on_max,
            "Stress": self._on_stress,
            "Stress-tensor-Voigt": self._on_stress,
            "siesta:": self._on_siesta,
            "ts:": self._on_ts,
            "redata:": self._on_redata,
            "initatomlists:": self._on_initatomlists,
            "Begin": self._on_begin,
            "outcoor:": self._on_outcoor,
            "outcell:": self._on_outcell,
            "spin": self._on_spin,
            ">>": self._on_end_of_run,
            "Job": self._on_job,
            "Stopping": self._on_stopping,
            "ABNORMAL_TERMINATION": self._on_abnormal,
            "GEOM_NOT_CONV:": self._on_geom_not_conv,
            "OUT_OF_TIME:": self._on_out_of_time,
            "*": self._on_banner,
        }

    # -- driving -----------------------------------------------------------------------

    def feed(self, line: str) -> None:
        """Consume one line (with or without its newline)."""
        out = self.out
        out.n_lines += 1
        line = line.rstrip("\r\n")
        if self._block is not None and self._block(line):
            return
        text = line.strip()
        if not text:
            return
        word, _, rest = text.partition(" ")
        handler = self._handlers.get(word)
        if handler is not None:
            handler(word, rest)
        elif out.n_lines <= HEADER_LINES:
            self._on_header(text)
        self._prev = text

    def feed_lines(self, lines: Iterable[str]) -> None:
        """:meth:`feed` each of ``lines``, with its loop inlined: most lines of a long run
        have no handler, and a method call for each would be half of what they cost."""
        out, handlers = self.out, self._handlers
        number = out.n_lines
        for line in lines:
            if self._block is not None:  # a table's rows: the general path
                out.n_lines = number
                self.feed(line)
                number = out.n_lines
                continue
            number += 1
            text = line.strip()
            if not text:
                continue
            word, _, rest = text.partition(" ")
            handler = handlers.get(word)
            if handler is not None:
                handler(word, rest)
            elif number <= HEADER_LINES:
                self._on_header(text)
            self._prev = text
        out.n_lines = number

    def finish(self) -> SiestaOutput:
        """Close the last SCF cycle and return the result."""
        self._close_cycle()
        return self.out

    def skip_step(self, n_lines: int, shape: StepShape) -> bool:
        """Account for a whole geometry step of ``n_lines`` lines (its ``Begin`` line first)
        without reading them, when the result cannot tell the difference: the thinned records
        keep neither the step nor its cycles, the cycles converged, the header and the first
        max force are past. Otherwise return False having only closed the open cycle, as the
        step's ``Begin`` line does, and the caller feeds the lines. The caller sets the values
        ``shape.fields`` names and keeps the last cycles (``out.cycles``) out of this path."""
        self._close_cycle()
        out = self.out
        if (out.n_lines < HEADER_LINES or not shape.converged or out.steps.keeps(1)
                or out.cycle_summaries.keeps(shape.n_cycles)
                or ("max_force" in shape.fields and out.first_max_force is None)):
            return False
        self._block = None  # the next step's Begin line would end any table
        out.n_lines += n_lines
        out.steps.skip(1)
        out.cycle_summaries.skip(shape.n_cycles)
        self._n_cycles += shape.n_cycles
        out.n_scf_lines += shape.n_scf_lines
        out.n_ts_scf_lines += shape.n_ts_scf_lines
        out.n_converged_lines += shape.n_converged_lines
        return True

    # -- header ------------------------------------------------------------------------

    def _on_header(self, text: str) -> None:
        out = self.out
        match = _VERSION.match(text)
        if match and out.version is None:
            out.version = match.group(2)
            if match.group(1) and match.group(1).lower() == "tbtrans":
                out.program = "tbtrans"
            return
        match = _EXECUTABLE.match(text)
        if match:
            out.executable = match.group(1)
            out.program = "tbtrans" if "tbtrans" in match.group(1).lower() else "siesta"

    def _on_banner(self, word: str, rest: str) -> None:
        if "WELCOME TO" not in rest:
            return
        upper = rest.upper()
        if "TRANSIESTA" in upper:
            self.out.transiesta = True
        elif "TBTRANS" in upper:
            self.out.program = "tbtrans"
        elif "SIESTA" in upper and self.out.program is None:
            self.out.program = "siesta"

    def _on_redata(self, word: str, rest: str) -> None:
        match = _REDATA.match(f"redata: {rest}")
        if match:
            _apply_redata(self.out, match.group(1), match.group(2))
        elif "convergence failure will abort" in rest:
            self.out.scf_must_converge = "not abort" not in rest

    def _on_initatomlists(self, word: str, rest: str) -> None:
        if "Number of atoms" in rest:
            numbers = find_numbers(rest.partition(":")[2])
            if len(numbers) >= 2:
                self.out.n_atoms, self.out.n_orbitals = int(numbers[0]), int(numbers[1])

    # -- SCF ---------------------------------------------------------------------------

    def _on_scf(self, word: str, rest: str) -> None:
        kind = word[:-1]
        try:
            values = split_numbers(rest)
        except ValueError:
            return  # the 4.0 column header, or a line cut by a kill
        if len(values) < 6 or not values[0].is_integer():
            return
        if kind == "scf":
            self.out.n_scf_lines += 1
        else:
            self.out.n_ts_scf_lines += 1
        cycle = self._cycle
        if cycle is None or cycle.kind != kind or cycle.closed or values[0] <= cycle.last_iteration:
            cycle = self._new_cycle(kind)
        cycle.add(values)
        step = self.out.steps.last
        step.energy, step.free_energy = cycle.last("e_ks"), cycle.last("free_energy")
        step.scf_iterations = cycle.last_iteration

    def _new_cycle(self, kind: str) -> ScfCycle:
        self._close_cycle()
        step = self._current_step()
        self._n_cycles += 1
        cycle = ScfCycle(kind=kind, step=len(self.out.steps) - 1, index=self._n_cycles - 1)
        self.out.cycles.append(cycle)
        self._cycle = cycle
        step.scf_converged = None
        return cycle

    def _close_cycle(self) -> None:
        if self._cycle is not None:
            self.out.add_cycle_summary(self._cycle.summary())
            self._cycle = None

    def _set_converged(self, converged: bool | None, marker: str | None = None) -> None:
        cycle = self._cycle
        if cycle is None:
            return
        cycle.converged, cycle.closed = converged, converged is not None
        if marker:
            cycle.marker = marker
        self.out.steps.last.scf_converged = converged  # the open cycle is of the latest step

    def _on_scf_status(self, word: str, rest: str) -> None:
        if rest.startswith("cycle converged"):
            self.out.n_converged_lines += 1
            self._set_converged(True)
        elif rest.startswith("cycle continued"):
            self._set_converged(None)
        elif rest.startswith("Convergence by") and self._cycle is not None:
            self._cycle.criterion = rest.split()[2] if len(rest.split()) > 2 else None

    def _on_scf_not_conv(self, word: str, rest: str) -> None:
        marker = f"{word} {rest}"
        if len(self.out.scf_not_conv_markers) < KEPT_UNCONVERGED:
            self.out.scf_not_conv_markers.append(marker)
        self._last_marker = marker
        self._set_converged(False, marker)

    def _on_trunk_marker(self, word: str, rest: str) -> None:
        if "did not converge" in rest:
            self._on_scf_not_conv(word, rest)

    # -- steps, forces, stress ----------------------------------------------------------

    def _current_step(self) -> GeometryStep:
        if not self.out.steps:
            self.out.steps.append(GeometryStep(index=0, kind="single-point"))
        return self.out.steps.last

    def _on_begin(self, word: str, rest: str) -> None:
        match = BEGIN_STEP.match(f"Begin {rest}")
        if not match:
            return
        self._close_cycle()
        index = int(match.group(2)) if match.group(2) else len(self.out.steps)
        self.out.steps.append(GeometryStep(index=index, kind=match.group(1)))

    def _on_max(self, word: str, rest: str) -> None:
        parts = rest.split()
        try:
            value = to_float(parts[0]) if parts else None
        except ValueError:
            return  # "Max # of overlaps", "Max No. of dictionaries", ...
        if value is None:
            return
        step, out = self._current_step(), self.out
        if len(parts) == 1:
            out.max_force_unconstrained = step.max_force_unconstrained = value
        elif parts[1] == "constrained":
            out.max_force = step.max_force = value
            if out.first_max_force is None:
                out.first_max_force = value

    def _on_stress(self, word: str, rest: str) -> None:
        if "(kbar)" not in rest:
            return
        try:
            values = split_numbers(rest.rpartition(":")[2])
        except ValueError:
            return
        if len(values) == 6:
            self.out.stress_kbar = self._current_step().stress_kbar = values

    # -- "siesta:" and "ts:" lines ----------------------------------------------------------

    def _on_siesta(self, word: str, rest: str) -> None:
        if rest.startswith("FreeEng"):
            value = _value_after_equals(rest)
            if value is not None:
                self.out.free_energy = value
        elif rest.startswith("Final energy"):
            self._block = self._final_energy_row
        elif rest.startswith("Atomic forces"):
            self.out.final_forces = []
            self._block = self._force_row
        elif rest.startswith("Stress tensor (static)"):
            self.out.stress_static = []
            self._block = self._stress_row
        elif rest.startswith("Pressure (static)"):
            self._block = self._pressure_row

    def _on_ts(self, word: str, rest: str) -> None:
        if rest.startswith("Voltage"):
            numbers = find_numbers(rest.partition("=")[2])
            if numbers:
                self.out.ts_voltage = numbers[0]
        elif rest.lstrip().startswith("Total") and "=" in rest:
            value = _value_after_equals(rest)
            if value is not None:
                self.out.ts_final_energy["Total"] = value

    def _final_energy_row(self, line: str) -> bool:
        text = line.strip()
        prefix, _, body = text.partition(":")
        if prefix not in ("siesta", "ts") or "=" not in body:
            self._block = None
            return False
        name, _, value = body.partition("=")
        try:
            number = to_float(value.strip())
        except ValueError:
            return True
        target = self.out.final_energy if prefix == "siesta" else self.out.ts_final_energy
        target[" ".join(name.split())] = number
        return True

    def _force_row(self, line: str) -> bool:
        parts = line.split()
        if len(parts) == 5 and parts[0] == "siesta:" and parts[1].isdigit():
            try:
                self.out.final_forces.append([to_float(p) for p in parts[2:]])
                return True
            except ValueError:
                pass
        self._block = None
        return False

    def _stress_row(self, line: str) -> bool:
        parts = line.split()
        if len(parts) == 4 and parts[0] == "siesta:" and len(self.out.stress_static) < 3:
            try:
                self.out.stress_static.append([to_float(p) for p in parts[1:]])
                return True
            except ValueError:
                pass
        self._block = None
        return False

    def _pressure_row(self, line: str) -> bool:
        parts = line.split()
        if not parts or parts[0] != "siesta:":
            self._block = None
            return False
        if parts[-1].lower() == "kbar" and len(parts) == 4:
            self.out.pressure_kbar = [to_float(parts[1]), to_float(parts[2])]
            self._block = None
        return True

    # -- geometry and spin ---------------------------------------------------------------

    def _on_outcoor(self, word: str, rest: str) -> None:
        match = _OUTCOOR.match(f"outcoor: {rest}")
        if not match:
            return
        kind, out = match.group(1).lower(), self.out
        if "relaxed" in kind:
            out.relaxed = not kind.startswith("final")
        out.coordinates_header = f"outcoor: {rest.strip()}"
        out.coordinates_unit = match.group(2)
        out.species, out.positions = [], []
        self._block = self._coordinate_row

    def _coordinate_row(self, line: str) -> bool:
        parts = line.split()
        try:
            if len(parts) >= 4:
                self.out.positions.append([to_float(p) for p in parts[:3]])
                self.out.species.append(parts[-1])
                return True
        except ValueError:
            pass
        self._block = None
        return False

    def _on_outcell(self, word: str, rest: str) -> None:
        if rest.startswith("Unit cell vectors"):
            self.out.cell = []
            self._block = self._cell_row

    def _cell_row(self, line: str) -> bool:
        cell = self.out.cell if self.out.cell is not None else []
        try:
            values = split_numbers(line)
        except ValueError:
            values = []
        if len(values) == 3 and len(cell) < 3:
            cell.append(values)
            if len(cell) == 3:
                self._block = None
            return True
        self._block = None
        return False

    def _on_spin(self, word: str, rest: str) -> None:
        if not rest.startswith("moment:"):
            return
        body = rest[len("moment:"):].strip()
        if body.startswith("{S}"):  # 5.x: {S} , |S| = { Sx Sy Sz } |S|
            inside, _, after = body.partition("=")[2].partition("}")
            vector, total = find_numbers(inside.replace("{", " ")), find_numbers(after)
        else:  # 4.x: S , {S} = |S| Sx Sy Sz
            numbers = find_numbers(body.partition("=")[2])
            total, vector = numbers[:1], numbers[1:4]
        if total:
            self.out.spin_moment = total[0]
            self.out.spin_vector = vector if len(vector) == 3 else None

    # -- completion and failure markers ---------------------------------------------------

    def _on_end_of_run(self, word: str, rest: str) -> None:
        if rest.startswith("End of run"):
            self.out.end_of_run = True

    def _on_job(self, word: str, rest: str) -> None:
        if rest.strip() == "completed":
            self.out.job_completed = True

    def _on_stopping(self, word: str, rest: str) -> None:
        if not rest.startswith("Program") or self.out.aborted:
            return
        out = self.out
        out.aborted, out.abort_line = True, self._prev
        prev_is_generic = self._prev in ("", "ABNORMAL_TERMINATION")
        out.abort_reason = (self._last_marker or self._prev) if prev_is_generic else self._prev

    def _on_abnormal(self, word: str, rest: str) -> None:
        self.out.abnormal_termination = True

    def _on_geom_not_conv(self, word: str, rest: str) -> None:
        self.out.geom_not_conv = True
        self._last_marker = f"{word} {rest}"

    def _on_out_of_time(self, word: str, rest: str) -> None:
        self.out.out_of_time = True
        self._last_marker = f"{word} {rest}"


def _value_after_equals(text: str) -> float | None:
    """The number after ``=`` in ``name = value``."""
    try:
        return to_float(text.partition("=")[2].split()[0])
    except (ValueError, IndexError):
        return None


def _apply_redata(out: SiestaOutput, key: str, value: str) -> None:
    """Store the ``redata:`` echo lines the validation needs."""
    key = " ".join(key.split())
    if key == "Spin configuration":
        out.spin_configuration = value
    elif key == "Number of spin components":
        out.spin_components = _int(value)
    elif key == "Non-Collinear-spin run" and value == "T":
        out.spin_configuration = "non-collinear"
    elif key == "SpinPolarized (Up/Down) run" and out.spin_configuration is None:
        out.spin_configuration = "collinear" if value == "T" else "none"
    elif key == "Dynamics option":
        out.dynamics = value
    elif key == "Max. number of SCF Iter":
        out.max_scf_iterations = _int(value)
    elif key == "Min. number of SCF Iter":
        out.min_scf_iterations = _int(value)
    elif key in ("Maximum number of optimization moves", "Maximum number of CG moves"):
        out.max_moves = _int(value)
    elif key == "Force tolerance":
        parts = value.split()
        out.force_tolerance = _float(parts[0]) if parts else None
        out.force_tolerance_unit = " ".join(parts[1:]) or None


def _int(text: str) -> int | None:
    try:
        return int(text.split()[0])
    except (ValueError, IndexError):
        return None


def _float(text: str) -> float | None:
    try:
        return to_float(text)
    except ValueError:
        return None
