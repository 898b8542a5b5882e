"""The analysis catalogue: which analyses exist, what they need and where they apply.

Shared by the agent and the Django server (to validate a user's selection), so this module
imports nothing heavy: no matplotlib, numpy or sisl.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable


@dataclasses.dataclass(frozen=True)
class Analysis:
    """One analysis a user can select.

    ``requires`` lists analyses that must be selected too (and run first); ``engines`` the
    engines whose results it understands; ``chain_level`` analyses run once on all steps of a
    chain (e.g. an I-V curve over a bias sweep) instead of once per step.
    """

    id: str
    title: str
    description: str
    requires: tuple[str, ...] = ()
    engines: tuple[str, ...] = ("siesta",)
    chain_level: bool = False


ANALYSES: tuple[Analysis, ...] = (
    Analysis(
        "energy_summary", "Energy summary",
        "Final total and free energy, Fermi level (and TranSIESTA total), per atom.",
        engines=("siesta", "pyscf"),
    ),
    Analysis(
        "scf_convergence", "SCF convergence",
        "Density-matrix and Hamiltonian change per SCF iteration of the last cycles.",
        engines=("siesta", "pyscf"),
    ),
    Analysis(
        "relaxation", "Geometry relaxation",
        "Energy and maximum force per geometry or MD step, against the force tolerance.",
    ),
    Analysis(
        "band_structure", "Band structure",
        "Bands along the k-path of the .bands file, relative to the Fermi level; band gap.",
    ),
    Analysis(
        "dos", "Density of states",
        "Total DOS (.DOS) and projected DOS per species (.PDOS), relative to the Fermi level.",
    ),
    Analysis(
        "transmission", "Transmission",
        "Transmission spectrum per electrode pair from TBtrans, with the current.",
        engines=("siesta", "tbtrans"),
    ),
    Analysis(
        "iv_curve", "I-V curve",
        "Current against bias voltage over the steps of a bias sweep.",
        requires=("transmission",), engines=("siesta", "tbtrans"), chain_level=True,
    ),
)

CATALOGUE: dict[str, Analysis] = {a.id: a for a in ANALYSES}


def get(analysis_id: str) -> Analysis:
    """The analysis called ``analysis_id``; ``KeyError`` if unknown."""
    return CATALOGUE[analysis_id]


def validate_selection(ids: Iterable[str], engine: str | None = None) -> list[str]:
    """Problems with a selection, as messages (empty list: fine).

    Reports unknown ids, missing dependencies (``'iv_curve' requires 'transmission'``) and,
    when ``engine`` is given, analyses that do not apply to it.
    """
    selected = list(dict.fromkeys(ids))
    errors: list[str] = []
    for analysis_id in selected:
        analysis = CATALOGUE.get(analysis_id)
        if analysis is None:
            errors.append(f"unknown analysis '{analysis_id}'")
            continue
        for needed in analysis.requires:
            if needed not in selected:
                errors.append(f"'{analysis_id}' requires '{needed}'")
        if engine is not None and engine not in analysis.engines:
            errors.append(f"'{analysis_id}' does not apply to engine '{engine}'")
    return errors


def ordered(ids: Iterable[str]) -> list[str]:
    """``ids`` in dependency order (a dependency before its dependents), otherwise in
    catalogue order. Raises ``ValueError`` for unknown ids; dependencies that are not in
    ``ids`` are not added (see :func:`validate_selection`)."""
    selected = set(ids)
    unknown = sorted(selected - CATALOGUE.keys())
    if unknown:
        raise ValueError(f"unknown analyses: {', '.join(unknown)}")
    result: list[str] = []
    visiting: set[str] = set()

    def visit(analysis_id: str) -> None:
        if analysis_id in result:
            return
        if analysis_id in visiting:
            raise ValueError(f"dependency cycle at '{analysis_id}'")
        visiting.add(analysis_id)
        for needed in CATALOGUE[analysis_id].requires:
            if needed in selected:
                visit(needed)
        visiting.discard(analysis_id)
        result.append(analysis_id)

    for analysis in ANALYSES:
        if analysis.id in selected:
            visit(analysis.id)
    return result
