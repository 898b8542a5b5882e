"""Comparing calculations side by side: a table of key results and overlaid plots.

Reads only. The data come from what the agents stored (``calculations.ingest``): each
step's extracted dict (``Result`` key ``"extracted"``) and the analyses' data
(``AnalysisResult``). Only the JSON members needed are read from the database (key
transforms), so a band structure's eigenvalues are loaded for the last step only and a
1000-iteration SCF history never. A comparison and its SVG plots are cached per *data
version* (the calculations' and their results' ``updated_at``), so a new result, a renamed
or a finished calculation is never hidden by the cache.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Callable, Sequence
from functools import reduce
from operator import or_
from typing import Any

import numpy as np
from django.core.cache import cache
from django.db.models import Count, Exists, F, Max, OuterRef, Q
from siestaflow_agent.analyses import catalogue

from calculations.models import CHAIN_LEVEL, AnalysisResult, Calculation, Result
from siestaflow.lib.plots import Line, Plot, downsample, render_svg

log = logging.getLogger(__name__)

MAX_COMPARED = 8
ENERGY_WINDOW = (-10.0, 10.0)  # eV around the Fermi level, as the agent's own plots
CACHE_SECONDS = 24 * 3600
_CACHE_SCHEMA = "compare-v1"

# Scalars of each step's extracted dict (SIESTA names first, then PySCF's).
_SCALARS = {
    "total": "data__energies__total", "free": "data__energies__free", "fermi": "data__energies__fermi",
    "n_atoms": "data__system__n_atoms", "max_force": "data__forces__max_constrained",
    "converged": "data__scf__all_converged", "scf_iterations": "data__scf__n_scf_lines",
    "gap": "data__eigenvalues__gap", "relaxed": "data__relaxation__relaxed",
    "bands_fermi": "data__bands__fermi",
    "pyscf_total": "data__total_energy_ev", "pyscf_converged": "data__converged",
    "pyscf_iterations": "data__iterations", "pyscf_gap": "data__gap_ev",
}
_PLOTTED_ANALYSES = ("relaxation", "transmission", "iv_curve")


class ComparisonError(ValueError):
    """The request cannot be compared; ``str()`` tells the user why."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclasses.dataclass
class Compared:
    """One calculation's data for the comparison."""

    calc: Calculation
    steps: list[dict[str, Any]]  # per step, the scalars of its latest attempt, in step order
    last: dict[str, Any]  # the last step: scalars plus its bands and DOS
    analyses: dict[str, dict[str, Any]]  # analysis name -> data (last step, or the chain's)

    @property
    def label(self) -> str:
        name = self.calc.name if len(self.calc.name) <= 32 else self.calc.name[:31] + "…"
        return f"#{self.calc.pk} {name}"


@dataclasses.dataclass
class PlotEntry:
    kind: str
    plot: Plot
    present: list[str]
    absent: list[str]


@dataclasses.dataclass
class Comparison:
    """What the compare page shows: calculations in the order asked, ids not found, the
    table rows (label, one value per calculation) and the plots."""

    calculations: list[Calculation]
    missing: list[int]
    rows: list[tuple[str, list[str]]]
    plots: list[PlotEntry]
    version: str

    @property
    def ids(self) -> list[int]:
        return [c.pk for c in self.calculations]

    def plot(self, kind: str) -> PlotEntry | None:
        return next((p for p in self.plots if p.kind == kind), None)


# --- reading ---------------------------------------------------------------------------


def parse_ids(raw: Sequence[str]) -> list[int]:
    """The calculation ids of ``?ids=1&ids=2`` (or ``?ids=1,2``), deduplicated, in order."""
    ids: list[int] = []
    for part in (p.strip() for chunk in raw for p in chunk.split(",")):
        if not part:
            continue
        if not (part.isascii() and part.isdigit() and len(part) <= 12):
            raise ComparisonError(f"“{part[:40]}” is not a calculation id: ids are whole numbers.")
        if int(part) not in ids:
            ids.append(int(part))
    if not ids:
        raise ComparisonError("Pick at least one calculation to compare.")
    if len(ids) > MAX_COMPARED:
        raise ComparisonError(f"Compare at most {MAX_COMPARED} calculations at once ({len(ids)} were given).")
    return ids


