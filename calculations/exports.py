"""Downloads: a calculation's configuration and extracted data, and the dataset of all
succeeded calculations for training models. Large outputs are streamed row by row."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Prefetch
from django.http import HttpResponse
from rest_framework.exceptions import ValidationError

from calculations.models import CHAIN_LEVEL, Calculation, Result
from calculations.states import State


def _attachment(content: str, name: str, content_type: str) -> HttpResponse:
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def config_download(calc: Calculation, fmt: str) -> HttpResponse:
    """The configuration as JSON, or the fdf text as the user wrote it."""
    if fmt == "fdf":
        return _attachment(calc.config.get("fdf", ""), f"calculation-{calc.pk}.fdf", "text/plain")
    if fmt != "json":
        raise ValidationError({"format": "format is json or fdf."})
    body = {"name": calc.name, "engine": calc.engine, "config": calc.config, "molecule": calc.structure,
            "chain": calc.chain, "analyses": calc.analyses,
            "pseudopotentials": [{"name": p.name, "element": p.element, "sha256": p.sha256}
                                 for p in calc.pseudopotentials.all()]}
    return _attachment(json.dumps(body, indent=2), f"calculation-{calc.pk}.json", "application/json")


def flatten(data, prefix: str = "") -> dict:
    """Scalars of a nested dict as ``{"energies.total": -465.1, ...}``; lists are skipped."""
    flat = {}
    for key, value in (data or {}).items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, str | int | float | bool) or value is None:
            flat[name] = value
    return flat


def _latest_results(calc: Calculation) -> list[Result]:
    return [r for r in calc.results.all() if r.attempt == calc.attempt]


def extracted_download(calc: Calculation, fmt: str) -> HttpResponse:
    """Extracted data of the latest attempt: JSON (whole), or CSV (one row per step)."""
    results = _latest_results(calc)
    if fmt == "json":
        body = [{"step": None if r.step == CHAIN_LEVEL else r.step, "key": r.key, "data": r.data} for r in results]
        return _attachment(json.dumps(body, indent=2), f"calculation-{calc.pk}-extracted.json", "application/json")
    if fmt != "csv":
        raise ValidationError({"format": "format is json or csv."})
    rows = [{"step": r.step, "key": r.key, **flatten(r.data)} for r in results]
    return _attachment(csv_text(rows), f"calculation-{calc.pk}-extracted.csv", "text/csv")


def csv_text(rows: list[dict], *, leading: tuple[str, ...] = ("step", "key")) -> str:
    """Rows as CSV: the ``leading`` columns first, then every other key sorted (PostgreSQL's
    jsonb keeps no key order, so the order of the data is no order to rely on)."""
    seen = {k for row in rows for k in row}
    columns = [c for c in leading if c in seen] + sorted(seen.difference(leading))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def dataset_queryset(engine: str | None = None):
    calcs = (Calculation.objects.filter(state=State.SUCCEEDED).select_related("molecule", "cluster")
             .prefetch_related(Prefetch("results", queryset=Result.objects.order_by("step", "key")))
             .order_by("id"))
    return calcs.filter(engine=engine) if engine else calcs


def _record(calc: Calculation) -> dict:
    return {"id": calc.pk, "name": calc.name, "engine": calc.engine, "cluster": calc.cluster.name,
            "molecule": calc.molecule.name if calc.molecule else None, "structure": calc.structure,
            "chain": calc.chain, "finished_at": calc.finished_at}


def dataset_jsonl(calcs) -> Iterator[str]:
    """One JSON object per calculation, with its steps' extracted data."""
    for calc in calcs.iterator(chunk_size=200):
        steps = [{"step": None if r.step == CHAIN_LEVEL else r.step, "key": r.key, "data": r.data}
                 for r in _latest_results(calc)]
        yield json.dumps({**_record(calc), "results": steps}, cls=DjangoJSONEncoder) + "\n"


def dataset_csv(calcs) -> Iterator[str]:
    """One row per step of each calculation: identity, structure (JSON) and the step's scalars.

    Columns come from the first calculations seen; scalars first seen later are appended to
    later rows' JSON column ``extra`` so the file stays rectangular while streaming."""
    columns: list[str] | None = None
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for calc in calcs.iterator(chunk_size=200):
        for result in _latest_results(calc):
            scalars = flatten(result.data)
            if columns is None:
                columns = sorted(scalars)
                writer.writerow(["id", "name", "engine", "molecule", "structure", "step", "key", *columns, "extra"])
            extra = {k: v for k, v in scalars.items() if k not in columns}
            writer.writerow([calc.pk, calc.name, calc.engine, calc.molecule.name if calc.molecule else "",
                             json.dumps(calc.structure), result.step, result.key,
                             *[scalars.get(c, "") for c in columns], json.dumps(extra) if extra else ""])
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
