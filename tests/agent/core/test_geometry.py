"""Rotation chains: the molecule turned about its centroid for each step."""

from __future__ import annotations

import numpy as np
import pytest
from siestaflow_agent.engines.base import StepSpec
from siestaflow_agent.engines.siesta.engine import SiestaEngine
from siestaflow_agent.geometry import rotated, step_molecule

WATER = {"species": ["O", "H", "H"], "positions": [[0.0, 0.0, 0.119], [0.0, 0.763, -0.477], [0.0, -0.763, -0.477]],
         "cell": None}


def _distances(molecule):
    p = np.asarray(molecule["positions"])
    return np.linalg.norm(p[:, None] - p[None, :], axis=-1)


def test_it_turns_about_the_centroid_right_handed():
    square = {"species": ["C"] * 4, "positions": [[1, 0, 0], [3, 0, 0], [3, 2, 0], [1, 2, 0]], "cell": None}
    turned = rotated(square, 90, "z")
    assert np.allclose(turned["positions"], [[3, 0, 0], [3, 2, 0], [1, 2, 0], [1, 0, 0]])  # centre (2, 1, 0)
    assert turned["species"] == square["species"] and square["positions"][0] == [1, 0, 0]  # a new dict


@pytest.mark.parametrize("axis", ["x", "y", [1, 1, 0], [0.2, -3.0, 1.5]])
def test_it_keeps_the_shape_and_the_centroid(axis):
    turned = rotated(WATER, 37.5, axis)
    assert np.allclose(_distances(turned), _distances(WATER))
    assert np.allclose(np.mean(turned["positions"], axis=0), np.mean(WATER["positions"], axis=0))
    assert np.allclose(rotated(WATER, 360, axis)["positions"], WATER["positions"])


def test_a_vector_axis_is_the_same_as_the_named_one():
    assert np.allclose(rotated(WATER, 45, [0, 0, 5])["positions"], rotated(WATER, 45, "z")["positions"])
    with pytest.raises(ValueError, match="non-zero"):
        rotated(WATER, 45, [0, 0, 0])


def test_only_a_rotation_chain_turns_the_step_and_it_needs_a_molecule():
    assert step_molecule(WATER, {"parameter": "TS.Voltage"}, 0.5) is WATER
    assert step_molecule(WATER, None, None) is WATER
    turned = step_molecule(WATER, {"parameter": "rotation", "axis": "x"}, 180)
    assert np.allclose(np.asarray(turned["positions"])[:, 2], 2 * np.mean(np.asarray(WATER["positions"])[:, 2])
                       - np.asarray(WATER["positions"])[:, 2])
    with pytest.raises(ValueError, match="has none"):
        step_molecule(None, {"parameter": "rotation"}, 90)


def test_siesta_writes_the_turned_geometry_and_no_rotation_key():
    fdf = "SystemLabel h2o\nXC.functional GGA\n"
    spec = StepSpec(calculation_id=1, name="w", config={"fdf": fdf}, molecule=rotated(WATER, 90, "x"),
                    step_index=1, step_count=2, parameter="rotation", value=90, unit="deg")
    text = SiestaEngine().input_text(spec)
    assert "rotation" not in text.lower()
    block = text[text.index("%block AtomicCoordinatesAndAtomicSpecies"):].splitlines()[1:4]
    written = [[float(v) for v in line.split()[:3]] for line in block]
    assert np.allclose(written, rotated(WATER, 90, "x")["positions"], atol=1e-6)
    assert not np.allclose(written, WATER["positions"], atol=0.1)  # turned, not the original


def test_siesta_writes_the_chain_parameter_in_the_chains_unit():
    fdf = "SystemLabel t\nElectronicTemperature 300 K\n"
    spec = StepSpec(calculation_id=1, name="t", config={"fdf": fdf}, parameter="ElectronicTemperature", value=25,
                    unit="meV")
    assert "ElectronicTemperature 25 meV" in SiestaEngine().input_text(spec)
    bias = StepSpec(calculation_id=1, name="iv", config={"fdf": "SystemLabel iv\n"}, parameter="TS.Voltage",
                    value=0.25, unit="V")
    assert "TS.Voltage 0.25 eV" in SiestaEngine().input_text(bias)  # a bias of 1 V is the energy 1 eV