def with_analyses(queryset):
    """The calculations of ``queryset`` that have at least one successful analysis."""
    ok = AnalysisResult.objects.filter(calculation=OuterRef("pk"), status=AnalysisResult.Status.OK)
    return queryset.filter(Exists(ok))


def analysis_names(calc_ids: Sequence[int]) -> dict[int, list[str]]:
    """The titles of the successful analyses of each calculation, in catalogue order (one query)."""
    found: dict[int, set[str]] = {}
    rows = (AnalysisResult.objects.filter(calculation_id__in=calc_ids, status=AnalysisResult.Status.OK)
            .values_list("calculation_id", "name").distinct().order_by())
    for calc_id, name in rows:
        found.setdefault(calc_id, set()).add(name)
    order = [a.id for a in catalogue.ANALYSES]
    return {calc_id: [catalogue.CATALOGUE[n].title if n in catalogue.CATALOGUE else n
                      for n in sorted(names, key=lambda n: (order.index(n) if n in order else len(order), n))]
            for calc_id, names in found.items()}


def compare(*, user, ids: Sequence[int]) -> Comparison:
    """The comparison of the calculations ``ids`` that ``user`` may see (cached per data
    version). Ids not found, or not visible, are listed in ``missing``; none found at all
    raises ``ComparisonError`` (404)."""
    found = {c.pk: c for c in Calculation.objects.visible_to(user).filter(pk__in=ids)
             .select_related("cluster").defer("config", "structure", "progress")}
    calcs = [found[i] for i in ids if i in found]
    missing = [i for i in ids if i not in found]
    if not calcs:
        listed = ", ".join(f"#{i}" for i in ids)
        raise ComparisonError(f"No calculation {listed}: it does not exist or you may not see it.", status=404)
    version = _data_version(calcs)
    key = f"{_CACHE_SCHEMA}:{','.join(map(str, ids))}:{version}"
    comparison = cache.get(key)
    if comparison is None:
        comparison = _assemble(calcs, version)
        cache.set(key, comparison, CACHE_SECONDS)
    comparison.missing = missing
    return comparison


def plot_svg(comparison: Comparison, kind: str) -> bytes | None:
    """The SVG of one of the comparison's plots (cached per data version); None if absent."""
    entry = comparison.plot(kind)
    if entry is None:
        return None
    key = f"{_CACHE_SCHEMA}:svg:{kind}:{','.join(map(str, comparison.ids))}:{comparison.version}"
    return cache.get_or_set(key, lambda: render_svg(entry.plot), CACHE_SECONDS)


def _data_version(calcs: list[Calculation]) -> str:
    stamps = (Result.objects.filter(calculation__in=calcs).values("calculation_id")
              .annotate(latest=Max("updated_at"), n=Count("id")).order_by("calculation_id"))
    # A calculation's own changes (name, state) move its updated_at; its results' their own.
    parts = [f"{c.pk}:{c.updated_at.isoformat()}:{c.step_count}" for c in sorted(calcs, key=lambda c: c.pk)]
    parts += [f"{s['calculation_id']}:{s['latest'].isoformat()}:{s['n']}" for s in stamps]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:24]


def _assemble(calcs: list[Calculation], version: str) -> Comparison:
    compared = _load(calcs)
    rows = [(label, [_show(value(c)) for c in compared]) for label, value in TABLE]
    plots = []
    for kind, build in PLOTS.items():
        plot, present = _plot(kind, build, compared)
        if plot is not None:
            absent = [c.label for c in compared if c.label not in present]
            plots.append(PlotEntry(kind, plot, present, absent))
    return Comparison(calculations=calcs, missing=[], rows=rows, plots=plots, version=version)


