"""A calculation's report: what its report page, PDF and ZIP show.

Framework-light: :func:`collect` reads the rows once (three queries); the other functions
take the collected :class:`Report` and write to file objects, so the views only wrap them
in responses and the tests call them directly.

Resumed calculations keep the rows of every attempt; a report shows, per step, the newest
attempt that produced it (a chain resumed at step 3 still reports steps 1 and 2).
"""

from __future__ import annotations

import json
import math
import shutil
import zipfile
from dataclasses import dataclass
from typing import IO, Any

from siestaflow_agent.analyses import catalogue

from calculations.exports import csv_text, flatten
from calculations.models import CHAIN_LEVEL, AnalysisResult, Artifact, Calculation, Result

IMAGE_TYPES = {".svg": "image/svg+xml", ".png": "image/png"}
PAGE_SIZE = (8.27, 11.69)  # A4 portrait, inches
SUMMARY_ANALYSIS = "energy_summary"  # shown on the title page, not on a page of its own


@dataclass
class Report:
    """The newest rows per step of one calculation."""

    calc: Calculation
    results: list[Result]
    analyses: list[AnalysisResult]
    artifacts: list[Artifact]


def _newest(rows, key) -> list:
    """Per ``key(row)``, the row of the highest attempt; in (step, key) order."""
    best: dict = {}
    for row in rows:
        current = best.get(key(row))
        if current is None or row.attempt > current.attempt:
            best[key(row)] = row
    return sorted(best.values(), key=lambda r: (r.step == CHAIN_LEVEL, r.step, key(r)))


def collect(calc: Calculation) -> Report:
    """The report's rows of ``calc``."""
    return Report(
        calc=calc,
        results=_newest(calc.results.all(), lambda r: (r.step, r.key)),
        analyses=_newest(calc.analysis_results.all(), lambda a: (a.step, a.name)),
        artifacts=_newest(calc.artifacts.all(), lambda a: (a.step, a.name)),
    )


def step_label(calc: Calculation, step: int) -> str:
    """"whole chain", "step 2 of 5 (TS.Voltage = 0.2 V)" or "" for a single step."""
    if step == CHAIN_LEVEL:
        return "whole chain"
    if not calc.chain:
        return ""
    values = calc.chain["values"]
    value = values[step] if 0 <= step < len(values) else "?"
    unit = f" {calc.chain.get('unit')}" if calc.chain.get("unit") else ""
    return f"step {step + 1} of {len(values)} ({calc.chain['parameter']} = {value}{unit})"


def title(analysis_id: str) -> str:
    """The catalogue title of an analysis (its id when the catalogue no longer has it)."""
    found = catalogue.CATALOGUE.get(analysis_id)
    return found.title if found else analysis_id


# --- what the page shows --------------------------------------------------------------------


def shown(value):
    """A float to 10 significant digits (more than SIESTA prints), anything else as it is."""
    return float(f"{value:.10g}") if isinstance(value, float) and math.isfinite(value) else value


def _shown_scalars(data) -> list[tuple[str, Any]]:
    return [(name, shown(value)) for name, value in flatten(data).items()]


def energy_rows(report: Report) -> list[dict[str, Any]]:
    """One row per step: total, free and Fermi energies (eV) and the energy per atom.

    From the energy summary analysis where it ran, else from the extracted energies."""
    rows: dict[int, dict[str, Any]] = {}
    for result in report.results:
        energies = result.data.get("energies") if isinstance(result.data, dict) else None
        if isinstance(energies, dict) and result.step != CHAIN_LEVEL:
            rows[result.step] = {"total": energies.get("total"), "free": energies.get("free"),
                                 "fermi": energies.get("fermi"), "total_per_atom": None}
    for analysis in report.analyses:
        if analysis.name == SUMMARY_ANALYSIS and analysis.status == AnalysisResult.Status.OK:
            data = analysis.data
            rows[analysis.step] = {k: data.get(k) for k in ("total", "free", "fermi", "total_per_atom")}
    return [{"step": step, "label": step_label(report.calc, step) or "result",
             **{name: shown(value) for name, value in values.items()}}
            for step, values in sorted(rows.items())]


