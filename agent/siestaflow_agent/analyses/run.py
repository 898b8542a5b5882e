"""Running the selected analyses on extracted results.

Step analyses take the extracted dict of one step (see ``engines/siesta/extract.py``);
chain-level ones (``iv_curve``) take the extracted dicts of all steps of a chain. Each returns
``{"name", "status": "ok" | "not_applicable" | "failed", "data", "message", "artifacts"}``,
``artifacts`` being the names of the plots written (SVG and PNG) in the output directory.
An analysis whose inputs are absent returns ``not_applicable``; it never raises.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from .catalogue import CATALOGUE, ordered
from .plotting import new_figure, save

Result = dict[str, Any]
MAX_PLOTTED_CYCLES = 5


def result(name: str, status: str, data: dict[str, Any] | None = None, message: str = "",
           artifacts: list[str] | None = None) -> Result:
    """One analysis result."""
    return {"name": name, "status": status, "data": data or {}, "message": message,
            "artifacts": artifacts or []}


def not_applicable(name: str, message: str) -> Result:
    """The inputs of ``name`` are absent."""
    return result(name, "not_applicable", message=message)


# -- runners ---------------------------------------------------------------------------------


def run_step(ids: Iterable[str], extracted: dict[str, Any], outdir: Path) -> list[Result]:
    """Run the selected step-level analyses on one step, in dependency order."""
    results: list[Result] = []
    for analysis_id in ordered(ids):
        if CATALOGUE[analysis_id].chain_level:
            continue
        call = functools.partial(STEP_ANALYSES[analysis_id], extracted, outdir)
        results.append(_guarded(analysis_id, call))
    return results


def run_chain(ids: Iterable[str], steps: Sequence[dict[str, Any]], outdir: Path,
              values: Sequence[Any] | None = None) -> list[Result]:
    """Run the selected chain-level analyses on the extracted dicts of all steps.

    ``values`` are the chain parameter values of the steps (used when a step does not say
    its own bias).
    """
    results: list[Result] = []
    for analysis_id in ordered(ids):
        if not CATALOGUE[analysis_id].chain_level:
            continue
        call = functools.partial(CHAIN_ANALYSES[analysis_id], list(steps), values, outdir)
        results.append(_guarded(analysis_id, call))
    return results


def _guarded(name: str, call: Callable[[], Result]) -> Result:
    """Run one analysis; an unexpected error becomes a ``failed`` result.

    Catching everything is deliberate: one broken analysis must not lose the others.
    """
    try:
        return call()
    except Exception as error:  # noqa: BLE001 - see docstring
        return result(name, "failed", message=f"{type(error).__name__}: {error}")


def _get(data: dict[str, Any], *keys: str) -> Any:
    """Nested lookup returning ``None`` for anything missing."""
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)  # type: ignore[assignment]
    return data


def _fermi(extracted: dict[str, Any]) -> float | None:
    for keys in (("energies", "fermi"), ("eigenvalues", "fermi"), ("bands", "fermi")):
        value = _get(extracted, *keys)
        if value is not None:
            return float(value)
    return None


# -- step analyses ------------------------------------------------------------------------------


def energy_summary(extracted: dict[str, Any], outdir: Path) -> Result:
    """Final energies (eV) and energy per atom."""
    energies = extracted.get("energies") or {}
    total, free = energies.get("total"), energies.get("free")
    if total is None and free is None:
        return not_applicable("energy_summary", "no final energy (run aborted or not SIESTA)")
    atoms = _get(extracted, "system", "n_atoms")
    data = {
        "total": total, "free": free, "fermi": energies.get("fermi"),
        "ts_total": energies.get("ts_total"), "n_atoms": atoms,
        "total_per_atom": total / atoms if total is not None and atoms else None,
        "gap": _get(extracted, "eigenvalues", "gap"), "unit": "eV",
    }
    return result("energy_summary", "ok", data)


def scf_convergence(extracted: dict[str, Any], outdir: Path) -> Result:
    """dDmax, dHmax and energy change per iteration of the last SCF cycles."""
    cycles = [c for c in _get(extracted, "scf", "cycles") or [] if c["history"]["iteration"]]
    if not cycles:
        return not_applicable("scf_convergence", "no SCF iterations in the output")
    series = [_cycle_series(c) for c in cycles]
    figure, (ax_dm, ax_e) = new_figure(rows=2, height=3.0)
    for cycle in series[-MAX_PLOTTED_CYCLES:]:
        label = f"{cycle['kind']} cycle {cycle['index']} (step {cycle['step']})"
        ax_dm.semilogy(cycle["iteration"], _positive(cycle["dDmax"]), marker=".", label=label)
        ax_e.semilogy(cycle["iteration"], _positive(cycle["delta_e"]), marker=".", label=label)
    ax_dm.set(xlabel="SCF iteration", ylabel="max |ΔDM| (dimensionless)")
    ax_e.set(xlabel="SCF iteration", ylabel="|E_KS − E_KS(last)| (eV)")
    ax_dm.legend(fontsize="small")
    artifacts = save(figure, outdir, "scf_convergence")
    data = {"cycles": series, "n_cycles": _get(extracted, "scf", "n_cycles"),
            "all_converged": _get(extracted, "scf", "all_converged")}
    return result("scf_convergence", "ok", data, artifacts=artifacts)


def _cycle_series(cycle: dict[str, Any]) -> dict[str, Any]:
    history = cycle["history"]
    energies = [e for e in history["e_ks"]]
    last = next((e for e in reversed(energies) if e is not None), None)
    delta = [abs(e - last) if e is not None and last is not None else None for e in energies]
    return {"index": cycle["index"], "kind": cycle["kind"], "step": cycle["step"],
            "converged": cycle["converged"], "iteration": history["iteration"],
            "dDmax": history["dDmax"], "dHmax": history["dHmax"], "e_ks": energies,
            "delta_e": delta}


def _positive(values: Sequence[float | None]) -> list[float]:
    """Values for a log axis: missing or non-positive ones become NaN (gaps)."""
    return [v if v is not None and v > 0 else math.nan for v in values]


def relaxation(extracted: dict[str, Any], outdir: Path) -> Result:
    """Energy and maximum force per geometry/MD step."""
    steps = _get(extracted, "relaxation", "steps") or []
    if len(steps) < 2:
        return not_applicable("relaxation", "fewer than two geometry steps (single point)")
    index = [s["index"] for s in steps]
    energy = [s["energy"] for s in steps]
    force = [s["max_force"] for s in steps]
    tolerance = _get(extracted, "relaxation", "force_tolerance")
    figure, (ax_e, ax_f) = new_figure(rows=2, height=3.0)
    ax_e.plot(index, [math.nan if e is None else e for e in energy], marker="o")
    ax_e.set(xlabel="geometry step", ylabel="energy E_KS (eV)")
    ax_f.semilogy(index, _positive(force), marker="o", label="max force (constrained)")
    if tolerance:
        ax_f.axhline(tolerance, color="grey", linestyle="--", label="tolerance")
    ax_f.set(xlabel="geometry step", ylabel="max force (eV/Å)")
    ax_f.legend(fontsize="small")
    artifacts = save(figure, outdir, "relaxation")
    data = {"step": index, "energy": energy, "max_force": force, "force_tolerance": tolerance,
            "relaxed": _get(extracted, "relaxation", "relaxed"),
            "is_relaxation": _get(extracted, "relaxation", "is_relaxation"),
            "units": {"energy": "eV", "max_force": "eV/Ang"}}
    return result("relaxation", "ok", data, artifacts=artifacts)


def band_structure(extracted: dict[str, Any], outdir: Path) -> Result:
    """Bands relative to the Fermi level along the k-path, and the band gap."""
    bands = extracted.get("bands")
    if not bands or not bands.get("eigenvalues"):
        return not_applicable("band_structure", "no .bands file")
    fermi = bands["fermi"]
    x = bands["k"] if bands["path"] else list(range(bands["nk"]))
    figure, (axis,) = new_figure()
    colours = ("tab:blue", "tab:red")
    for spin, eig in enumerate(bands["eigenvalues"]):
        for band in range(bands["nbands"]):
            axis.plot(x, [k[band] - fermi for k in eig], color=colours[spin % 2], lw=0.8)
    axis.axhline(0.0, color="grey", linestyle="--", lw=0.8)
    axis.set(ylabel="E − E_F (eV)", ylim=(-10, 10))
    if bands["path"]:
        axis.set_xticks(bands["ticks"], bands["labels"])
        axis.set_xlabel("k-path (1/Bohr)")
    else:
        axis.set_xlabel("k-point index")
    artifacts = save(figure, outdir, "band_structure")
    data = {"fermi": fermi, **_band_edges(bands["eigenvalues"], fermi), "nk": bands["nk"],
            "nbands": bands["nbands"], "nspin": bands["nspin"], "ticks": bands["ticks"],
            "labels": bands["labels"], "unit": "eV"}
    return result("band_structure", "ok", data, artifacts=artifacts)


def _band_edges(eigenvalues: list[list[list[float]]], fermi: float) -> dict[str, Any]:
    """Highest eigenvalue at/below and lowest above the Fermi level, and their difference.

    A Fermi-level split, not an electron count: along a band path the valence maximum can
    sit slightly above the SCF Fermi level, so the gap is an estimate.
    """
    values = [e for spin in eigenvalues for k in spin for e in k]
    below = [e for e in values if e <= fermi]
    above = [e for e in values if e > fermi]
    vbm, cbm = (max(below) if below else None), (min(above) if above else None)
    gap = cbm - vbm if vbm is not None and cbm is not None else None
    return {"vbm": vbm, "cbm": cbm, "gap": gap}


def dos(extracted: dict[str, Any], outdir: Path) -> Result:
    """Total DOS and PDOS per species relative to the Fermi level."""
    total, projected = extracted.get("dos"), extracted.get("pdos")
    fermi = _fermi(extracted)
    if not total and not projected:
        return not_applicable("dos", "no .DOS or .PDOS file")
    if total and fermi is None and not projected:
        return not_applicable("dos", "no Fermi level to reference the DOS to")
    figure, (axis,) = new_figure()
    data: dict[str, Any] = {"fermi": fermi, "unit": "states/eV"}
    if total and fermi is not None:
        shifted = [e - fermi for e in total["energy"]]
        for spin, column in enumerate(total["dos"][:2]):
            sign = -1.0 if spin == 1 else 1.0
            axis.plot(shifted, [sign * v for v in column], color="black", lw=1,
                      label="total" if spin == 0 else None)
        data["dos_at_fermi"] = [_interpolate(shifted, c, 0.0) for c in total["dos"][:2]]
    if projected:
        for name, curves in projected["species"].items():
            for spin, column in enumerate(curves[:2]):
                sign = -1.0 if spin == 1 else 1.0
                axis.plot(projected["energy"], [sign * v for v in column], lw=0.8,
                          label=f"{name} (PDOS)" if spin == 0 else None)
        data["species"] = list(projected["species"])
    axis.axvline(0.0, color="grey", linestyle="--", lw=0.8)
    axis.set(xlabel="E − E_F (eV)", ylabel="DOS (states/eV)", xlim=(-10, 10))
    axis.legend(fontsize="small")
    artifacts = save(figure, outdir, "dos")
    return result("dos", "ok", data, artifacts=artifacts)


def _interpolate(x: Sequence[float], y: Sequence[float], at: float) -> float | None:
    """Linear interpolation of ``y(x)`` at ``at`` (``x`` increasing); None outside."""
    for i in range(1, len(x)):
        if x[i - 1] <= at <= x[i]:
            if x[i] == x[i - 1]:
                return y[i]
            weight = (at - x[i - 1]) / (x[i] - x[i - 1])
            return y[i - 1] + weight * (y[i] - y[i - 1])
    return None


def transmission(extracted: dict[str, Any], outdir: Path) -> Result:
    """Transmission spectra per electrode pair and the TBtrans currents."""
    curves = _get(extracted, "transport", "transmission") or []
    if not curves:
        return not_applicable("transmission", "no TBtrans transmission (AVTRANS/TRANS) files")
    figure, (axis,) = new_figure()
    pairs = []
    for curve in curves:
        name = (f"{curve['from']} → {curve['to']}" if curve.get("from") else curve["suffix"])
        axis.plot(curve["energy"], curve["transmission"], lw=1, label=name)
        pairs.append({"from": curve.get("from"), "to": curve.get("to"),
                      "suffix": curve["suffix"], "energy": curve["energy"],
                      "transmission": curve["transmission"], "k_points": curve["k_points"]})
    axis.set(xlabel="E − E_F (eV)", ylabel="transmission T(E) (G0)")
    axis.legend(fontsize="small")
    artifacts = save(figure, outdir, "transmission")
    data = {"pairs": pairs, "currents": _get(extracted, "transport", "currents") or [],
            "units": {"energy": "eV", "transmission": "G0"}}
    return result("transmission", "ok", data, artifacts=artifacts)


# -- chain analyses ---------------------------------------------------------------------------


def iv_curve(steps: list[dict[str, Any]], values: Sequence[Any] | None, outdir: Path) -> Result:
    """Current against bias over the steps of a bias sweep, per electrode pair."""
    points: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for number, step in enumerate(steps):
        fallback = _number(values[number]) if values and number < len(values) else None
        for current in _get(step, "transport", "currents") or []:
            voltage = current.get("voltage")
            voltage = fallback if voltage is None else voltage
            if voltage is None or current.get("current") is None:
                continue
            points.setdefault((current["from"], current["to"]), []).append(
                (float(voltage), float(current["current"])))
    points = {pair: sorted(p) for pair, p in points.items() if len({v for v, _ in p}) >= 2}
    if not points:
        return not_applicable("iv_curve", "needs TBtrans currents at two or more biases")
    figure, (axis,) = new_figure()
    curves = []
    for (first, second), pair_points in points.items():
        voltages, currents = [v for v, _ in pair_points], [i for _, i in pair_points]
        axis.plot(voltages, currents, marker="o", label=f"{first} → {second}")
        curves.append({"from": first, "to": second, "voltage": voltages, "current": currents})
    axis.set(xlabel="bias voltage (V)", ylabel="current (A)")
    axis.legend(fontsize="small")
    artifacts = save(figure, outdir, "iv_curve")
    return result("iv_curve", "ok", {"pairs": curves, "units": {"voltage": "V", "current": "A"}},
                  artifacts=artifacts)


def _number(value: Any) -> float | None:
    try:
        return float(str(value).split()[0])
    except (ValueError, IndexError):
        return None


STEP_ANALYSES: dict[str, Callable[[dict[str, Any], Path], Result]] = {
    "energy_summary": energy_summary,
    "scf_convergence": scf_convergence,
    "relaxation": relaxation,
    "band_structure": band_structure,
    "dos": dos,
    "transmission": transmission,
}
CHAIN_ANALYSES = {"iv_curve": iv_curve}
