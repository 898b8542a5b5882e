"""Analyses of extracted results.

:mod:`.catalogue` (what exists, dependencies; free of heavy imports, shared with the server)
and :mod:`.run` (running them and writing plots; matplotlib is imported lazily).
"""

from .catalogue import ANALYSES, CATALOGUE, Analysis, get, ordered, validate_selection

__all__ = ["ANALYSES", "CATALOGUE", "Analysis", "get", "ordered", "validate_selection"]
