"""The agent's side of the analyses: which it offers, running the selected ones after a
chain's last step, and the files they make, as results-API artifacts."""

from __future__ import annotations

import base64
import logging
import mimetypes
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MAX_ARTIFACT_BYTES = 8 << 20


def catalogue_ids() -> list[str]:
    """The analyses this agent offers (announced in the heartbeat); empty if none are installed."""
    try:
        from siestaflow_agent.analyses import catalogue
    except ImportError:
        return []
    return [analysis.id for analysis in catalogue.ANALYSES]


def analyse(ids: list[str], steps: dict[int, dict[str, Any]], values: list[Any],
            outdir: Path) -> list[dict[str, Any]]:
    """Run the selected analyses; return the results-API bodies (one per step, one for the chain).

    The one place that knows the analyses package (``analyses.run``): step-level analyses
    run on each step's extracted data, in catalogue order; chain-level ones on all steps.
    A broken analyses package fails every selected analysis, never the calculation.
    """
    if not ids:
        return []
    try:
        from siestaflow_agent.analyses import run as analyses_run

        bodies = []
        for k, extracted in steps.items():
            folder = outdir / f"step-{k}"
            folder.mkdir(parents=True, exist_ok=True)
            bodies.append(_analyses_body(k, analyses_run.run_step(ids, extracted, folder), folder))
        folder = outdir / "chain"
        folder.mkdir(parents=True, exist_ok=True)
        bodies.append(_analyses_body(None, analyses_run.run_chain(ids, list(steps.values()), folder, values), folder))
    except Exception as exc:  # analyses are reported one by one; none of them may fail the run
        log.exception("analyses failed")
        failed = [{"name": i, "status": "failed", "data": {}, "message": f"{type(exc).__name__}: {exc}"} for i in ids]
        return [{"step": None, "key": "analyses", "data": {}, "analyses": failed, "artifacts": []}]
    return [body for body in bodies if body["analyses"]]


def _analyses_body(step: int | None, outcome: list[dict[str, Any]], folder: Path) -> dict[str, Any]:
    analyses = [{"name": r["name"], "status": r.get("status", "ok"), "data": r.get("data") or {},
                 "message": r.get("message", "")} for r in outcome]
    names = [name for r in outcome for name in r.get("artifacts") or []]
    return {"step": step, "key": "analyses", "data": {}, "analyses": analyses,
            "artifacts": artifacts(folder, names)}


def artifacts(folder: Path, names: list[str]) -> list[dict[str, Any]]:
    """The named files of ``folder`` as results-API artifacts (base64), up to a total size."""
    found, total = [], 0
    for name in dict.fromkeys(names):
        path = folder / name
        if not path.is_file() or not path.resolve().is_relative_to(folder.resolve()):
            log.warning("artifact %s is missing from %s", name, folder)
            continue
        size = path.stat().st_size
        if total + size > MAX_ARTIFACT_BYTES:
            log.warning("artifact %s left out: the artifacts would exceed %d bytes", name, MAX_ARTIFACT_BYTES)
            continue
        total += size
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        found.append({"name": path.name, "content_type": content_type,
                      "content_b64": base64.b64encode(path.read_bytes()).decode()})
    return found