def _series(data: dict) -> dict[str, list[float]]:
    """Top-level lists of numbers in ``data`` (what can be drawn as lines)."""
    found = {}
    for name, value in (data or {}).items():
        if (isinstance(value, list) and len(value) > 1
                and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)):
            found[name] = value
    return found


def analysis_tables(report: Report) -> list[dict[str, Any]]:
    """Per analysis row: its title, step, status, message, scalars and numeric series."""
    tables = []
    for analysis in report.analyses:
        tables.append({
            "analysis": analysis, "title": title(analysis.name),
            "step_label": step_label(report.calc, analysis.step),
            "scalars": _shown_scalars(analysis.data),
            "series": {name: len(values) for name, values in _series(analysis.data).items()},
        })
    return tables


def result_tables(report: Report) -> list[dict[str, Any]]:
    """Per extracted result: its step, key and scalars (nested keys joined with dots)."""
    return [{"result": r, "step_label": step_label(report.calc, r.step), "scalars": _shown_scalars(r.data)}
            for r in report.results]


def image_suffix(name: str) -> str:
    """".svg" or ".png" for image artifacts, "" for anything else."""
    suffix = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return suffix if suffix in IMAGE_TYPES else ""


def plots(report: Report) -> list[Artifact]:
    """The image artifacts to show, one per plot: the SVG where there is one, else the PNG."""
    by_stem: dict[tuple[int, str], Artifact] = {}
    for artifact in report.artifacts:
        suffix = image_suffix(artifact.name)
        if not suffix:
            continue
        key = (artifact.step, artifact.name[: -len(suffix)])
        if key not in by_stem or suffix == ".svg":
            by_stem[key] = artifact
    return list(by_stem.values())


def polyline(values: list[float | None], width: float = 300, height: float = 60,
             bounds: tuple[float, float] | None = None) -> str:
    """SVG ``points`` of ``values`` in a width × height box, from ``bounds`` (low, high) or
    from the values' own range; gaps are skipped."""
    known = [v for v in values if v is not None and math.isfinite(v)]
    if len(values) < 2 or not known:
        return ""
    low, high = bounds or (min(known), max(known))
    span = (high - low) or 1.0
    step = width / (len(values) - 1)
    return " ".join(f"{i * step:.1f},{height - (v - low) / span * height:.1f}"
                    for i, v in enumerate(values) if v is not None and math.isfinite(v))


# --- PDF --------------------------------------------------------------------------------------


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "—" if value is None else str(value)


def _when(moment) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC" if moment else "—"


def _title_page(report: Report):
    from matplotlib.figure import Figure

    calc = report.calc
    figure = Figure(figsize=PAGE_SIZE)
    lines = [f"#{calc.pk} {calc.name}", "",
             f"Engine: {calc.engine}    Cluster: {calc.cluster.name}",
             f"Molecule: {calc.molecule.name if calc.molecule else '—'}    State: {calc.get_state_display()}",
             f"Owner: {calc.owner.username if calc.owner else '—'}    Attempt: {calc.attempt}",
             f"Started: {_when(calc.started_at)}", f"Finished: {_when(calc.finished_at)}"]
    figure.text(0.08, 0.95, "\n".join(lines), va="top", fontsize=11, family="DejaVu Sans")
    rows = energy_rows(report)
    if rows:
        ax = figure.add_axes((0.08, 0.35, 0.84, 0.4))
        ax.set_axis_off()
        ax.set_title("Energies (eV)", loc="left")
        cells = [[r["label"], _fmt(r["total"]), _fmt(r["free"]), _fmt(r["fermi"]), _fmt(r["total_per_atom"])]
                 for r in rows[:30]]
        ax.table(cellText=cells, colLabels=["step", "total", "free", "Fermi", "total / atom"], loc="upper left")
    else:
        figure.text(0.08, 0.7, "No energies were extracted.", fontsize=11)
    return figure


