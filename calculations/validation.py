"""Checks of what a user submits, used by the services (so API and forms share them).

Each ``check_*`` raises ``django.core.exceptions.ValidationError`` keyed by the field at
fault, with a message a scientist can act on.
"""

from __future__ import annotations

import hashlib
import json
import math
import re

from django.conf import settings
from django.core.exceptions import ValidationError
from siestaflow_agent import fdf
from siestaflow_agent.analyses import catalogue

#: The engines the server knows how to configure (the agent package defines them).
ENGINES = ("siesta", "pyscf", "command")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,254}$")


def check_engine(engine: str, cluster) -> None:
    """A known engine, offered by the cluster (once its agent has said what it offers)."""
    if engine not in ENGINES:
        raise ValidationError({"engine": f"Unknown engine {engine!r}; known: {', '.join(ENGINES)}."})
    if cluster.engines and engine not in cluster.engines:
        raise ValidationError({"engine": (
            f"Cluster {cluster.name} does not offer {engine}; it offers {', '.join(cluster.engines)}.")})


def check_fdf(text: str) -> fdf.Fdf:
    """An fdf text that reads; returns it parsed."""
    if not text or not text.strip():
        raise ValidationError({"config": "A SIESTA calculation needs an fdf text (config.fdf)."})
    try:
        return fdf.parse(text)
    except fdf.FdfError as exc:
        raise ValidationError({"config": f"The fdf cannot be read: {exc}."}) from None


def check_species_have_pseudopotentials(doc: fdf.Fdf, structure: dict | None, pseudopotentials) -> None:
    """Every species of the fdf (or of the molecule) has a pseudopotential of its element."""
    try:
        rows = fdf.species_labels(doc)
    except fdf.FdfError as exc:
        raise ValidationError({"config": f"The fdf cannot be read: {exc}."}) from None
    have = {p.element.lower() for p in pseudopotentials} | {p.name.rsplit(".", 1)[0].lower() for p in pseudopotentials}
    wanted = [(label, _element_symbol(z)) for _i, z, label in rows]
    if not wanted and structure:
        wanted = [(s, s) for s in dict.fromkeys(structure["species"])]
    missing = [label for label, element in wanted
               if label.lower() not in have and str(element).lower() not in have]
    if missing:
        raise ValidationError({"pseudopotentials": (
            f"No pseudopotential for species {', '.join(missing)}: upload or select one for each.")})


def _element_symbol(z: int) -> str:
    """The symbol of atomic number ``z`` (SIESTA's ghost atoms have negative Z)."""
    from sisl import PeriodicTable  # imported here: sisl is heavy and only this check needs it

    return PeriodicTable().Z_label(abs(z)) if z else "?"


def check_chain(chain: dict | None) -> dict | None:
    """A chain names a parameter and at least one value; carry patterns are plain globs."""
    if chain is None:
        return None
    if not isinstance(chain, dict):
        raise ValidationError({"chain": "A chain is an object with parameter and values."})
    parameter = str(chain.get("parameter") or "").strip()
    values = chain.get("values")
    if not parameter:
        raise ValidationError({"chain": "A chain needs the parameter it varies (e.g. TS.Voltage)."})
    if not isinstance(values, list) or not values:
        raise ValidationError({"chain": "A chain needs a non-empty list of values."})
    if not all(isinstance(v, int | float | str) and not isinstance(v, bool) for v in values):
        raise ValidationError({"chain": "Chain values must be numbers or strings."})
    if any(isinstance(v, float) and not math.isfinite(v) for v in values):
        raise ValidationError({"chain": "Chain values must be finite."})
    carry = chain.get("carry") or []
    if not isinstance(carry, list) or not all(isinstance(c, str) and "/" not in c and ".." not in c for c in carry):
        raise ValidationError({"chain": "carry is a list of file patterns without folders (e.g. *.DM)."})
    checked = {"parameter": parameter, "unit": str(chain.get("unit") or ""), "values": values, "carry": carry}
    if parameter == ROTATION:
        checked.update(_rotation(chain, values))
    return checked


ROTATION = "rotation"
"""The chain parameter that turns the molecule instead of setting an fdf key: its values are
angles in degrees about ``axis`` (``x``, ``y``, ``z`` or a vector; ``z`` when left out),
through the structure's centroid (the agent applies it to each step's geometry)."""


def _rotation(chain: dict, values: list) -> dict:
    if not all(isinstance(v, int | float) for v in values):
        raise ValidationError({"chain": "A rotation chain's values are angles in degrees (numbers)."})
    axis = chain.get("axis", "z")
    vector = isinstance(axis, list) and len(axis) == 3 and all(
        isinstance(c, int | float) and not isinstance(c, bool) and math.isfinite(c) for c in axis)
    if not (axis in ("x", "y", "z") or (vector and any(axis))):
        raise ValidationError({"chain": "A rotation chain's axis is x, y, z or a non-zero vector [x, y, z]."})
    return {"axis": axis, "unit": "deg"}


def check_analyses(ids: list[str], *, chain: dict | None, engine: str) -> list[str]:
    """A valid selection from the catalogue for ``engine``, in dependency order."""
    if not isinstance(ids, list) or not all(isinstance(a, str) for a in ids):
        raise ValidationError({"analyses": "analyses is a list of analysis ids."})
    errors = catalogue.validate_selection(ids, engine=engine)
    if errors:
        raise ValidationError({"analyses": errors})
    chain_only = [a for a in ids if catalogue.CATALOGUE[a].chain_level and chain is None]
    if chain_only:
        raise ValidationError({"analyses": [f"'{a}' needs a chain of steps." for a in chain_only]})
    return catalogue.ordered(ids)


def check_file_name(name: str, field: str = "files") -> str:
    """A plain file name: no folders, no traversal, no hidden files."""
    if not _SAFE_NAME.match(name or "") or ".." in name:
        raise ValidationError({field: f"{name!r} is not an allowed file name (letters, digits, . _ + - only)."})
    return name


def check_file_size(name: str, size: int, field: str = "files") -> None:
    if size > settings.UPLOAD_MAX_BYTES:
        raise ValidationError({field: f"{name} is {size} bytes, over the limit of {settings.UPLOAD_MAX_BYTES}."})


def inputs_hash(*, engine: str, config: dict, structure: dict | None, pseudo_hashes: list[str],
                file_hashes: list[str], chain: dict | None) -> str:
    """A fingerprint of everything that decides a calculation's result."""
    canonical = json.dumps({"engine": engine, "config": config, "structure": structure,
                            "pseudopotentials": sorted(pseudo_hashes), "files": sorted(file_hashes),
                            "chain": chain}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
