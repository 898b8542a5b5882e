"""Percentiles and medians of samples; a figure's repeats are summarised by their median."""

from __future__ import annotations

import statistics
from collections.abc import Iterable


def percentile(samples: Iterable[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) by linear interpolation; None without samples."""
    values = sorted(samples)
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    rank = (len(values) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (rank - low)


def median(samples: Iterable[float | None]) -> float | None:
    values = [v for v in samples if v is not None]
    return round(statistics.median(values), 2) if values else None


def summarise(repeats: list[dict]) -> dict:
    """Per key, the median over repeats of numeric values (others: the last one seen)."""
    keys = dict.fromkeys(k for r in repeats for k in r)
    out = {}
    for key in keys:
        values = [r.get(key) for r in repeats]
        numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        out[key] = median(numbers) if numbers else next((v for v in reversed(values) if v is not None), None)
    out["repeats"] = len(repeats)
    return out


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)