def _analysis_page(report: Report, analysis: AnalysisResult, pngs: dict):
    from matplotlib.figure import Figure
    from matplotlib.image import imread

    figure = Figure(figsize=PAGE_SIZE)
    label = step_label(report.calc, analysis.step)
    figure.suptitle(f"{title(analysis.name)}{' — ' + label if label else ''}")
    png = pngs.get((analysis.step, analysis.name))
    series = _series(analysis.data)
    if png is not None:
        ax = figure.add_axes((0.05, 0.35, 0.9, 0.58))
        ax.set_axis_off()
        with png.file.open("rb") as handle:
            ax.imshow(imread(handle, format="png"))
    elif series:
        # one axes per series: an energy (-465 eV) and a force (0.02 eV/Å) share no scale
        shown_series = list(series.items())[:4]
        grid = figure.add_gridspec(len(shown_series), 1, left=0.14, right=0.92, top=0.92, bottom=0.38, hspace=0.5)
        for row, (name, values) in enumerate(shown_series):
            ax = figure.add_subplot(grid[row])
            ax.plot(range(1, len(values) + 1), values, marker="." if len(values) < 50 else None)
            ax.set_ylabel(name)
    scalars = [f"{k}: {_fmt(v)}" for k, v in flatten(analysis.data).items()][:25]
    figure.text(0.08, 0.3, "\n".join(scalars) or analysis.message, va="top", fontsize=9)
    return figure


def build_pdf(report: Report, out: IO[bytes]) -> int:
    """Write the PDF to ``out``: a title page with the key results, then one page per
    analysis that succeeded (its plot, or its series, and its numbers). Returns the pages."""
    from matplotlib.backends.backend_pdf import PdfPages

    pngs = {(a.step, a.name[:-4]): a for a in report.artifacts if image_suffix(a.name) == ".png"}
    pages = [a for a in report.analyses if a.status == AnalysisResult.Status.OK and a.name != SUMMARY_ANALYSIS]
    with PdfPages(out, metadata={"Title": f"siestaflow report: {report.calc.name}"}) as pdf:
        pdf.savefig(_title_page(report))
        for analysis in pages:
            pdf.savefig(_analysis_page(report, analysis, pngs))
        count = pdf.get_pagecount()
    return count


# --- ZIP --------------------------------------------------------------------------------------


def extracted_records(report: Report) -> list[dict[str, Any]]:
    return [{"step": None if r.step == CHAIN_LEVEL else r.step, "attempt": r.attempt, "key": r.key,
             "data": r.data} for r in report.results]


def analysis_records(report: Report) -> list[dict[str, Any]]:
    return [{"step": None if a.step == CHAIN_LEVEL else a.step, "attempt": a.attempt, "name": a.name,
             "status": a.status, "message": a.message, "data": a.data} for a in report.analyses]


def build_zip(report: Report, out: IO[bytes]) -> list[str]:
    """Write the ZIP to ``out``: extracted data and analyses as JSON and CSV, and every
    artifact (plots, tables) copied from storage in chunks. Returns the member names."""
    base = f"calculation-{report.calc.pk}"
    extracted, analyses = extracted_records(report), analysis_records(report)
    texts = {
        "extracted.json": json.dumps(extracted, indent=2, default=str),
        "extracted.csv": csv_text([{"step": r["step"], "key": r["key"], **flatten(r["data"])} for r in extracted]),
        "analyses.json": json.dumps(analyses, indent=2, default=str),
        "analyses.csv": csv_text([{"step": a["step"], "name": a["name"], "status": a["status"],
                                   **flatten(a["data"])} for a in analyses], leading=("step", "name", "status")),
    }
    names = []
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, text in texts.items():
            archive.writestr(f"{base}/{name}", text)
            names.append(f"{base}/{name}")
        for artifact in report.artifacts:
            folder = "chain" if artifact.step == CHAIN_LEVEL else f"step-{artifact.step + 1}"
            member = f"{base}/artifacts/{folder}/{artifact.name}"
            with artifact.file.open("rb") as source, archive.open(member, "w") as target:
                shutil.copyfileobj(source, target, 1 << 20)
            names.append(member)
    return names
