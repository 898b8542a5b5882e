"""Overlaid line plots as SVG: series in, SVG bytes out (matplotlib, Agg backend).

Framework-free: knows nothing of Django or calculations. Figures are built with
:class:`matplotlib.figure.Figure` directly (no pyplot global state, so safe in threads), and
every line is downsampled to at most ``MAX_POINTS`` points first, so a 100 000-point DOS
costs the browser no more than a short one.
"""

from __future__ import annotations

import dataclasses
import io
import math
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402 - after choosing the backend
from matplotlib.figure import Figure  # noqa: E402

MAX_POINTS = 1000
# Colour-blind-safe (Okabe-Ito); one colour per group (e.g. per calculation).
COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
STYLES = ("-", "--", ":", "-.")


@dataclasses.dataclass(frozen=True)
class Line:
    """One line. Lines of one ``group`` share a colour; only labelled lines enter the legend."""

    x: Sequence[float | None]
    y: Sequence[float | None]
    label: str | None = None
    group: int = 0
    style: int = 0  # index into STYLES, e.g. spin down dashed
    marker: bool = False


@dataclasses.dataclass(frozen=True)
class Plot:
    """A plot: axes labels (with units), lines, and optional limits, ticks and guides."""

    title: str
    xlabel: str
    ylabel: str
    lines: tuple[Line, ...]
    xlim: tuple[float, float] | None = None
    ylim: tuple[float, float] | None = None
    xticks: tuple[tuple[float, ...], tuple[str, ...]] | None = None
    logy: bool = False
    zero_line: str | None = None  # "x" or "y": a dashed guide at x = 0 or y = 0


def downsample(x: Sequence[float | None], y: Sequence[float | None],
               max_points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """At most ``max_points`` points of ``(x, y)`` that keep the line's shape.

    ``None`` becomes NaN (a gap). Long series are cut into ``max_points // 2`` buckets and
    each keeps its lowest and highest point, in order, so narrow peaks (a DOS, a
    transmission resonance) survive where plain striding would drop them.
    """
    xs = np.asarray([math.nan if v is None else v for v in x], dtype=float)
    ys = np.asarray([math.nan if v is None else v for v in y], dtype=float)
    size = min(len(xs), len(ys))
    xs, ys = xs[:size], ys[:size]
    if size <= max_points:
        return xs, ys
    buckets = max(1, max_points // 2)
    keep = []
    for chunk in np.array_split(np.arange(size), buckets):
        values = ys[chunk]
        if np.all(np.isnan(values)):
            keep.append(chunk[0])
            continue
        low, high = chunk[np.nanargmin(values)], chunk[np.nanargmax(values)]
        keep.extend(sorted({low, high}))
    index = np.asarray(keep)
    return xs[index], ys[index]


def render_svg(plot: Plot, *, width: float = 7.0, height: float = 4.2) -> bytes:
    """``plot`` as a standalone SVG document (text drawn as paths: no fonts needed)."""
    figure = Figure(figsize=(width, height), layout="constrained")
    axis = figure.subplots()
    labelled = False
    for number, line in enumerate(plot.lines):
        xs, ys = downsample(line.x, line.y)
        if plot.logy:
            ys = np.where(ys > 0, ys, np.nan)  # a log axis cannot show zero or negatives
        axis.plot(xs, ys, color=COLOURS[line.group % len(COLOURS)], linestyle=STYLES[line.style % len(STYLES)],
                  lw=1.2, marker="o" if line.marker else None, markersize=3.5, label=line.label,
                  gid=f"series-{number}")  # a stable hook in the SVG for tests and styling
        labelled = labelled or bool(line.label)
    _decorate(axis, plot)
    if labelled:
        axis.legend(fontsize="small")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()


def _decorate(axis, plot: Plot) -> None:
    axis.set_title(plot.title)
    axis.set_xlabel(plot.xlabel)
    axis.set_ylabel(plot.ylabel)
    if plot.logy:
        axis.set_yscale("log")
    if plot.xlim:
        axis.set_xlim(*plot.xlim)
    if plot.ylim:
        axis.set_ylim(*plot.ylim)
    if plot.xticks:
        axis.set_xticks(list(plot.xticks[0]), list(plot.xticks[1]))
        axis.grid(axis="x", color="#d0d7de", lw=0.8)
    if plot.zero_line == "x":
        axis.axvline(0.0, color="grey", linestyle="--", lw=0.8)
    elif plot.zero_line == "y":
        axis.axhline(0.0, color="grey", linestyle="--", lw=0.8)
    axis.grid(True, color="#eaeef2", lw=0.5)
