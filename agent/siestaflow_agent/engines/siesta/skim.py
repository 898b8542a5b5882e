"""Fast reading of a long SIESTA stdout: most geometry steps are counted, not parsed.

A relaxation or MD output is mostly the same geometry step repeated (from a ``Begin ... opt.
move`` / ``Begin MD step`` line to the next) with other numbers, and the result keeps few steps
in detail (records.py): the thinned steps and cycle summaries, the last ``KEPT_CYCLES`` cycles,
the last cell, forces, stress... This reader takes the file in large binary batches and gives
each step a *form*: its bytes with every digit replaced by ``0`` (numpy, at C speed).

Every decision of the line parser (:class:`StdoutParser`) that changes a counter depends on the
text and on where digits are, not on which digits, but for the number starting an ``scf:`` row
(the iteration, which decides where a cycle starts). So the first step of each form is parsed on
its own, which measures its :class:`StepShape`: what it adds to the counters, which attributes
it sets (:data:`PURE` ones only, whose last value wins) and its iteration numbers. A later step
of that form and those iteration numbers is then only counted (:meth:`StdoutParser.skip_step`)
and remembered as the holder of the values it sets; they are parsed when a step read line by
line may set them otherwise, and at the end.

Everything else goes through the line parser, in file order: the header and the text before the
first step, the steps the records keep, steps that set anything but those values (markers,
final energy...) or do not converge, steps with a byte that is not printable ASCII (decoded as
``open_text`` does), and the last steps, which hold the last ``KEPT_CYCLES`` cycles.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from typing import Any, BinaryIO

import numpy as np

from .records import KEPT_CYCLES, SiestaOutput, StepShape
from .stdout import HEADER_LINES, StdoutParser

BATCH = 8 << 20
"""Bytes read at a time."""

HELD_MAX = 64 << 20
"""Steps waiting for enough cycles after them are read line by line beyond this size."""

FORMS_MAX = 4096
"""Distinct step forms remembered (their shapes are measured again once forgotten)."""

_BOUNDARY = re.compile(rb"\n *+Begin +[!-~]+ +(?:opt\. +move|step)")  # BEGIN_STEP of stdout.py, in ASCII

PURE = ("max_force", "max_force_unconstrained", "stress_kbar", "free_energy", "final_forces",
        "stress_static", "pressure_kbar", "cell", "coordinates_header", "coordinates_unit",
        "species", "positions", "relaxed", "spin_moment", "spin_vector", "ts_voltage")
"""The SiestaOutput attributes whose last value set wins, whatever came before."""

COUNTED = frozenset({"n_lines", "n_scf_lines", "n_ts_scf_lines", "n_converged_lines", "n_unconverged"})
"""The counters a StepShape adds up."""

_ITERATION_WORDS = (b"scf:", b"ts-scf:")  # the number after them decides where a cycle starts

Region = tuple[bytes, int, int]
"""Lines ``data[start:end]`` of a batch (``start`` and ``end`` at line starts)."""

Check = tuple[Callable[[memoryview], Any], Any]
"""What a step of a form must also hold: a getter of its iteration bytes and their values."""


class _Recorder(SiestaOutput):
    """A SiestaOutput that notes the attributes set on it once ``touched`` exists."""

    def __setattr__(self, name: str, value: Any) -> None:
        touched = self.__dict__.get("touched")
        if touched is not None:
            touched.append(name)
        super().__setattr__(name, value)


def lines_of(data: bytes) -> list[str]:
    """The lines of ``data`` as ``open_text`` gives them (bad bytes replaced, only ``\\n``
    ends a line), without their newlines."""
    lines = data.decode("utf-8", errors="replace").split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def parse_alone(data: bytes, out: SiestaOutput | None = None) -> StdoutParser:
    """A fresh line parser fed ``data`` (one or more whole steps, past the header)."""
    parser = StdoutParser()
    if out is not None:
        parser.out = out
    parser.out.n_lines = HEADER_LINES
    parser.feed_lines(lines_of(data))
    return parser


def measure(step: bytes) -> tuple[StepShape, Check] | None:
    """The shape of one whole step of printable ASCII, and what a step of the same form must
    hold to have that shape; None when it is not one step, or sets other attributes."""
    out = _Recorder()
    out.first_max_force = 0.0  # known by then (skip_step checks): not an attribute set here
    object.__setattr__(out, "touched", [])
    parse_alone(step, out).finish()
    touched = set(out.touched)
    if (len(out.steps) != 1 or out.steps.last.kind == "single-point" or touched - COUNTED - set(PURE)
            or out.scf_not_conv_markers or out.final_energy or out.ts_final_energy):
        return None
    shape = StepShape(n_cycles=len(out.cycle_summaries), converged=not out.n_unconverged,
                      n_scf_lines=out.n_scf_lines, n_ts_scf_lines=out.n_ts_scf_lines,
                      n_converged_lines=out.n_converged_lines,
                      fields=tuple(name for name in PURE if name in touched))
    return shape, _iteration_check(step)


def _iteration_check(step: bytes) -> Check:
    """The offsets in ``step`` of the first number after each ``scf:`` / ``ts-scf:`` word
    starting a line, and its bytes."""
    offsets: list[int] = []
    start = 0
    for line in step.split(b"\n"):
        text = line.lstrip(b" ")
        word, _, rest = text.partition(b" ")
        if word in _ITERATION_WORDS and rest.split():
            first = start + len(line) - len(text) + len(word) + 1 + len(rest) - len(rest.lstrip(b" "))
            offsets.extend(range(first, first + len(rest.split()[0])))
        start += len(line) + 1
    getter = operator.itemgetter(*offsets, 0, 0)  # two more: always a tuple
    return getter, getter(memoryview(step))


class _Scanner:
    """Per-batch numpy passes, in buffers kept from one batch to the next (fresh arrays of
    this size cost more in page faults than the arithmetic)."""

    def __init__(self) -> None:
        self._size = 0

    def __call__(self, data: bytes, bounds: list[int]) -> tuple[np.ndarray, list[int], set[int]]:
        """For ``data[:bounds[-1]]``: its copy with each digit replaced by ``0``, the lines of
        each step ``bounds[i]:bounds[i + 1]``, and the steps holding a byte other than printable
        ASCII and newline (their lines are read one by one)."""
        end = bounds[-1]
        if end > self._size:
            self._size = end + (1 << 20)
            self._forms, self._flags = np.empty(self._size, np.uint8), np.empty(self._size, bool)
        codes = np.frombuffer(data, np.uint8, count=end)
        forms, flags = self._forms[:end], self._flags[:end]
        np.subtract(codes, 48, out=forms)  # wraps around below "0"
        np.less(forms, 10, out=flags)
        np.multiply(forms, flags, out=forms)
        np.subtract(codes, forms, out=forms)  # a digit less its value: "0"
        np.equal(codes, 10, out=flags)
        newlines = np.flatnonzero(flags)
        counts = np.diff(np.searchsorted(newlines, bounds)).tolist()
        np.less(codes, 32, out=flags)
        if data.isascii() and np.count_nonzero(flags) == len(newlines):
            return forms, counts, set()
        odd = np.flatnonzero((codes > 126) | (flags & (codes != 10)))
        return forms, counts, set((np.searchsorted(bounds, odd, "right") - 1).tolist())


def _ready(shapes: list[StepShape | None], eof: bool) -> tuple[int, list[int]]:
    """How many steps can be decided (followed by ``KEPT_CYCLES`` cycles, or all at the end
    of the file), and the number of cycles after each step."""
    after, total = [0] * len(shapes), 0
    for i in range(len(shapes) - 1, -1, -1):
        after[i] = total
        total += shapes[i].n_cycles if shapes[i] is not None else 0
    ready = next((i for i, n in enumerate(after) if n < KEPT_CYCLES), len(shapes))
    return (len(shapes) if eof else ready), after


class Skimmer:
    """Feeds a binary SIESTA stdout to a :class:`StdoutParser`, counting the steps it can."""

    def __init__(self) -> None:
        self.parser = StdoutParser()
        self._forms: dict[bytes, tuple[StepShape, Check] | None] = {}
        self._pending: dict[str, Region] = {}  # attribute -> the step holding its last value
        self._scan = _Scanner()

    def read(self, handle: BinaryIO) -> SiestaOutput:
        """Parse the whole of ``handle`` (opened in binary) and return the result."""
        data, more = b"\n", True  # the newline before the first line: every line starts after one
        while more:
            more = handle.read(BATCH)
            data = data + more if more else data
            end = data.rfind(b"\n") + 1 if more else len(data)
            start = self._batch(data, end, eof=not more)
            self._own_pending(data)
            data = data[start - 1:]
        self._flush()
        return self.parser.finish()

    def _batch(self, data: bytes, end: int, eof: bool) -> int:
        """Read the steps of ``data[1:end]`` that can be decided; return where the rest starts."""
        starts = [match.start() + 1 for match in _BOUNDARY.finditer(data, 0, end)]
        first = starts[0] if starts else end
        if first > 1:  # the header, or the rest of a step read line by line
            self._feed((data, 1, first))
        if not starts:
            return end
        bounds = [*starts, end]
        shapes, counts = self._shapes(data, bounds, len(starts) if eof else len(starts) - 1)
        ready, after = _ready(shapes, eof)
        for i in range(ready):
            self._step((data, bounds[i], bounds[i + 1]), counts[i], shapes[i], after[i])
        if not eof and end - bounds[ready] > HELD_MAX:
            self._feed((data, bounds[ready], end))
            return end
        return bounds[ready]

    def _shapes(self, data: bytes, bounds: list[int], complete: int) -> tuple[list[StepShape | None], list[int]]:
        """The shape of each of the first ``complete`` steps (None: read it line by line),
        and the number of lines of each step."""
        forms, counts, odd = self._scan(data, bounds)
        view, shapes = memoryview(data), []
        for i in range(complete):
            start, stop = bounds[i], bounds[i + 1]
            known = None if i in odd else self._form(forms[start:stop].tobytes(), data, start, stop)
            if known is not None and known[1][0](view[start:stop]) == known[1][1]:
                shapes.append(known[0])
            else:
                shapes.append(None)
        return shapes, counts

    def _form(self, form: bytes, data: bytes, start: int, stop: int) -> tuple[StepShape, Check] | None:
        """The measured shape of a step of this form (measured now on ``data[start:stop]``
        the first time)."""
        try:
            return self._forms[form]
        except KeyError:
            pass
        known = measure(data[start:stop])
        if len(self._forms) >= FORMS_MAX:
            self._forms.clear()
        self._forms[form] = known
        return known

    def _step(self, region: Region, n_lines: int, shape: StepShape | None, after: int) -> None:
        """Count one whole step, or feed it line by line."""
        if shape is not None and after >= KEPT_CYCLES and self.parser.skip_step(n_lines, shape):
            for name in shape.fields:
                self._pending[name] = region
        else:
            self._feed(region, shape)

    def _feed(self, region: Region, shape: StepShape | None = None) -> None:
        """Feed lines to the parser. Values held by skimmed steps are set first, but for a
        step of known shape, which sets its own (``shape.fields``) and no other."""
        if shape is None:
            self._flush()
        else:
            for name in shape.fields:
                self._pending.pop(name, None)
        data, start, end = region
        self.parser.feed_lines(lines_of(data[start:end]))

    def _flush(self) -> None:
        """Set the values held by skimmed steps: each step holding one is parsed on its own."""
        holders: dict[int, tuple[Region, list[str]]] = {}
        for name, region in self._pending.items():
            holders.setdefault(id(region), (region, []))[1].append(name)
        out = self.parser.out
        for (data, start, end), names in holders.values():
            alone = parse_alone(data[start:end]).out
            for name in names:
                setattr(out, name, getattr(alone, name))
        self._pending.clear()

    def _own_pending(self, data: bytes) -> None:
        """Copy the held steps out of the batch ``data`` before it is dropped."""
        copies: dict[int, Region] = {}
        for name, region in self._pending.items():
            if region[0] is data:
                if id(region) not in copies:
                    copies[id(region)] = (data[region[1]:region[2]], 0, region[2] - region[1])
                self._pending[name] = copies[id(region)]
