"""Fixtures of the molecules tests: uploads under a temporary MEDIA_ROOT, sample files."""

from pathlib import Path

import pytest

from tests.factories import MoleculeFactory, PseudopotentialFactory

DATA = Path(__file__).parent / "data"
PSEUDOS = Path(__file__).resolve().parents[2] / "molecules" / "data" / "pseudos"


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def data():
    """``data("h2o.fdf")``: the text of a sample file."""
    return lambda name: (DATA / name).read_text()


@pytest.fixture
def molecule(alice):
    return MoleculeFactory(name="water", owner=alice, tags=["demo", "small"])


@pytest.fixture
def pseudo(alice):
    return PseudopotentialFactory(uploaded_by=alice)