_MALFORMED = (KeyError, IndexError, TypeError, ValueError)


def _plot(kind: str, build, compared: list[Compared]) -> tuple[Plot | None, list[str]]:
    """One plot, downsampled. Agents send the data: a calculation whose series are malformed
    is left out of the plot (and logged), never failing the page."""
    try:
        plot, present = build(compared)
        return (dataclasses.replace(plot, lines=tuple(_small(line) for line in plot.lines)) if plot else None,
                present)
    except _MALFORMED:
        if len(compared) == 1:
            log.warning("calculation %s: its %s data are malformed", compared[0].calc.pk, kind, exc_info=True)
            return None, []
    good = [c for c in compared if _plot(kind, build, [c])[0] is not None]
    return _plot(kind, build, good) if good else (None, [])


def _small(line: Line) -> Line:
    """``line`` downsampled now, so the cached comparison stays small (and numeric)."""
    xs, ys = downsample(line.x, line.y)
    return dataclasses.replace(line, x=xs.tolist(), y=ys.tolist())


def _load(calcs: list[Calculation]) -> list[Compared]:
    """Three queries: every step's scalars, the last steps' series, the analyses' data."""
    steps: dict[int, dict[int, dict]] = {c.pk: {} for c in calcs}
    scalars = (Result.objects.filter(calculation__in=calcs, key="extracted", step__gte=0)
               .order_by("step", "attempt")
               .values("calculation_id", "step", "attempt", **{k: F(v) for k, v in _SCALARS.items()}))
    for row in scalars:
        steps[row["calculation_id"]][row["step"]] = row  # a later attempt replaces an earlier one
    last = {pk: rows[max(rows)] for pk, rows in steps.items() if rows}
    series = {}
    if last:
        wanted = reduce(or_, (Q(calculation_id=pk, step=r["step"], attempt=r["attempt"]) for pk, r in last.items()))
        for row in (Result.objects.filter(wanted, key="extracted")
                    .values("calculation_id", bands=F("data__bands"), dos=F("data__dos"))):
            series[row["calculation_id"]] = row
    analyses: dict[int, dict[str, Any]] = {c.pk: {} for c in calcs}
    where = reduce(or_, (Q(calculation_id=c.pk, step__in=[last[c.pk]["step"] if c.pk in last else 0, CHAIN_LEVEL])
                         for c in calcs))
    for row in (AnalysisResult.objects.filter(where, name__in=_PLOTTED_ANALYSES, status=AnalysisResult.Status.OK)
                .order_by("attempt").values("calculation_id", "name", "data")):
        analyses[row["calculation_id"]][row["name"]] = row["data"]
    return [Compared(calc=c, steps=[steps[c.pk][k] for k in sorted(steps[c.pk])],
                     last={**last.get(c.pk, {}), **series.get(c.pk, {})}, analyses=analyses[c.pk])
            for c in calcs]


# --- the table -------------------------------------------------------------------------


def _first(*values):
    return next((v for v in values if v is not None), None)


def _show(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value == 0 or abs(value) >= 1e-3:  # SIESTA prints energies to 1e-6 eV: keep them all
            return f"{value:.6f}".rstrip("0").rstrip(".")
        return f"{value:.4g}"
    return str(value)


def _per_atom(c: Compared):
    total, atoms = c.last.get("total"), c.last.get("n_atoms")
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (total, atoms))
    return total / atoms if numbers and atoms else None


