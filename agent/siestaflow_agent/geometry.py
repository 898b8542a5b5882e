"""Geometry of a chain step: the structure turned for a ``rotation`` chain.

A calculation's structure is ``{"species": [...], "positions": [[x, y, z], ...], "cell": ...}``
in Å. A chain whose parameter is ``rotation`` runs the same molecule turned by each of its
values (degrees) about its ``axis`` through the structure's centroid; the cell stays.
"""

from __future__ import annotations

from typing import Any

import numpy as np

ROTATION = "rotation"
AXES = {"x": (1.0, 0.0, 0.0), "y": (0.0, 1.0, 0.0), "z": (0.0, 0.0, 1.0)}


def rotation_matrix(degrees: float, axis: str | list[float]) -> np.ndarray:
    """The 3x3 matrix turning by ``degrees`` about ``axis`` (right-handed), Rodrigues' formula."""
    u = np.asarray(AXES[axis] if isinstance(axis, str) else axis, dtype=float)
    norm = np.linalg.norm(u)
    if not norm:
        raise ValueError("a rotation axis must be a non-zero vector")
    x, y, z = u / norm
    k = np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])
    theta = np.radians(float(degrees))
    return np.eye(3) + np.sin(theta) * k + (1 - np.cos(theta)) * (k @ k)


def rotated(molecule: dict[str, Any], degrees: float, axis: str | list[float] = "z") -> dict[str, Any]:
    """``molecule`` turned by ``degrees`` about ``axis`` through its centroid (a new dict)."""
    positions = np.asarray(molecule["positions"], dtype=float)
    centre = positions.mean(axis=0)
    turned = (positions - centre) @ rotation_matrix(degrees, axis).T + centre
    return {**molecule, "positions": np.round(turned, 10).tolist()}


def step_molecule(molecule: dict[str, Any] | None, chain: dict[str, Any] | None, value: Any) -> dict[str, Any] | None:
    """The structure step ``value`` of ``chain`` runs: turned for a rotation chain, else as is."""
    if not chain or chain.get("parameter") != ROTATION:
        return molecule
    if not molecule:
        raise ValueError("a rotation chain turns the molecule, and this calculation has none")
    return rotated(molecule, float(value), chain.get("axis") or "z")
