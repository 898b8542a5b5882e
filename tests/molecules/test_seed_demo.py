"""seed_demo: the demo molecules and the bundled pseudopotentials, idempotently."""

from io import StringIO

from django.core.management import call_command

from molecules.models import Molecule, Pseudopotential
from tests.molecules.conftest import PSEUDOS


def seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def test_it_creates_the_demo_molecules_with_real_geometries(db):
    seed()
    formulas = dict(Molecule.objects.values_list("name", "species"))
    assert {name: Molecule(species=species).formula for name, species in formulas.items()} == \
        {"water": "H2O", "methane": "CH4", "ammonia": "H3N", "benzene": "C6H6"}
    water = Molecule.objects.get(name="water")
    o, h = water.positions[0], water.positions[1]
    assert abs(sum((a - b) ** 2 for a, b in zip(o, h, strict=True)) ** 0.5 - 0.9572) < 1e-4
    assert water.owner is None and water.tags == ["demo"] and water.cell is None


def test_it_loads_every_bundled_psf_once_per_content(db):
    out = seed()
    files = sorted(PSEUDOS.glob("*.psf"))
    # H.psf and Hfloat.psf are the same bytes in SIESTA's test suite: stored once.
    assert Pseudopotential.objects.count() == len(files) - 1
    assert "Hfloat.psf: same bytes as H.psf, kept once" in out
    assert Pseudopotential.objects.get(name="C.pbe.psf").flavour == "pbe"
    assert Pseudopotential.objects.get(name="ON-0.34560.psf").element == "O"


def test_it_is_idempotent(db):
    seed()
    before = (Molecule.objects.count(), sorted(Pseudopotential.objects.values_list("sha256", "file")))
    out = seed()
    assert (Molecule.objects.count(), sorted(Pseudopotential.objects.values_list("sha256", "file"))) == before
    assert "created" not in out and "stored" not in out


def test_it_leaves_an_edited_demo_molecule_alone(db):
    seed()
    Molecule.objects.filter(name="water").update(description="mine")
    seed()
    assert Molecule.objects.get(name="water").description == "mine"