TABLE: list[tuple[str, Callable[[Compared], Any]]] = [
    ("State", lambda c: c.calc.get_state_display()),
    ("Engine", lambda c: c.calc.engine),
    ("Cluster", lambda c: c.calc.cluster.name),
    ("Steps with results", lambda c: f"{len(c.steps)} of {c.calc.step_count}"),
    ("Total energy (eV)", lambda c: _first(c.last.get("total"), c.last.get("pyscf_total"))),
    ("Free energy (eV)", lambda c: c.last.get("free")),
    ("Energy per atom (eV)", _per_atom),
    ("Fermi energy (eV)", lambda c: _first(c.last.get("fermi"), c.last.get("bands_fermi"))),
    ("Band gap (eV)", lambda c: _first(c.last.get("gap"), c.last.get("pyscf_gap"))),
    ("Max force (eV/Å)", lambda c: c.last.get("max_force")),
    ("SCF converged", lambda c: _first(c.last.get("converged"), c.last.get("pyscf_converged"))),
    ("SCF iterations", lambda c: _first(c.last.get("scf_iterations"), c.last.get("pyscf_iterations"))),
    ("Geometry relaxed", lambda c: c.last.get("relaxed")),
]


# --- the plots -------------------------------------------------------------------------


def _number(value) -> float | None:
    try:
        return float(str(value).split()[0])
    except (ValueError, IndexError):
        return None


def _chain_energy(compared: list[Compared]):
    chains = [c for c in compared if c.calc.chain and sum(s.get("total") is not None for s in c.steps) >= 2]
    if not chains:
        return None, []
    parameters = {(c.calc.chain.get("parameter"), c.calc.chain.get("unit")) for c in chains}
    by_value = len(parameters) == 1
    lines = []
    for group, c in enumerate(chains):
        values = c.calc.chain.get("values") or []
        points = [((_number(values[s["step"]]) if by_value and s["step"] < len(values) else s["step"]), s["total"])
                  for s in c.steps if s.get("total") is not None]
        points = sorted((x, e) for x, e in points if x is not None)
        lowest = min(e for _, e in points)
        lines.append(Line([x for x, _ in points], [e - lowest for _, e in points], c.label, group, marker=True))
    parameter, unit = next(iter(parameters)) if by_value else ("chain step", "")
    xlabel = f"{parameter} ({unit})" if unit else str(parameter)
    return Plot("Total energy along the chain", xlabel, "E − min E of each chain (eV)", tuple(lines)), \
        [c.label for c in chains]


def _relaxation(compared: list[Compared], *, force: bool):
    lines, present = [], []
    for group, c in enumerate(compared):
        data = c.analyses.get("relaxation") or {}
        x, y = data.get("step") or [], data.get("max_force" if force else "energy") or []
        if len(x) < 2 or not any(v is not None for v in y):
            continue
        if not force:
            final = next(v for v in reversed(y) if v is not None)
            y = [None if v is None else v - final for v in y]
        lines.append(Line(x, y, c.label, group, marker=True))
        present.append(c.label)
    if not lines:
        return None, []
    if force:
        return Plot("Maximum force during relaxation", "geometry step", "max force (eV/Å)", tuple(lines),
                    logy=True), present
    return Plot("Energy during relaxation", "geometry step", "E − E(last step) (eV)", tuple(lines)), present


def _bands(compared: list[Compared]):
    lines, present, ticks = [], [], None
    for group, c in enumerate(compared):
        bands = c.last.get("bands") or {}
        if not bands.get("eigenvalues") or bands.get("fermi") is None:
            continue
        k = np.asarray(bands["k"] if bands.get("path") else range(bands["nk"]), dtype=float)
        span = (k[-1] - k[0]) or 1.0
        x = (k - k[0]) / span  # paths of different cells overlay as fractions of their length
        if ticks is None and bands.get("path") and bands.get("ticks"):
            ticks = (tuple((t - k[0]) / span for t in bands["ticks"]), tuple(bands["labels"]))
        for spin, eig in enumerate(bands["eigenvalues"][:2]):
            energies = np.asarray(eig, dtype=float) - bands["fermi"]  # (nk, nbands)
            inside = (energies.min(axis=0) < ENERGY_WINDOW[1]) & (energies.max(axis=0) > ENERGY_WINDOW[0])
            for n, band in enumerate(np.flatnonzero(inside)):
                label = c.label if spin == 0 and n == 0 else None
                lines.append(Line(x.tolist(), energies[:, band].tolist(), label, group, style=spin))
        present.append(c.label)
    if not lines:
        return None, []
    return Plot("Band structures", "k-path (fraction of its length)", "E − E_F (eV)", tuple(lines),
                ylim=ENERGY_WINDOW, xlim=(0.0, 1.0), xticks=ticks, zero_line="y"), present


