"""Fixtures for the analyses tests (no Django)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

AGENT = Path(__file__).resolve().parents[3] / "agent"
if str(AGENT) not in sys.path:  # also works without PYTHONPATH=agent
    sys.path.insert(0, str(AGENT))

DATA = Path(__file__).resolve().parents[1] / "data" / "siesta-samples"


@pytest.fixture(scope="session")
def extracted():
    """Extract a corpus case (relative path) once per session."""
    from siestaflow_agent.engines.siesta.extract import extract

    cache: dict[str, dict] = {}

    def get(relative: str) -> dict:
        if relative not in cache:
            cache[relative] = extract(DATA / relative)
        return cache[relative]

    return get