def _dos(compared: list[Compared]):
    lines, present = [], []
    for group, c in enumerate(compared):
        dos, fermi = c.last.get("dos") or {}, _first(c.last.get("fermi"), c.last.get("bands_fermi"))
        if not dos.get("energy") or fermi is None:
            continue
        energy = np.asarray(dos["energy"], dtype=float) - fermi
        inside = (energy >= ENERGY_WINDOW[0] - 0.5) & (energy <= ENERGY_WINDOW[1] + 0.5)
        for spin, column in enumerate(dos.get("dos", [])[:2]):
            sign = -1.0 if spin == 1 else 1.0  # spin down drawn downwards
            values = sign * np.asarray(column, dtype=float)
            lines.append(Line(energy[inside].tolist(), values[inside].tolist(),
                              c.label if spin == 0 else None, group, style=spin))
        present.append(c.label)
    if not lines:
        return None, []
    return Plot("Density of states", "E − E_F (eV)", "DOS (states/eV; spin down negative)", tuple(lines),
                xlim=ENERGY_WINDOW, zero_line="x"), present


def _transmission(compared: list[Compared]):
    lines, present = [], []
    for group, c in enumerate(compared):
        pairs = (c.analyses.get("transmission") or {}).get("pairs") or []
        for style, pair in enumerate(pairs):
            name = f"{pair['from']} → {pair['to']}" if pair.get("from") else pair.get("suffix", "")
            lines.append(Line(pair["energy"], pair["transmission"], f"{c.label}: {name}", group, style=style))
        if pairs:
            present.append(c.label)
    if not lines:
        return None, []
    return Plot("Transmission", "E − E_F (eV)", "transmission T(E)", tuple(lines), zero_line="x"), present


_CURRENT_UNITS = ((1.0, "A"), (1e-3, "mA"), (1e-6, "µA"), (1e-9, "nA"), (1e-12, "pA"))


def _current_unit(currents: list[float]) -> tuple[float, str]:
    """The largest unit in which the biggest current is at least 1 (readable tick labels)."""
    biggest = max((abs(i) for i in currents), default=0.0)
    return next(((s, u) for s, u in _CURRENT_UNITS if biggest >= s), _CURRENT_UNITS[-1])


def _iv(compared: list[Compared]):
    curves = [(group, c, pair) for group, c in enumerate(compared)
              for pair in (c.analyses.get("iv_curve") or {}).get("pairs") or []]
    if not curves:
        return None, []
    scale, unit = _current_unit([i for _, _, p in curves for i in p["current"] if i is not None])
    lines = tuple(Line(p["voltage"], [None if i is None else i / scale for i in p["current"]],
                       f"{c.label}: {p['from']} → {p['to']}", group, marker=True)
                  for group, c, p in curves)
    present = list(dict.fromkeys(c.label for _, c, _ in curves))
    return Plot("I–V curves", "bias voltage (V)", f"current ({unit})", lines, zero_line="y"), present


PLOTS: dict[str, Callable[[list[Compared]], tuple[Plot | None, list[str]]]] = {
    "chain-energy": _chain_energy,
    "relaxation-energy": lambda compared: _relaxation(compared, force=False),
    "relaxation-force": lambda compared: _relaxation(compared, force=True),
    "bands": _bands,
    "dos": _dos,
    "transmission": _transmission,
    "iv": _iv,
}
