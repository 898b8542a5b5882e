"""Molecule and pseudopotential services: the rules, and that a refused write stores nothing."""

import hashlib
from pathlib import Path

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile

from molecules import services
from molecules.models import Molecule, Pseudopotential
from tests.factories import MoleculeFactory, psf_bytes
from tests.molecules.conftest import DATA, PSEUDOS

WATER = {"species": ["O", "H", "H"], "positions": [[0, 0, 0], [0.757, 0.586, 0], [-0.757, 0.586, 0]]}


def create(actor, **overrides):
    return services.create_molecule(actor=actor, **{"name": "water", **WATER, **overrides})


def messages(exc_info) -> dict:
    return exc_info.value.message_dict


# --- molecules -------------------------------------------------------------------------


def test_it_creates_a_molecule_owned_by_the_actor(alice):
    molecule = create(alice, tags=["Demo", "small", "demo"], cell=None)
    assert molecule.owner == alice
    assert molecule.formula == "H2O" and molecule.natoms == 3
    assert molecule.tags == ["demo", "small"]
    assert molecule.positions[1] == [0.757, 0.586, 0.0]


def test_it_normalises_element_symbols(alice):
    assert create(alice, species=["o", "H", "h"]).species == ["O", "H", "H"]


def test_it_gives_agents_the_spec(alice):
    molecule = create(alice, cell=[[10, 0, 0], [0, 10, 0], [0, 0, 10]])
    assert molecule.as_spec() == {"name": "water", "species": ["O", "H", "H"],
                                  "positions": [[0.0, 0.0, 0.0], [0.757, 0.586, 0.0], [-0.757, 0.586, 0.0]],
                                  "cell": [[10.0, 0.0, 0.0], [0.0, 10.0, 0.0], [0.0, 0.0, 10.0]]}


@pytest.mark.parametrize(("species", "formula"), [
    (["O", "H", "H"], "H2O"), (["H", "C", "H", "H", "H"], "CH4"), (["N", "H", "H", "H"], "H3N"),
    (["H", "C", "O", "C", "Cl"], "C2HClO"), (["Si"] * 64 + ["H"], "HSi64"), (["Fe", "Br", "O"], "BrFeO"),
])
def test_it_writes_the_formula_in_hill_order(species, formula):
    assert MoleculeFactory.build(species=species, positions=[[0, 0, 0]] * len(species)).formula == formula


@pytest.mark.parametrize(("overrides", "field", "message"), [
    ({"species": ["O", "Xx", "H"]}, "species", "Atom 2: 'Xx' is not an element symbol"),
    ({"species": []}, "species", "at least one atom"),
    ({"species": "OHH"}, "species", "at least one atom"),
    ({"species": ["O", "H"]}, "positions", "2 species but 3 positions"),
    ({"positions": [[0, 0, 0], [1, 0], [2, 0, 0]]}, "positions", "Position 2: expected [x, y, z]"),
    ({"positions": [[0, 0, 0], [1, 0, "a"], [2, 0, 0]]}, "positions", "Position 2: 'a' is not a number"),
    ({"positions": [[0, 0, 0], [1, 0, float("inf")], [2, 0, 0]]}, "positions", "not a finite number"),
    ({"cell": [[1, 0, 0], [0, 1, 0]]}, "cell", "three lattice vectors"),
    ({"cell": [[1, 0, 0], [2, 0, 0], [0, 0, 1]]}, "cell", "linearly dependent"),
    ({"name": "  "}, "name", "Give the molecule a name"),
    ({"tags": ["ok", "not ok"]}, "tags", "not 'not ok'"),
    ({"tags": "demo"}, "tags", "list of words"),
])
def test_it_refuses_a_bad_molecule_and_stores_nothing(alice, overrides, field, message):
    with pytest.raises(ValidationError) as exc_info:
        create(alice, **overrides)
    assert any(message in m for m in messages(exc_info)[field])
    assert not Molecule.objects.exists()


def test_it_refuses_a_taken_name(alice):
    create(alice)
    with pytest.raises(ValidationError) as exc_info:
        create(alice)
    assert "name" in messages(exc_info)
    assert Molecule.objects.count() == 1


def test_it_updates_a_molecule_and_keeps_the_owner(alice, bob, molecule):
    services.update_molecule(actor=bob, molecule=molecule, description="edited", species=["o", "h", "H"])
    molecule.refresh_from_db()
    assert molecule.description == "edited" and molecule.owner == alice and molecule.species == ["O", "H", "H"]


def test_it_refuses_an_update_that_breaks_the_structure(alice, molecule):
    with pytest.raises(ValidationError):
        services.update_molecule(actor=alice, molecule=molecule, species=["O"])
    molecule.refresh_from_db()
    assert molecule.species == ["O", "H", "H"]


def test_it_refuses_changing_the_owner_through_update(alice, bob, molecule):
    with pytest.raises(ValidationError) as exc_info:
        services.update_molecule(actor=alice, molecule=molecule, owner=bob)
    assert "owner" in messages(exc_info)


def test_it_refuses_a_blocked_user(alice):
    alice.is_active = False
    with pytest.raises(PermissionDenied):
        create(alice)


def test_it_imports_xyz_named_by_its_comment_line(alice):
    molecule = services.import_molecule(actor=alice, fmt="xyz", text="1\nargon atom\nAr 0 0 0\n")
    assert molecule.name == "argon atom" and molecule.species == ["Ar"]


def test_it_imports_fdf_under_the_given_name(alice):
    molecule = services.import_molecule(actor=alice, fmt="fdf", text=(DATA / "sih.fdf").read_text(), name="SiH",
                                        tags=["bulk"])
    assert molecule.name == "SiH" and molecule.formula == "HSi64" and molecule.is_periodic


def test_it_refuses_an_import_without_a_name(alice):
    with pytest.raises(ValidationError) as exc_info:
        services.import_molecule(actor=alice, fmt="xyz", text="1\n\nAr 0 0 0\n")
    assert "give a name" in messages(exc_info)["name"][0]


def test_it_reports_the_line_of_a_parse_error(alice):
    with pytest.raises(ValidationError) as exc_info:
        services.import_molecule(actor=alice, fmt="xyz", text="2\nx\nAr 0 0 0\nQq 0 0 1\n")
    assert messages(exc_info)["text"] == ["Not valid xyz: line 4: unknown element 'Qq'."]
    assert not Molecule.objects.exists()


# --- pseudopotentials ------------------------------------------------------------------


def upload(actor, content=None, name="O.psf", **kwargs):
    data = psf_bytes("O") if content is None else content
    return services.upload_pseudopotential(actor=actor, content=ContentFile(data, name=name), **kwargs)


def test_it_stores_a_pseudopotential_under_its_digest(alice, settings):
    data = (PSEUDOS / "O.psf").read_bytes()
    pseudo, created = upload(alice, data, flavour=" lda ")
    digest = hashlib.sha256(data).hexdigest()
    assert created
    assert (pseudo.element, pseudo.flavour, pseudo.format, pseudo.size, pseudo.sha256) == \
        ("O", "lda", "psf", len(data), digest)
    assert pseudo.file.name == f"pseudos/{digest}/O.psf"
    assert (settings.MEDIA_ROOT / "pseudos" / digest / "O.psf").read_bytes() == data
    assert pseudo.uploaded_by == alice


def test_it_stores_the_same_bytes_once(alice, bob):
    first, _ = upload(alice)
    again, created = upload(bob, name="O_copy.psf", flavour="pbe")
    assert not created and again.pk == first.pk and again.name == "O.psf"
    assert Pseudopotential.objects.count() == 1


def test_it_reads_the_element_from_the_psf_header(alice):
    pseudo, _ = upload(alice, psf_bytes("Fe"), name="iron.psf")
    assert pseudo.element == "Fe"


def test_it_accepts_psml_and_reads_its_atomic_number(alice):
    pseudo, _ = upload(alice, (DATA / "H.psml").read_bytes(), name="H.psml")
    assert (pseudo.element, pseudo.format) == ("H", "psml")


def test_it_needs_the_element_of_a_psf_whose_header_names_none(alice):
    data = (PSEUDOS / "ON-0.34560.psf").read_bytes()
    with pytest.raises(ValidationError) as exc_info:
        upload(alice, data, name="ON.psf")
    assert "give the element" in messages(exc_info)["element"][0]
    pseudo, _ = upload(alice, data, name="ON.psf", element="o")
    assert pseudo.element == "O"


@pytest.mark.parametrize(("kwargs", "field", "message"), [
    ({"name": "../../etc/passwd.psf"}, "name", "is a path"),
    ({"name": "..\\..\\evil.psf"}, "name", "is a path"),
    ({"name": ".hidden.psf"}, "name", "is hidden"),
    ({"name": "O.txt"}, "name", "ends in .psf or .psml"),
    ({"name": "O psf.psf"}, "name", "letters, digits"),
    ({"element": "Fe"}, "element", "O.psf is a pseudopotential for O, not Fe"),
    ({"element": "Qq"}, "element", "'Qq' is not an element symbol"),
    ({"content": b"hello\n"}, "file", "is not a psf pseudopotential"),
    ({"content": b""}, "file", "is empty"),
    ({"content": psf_bytes("O"), "name": "O.psml"}, "file", "is not PSML"),
])
def test_it_refuses_a_bad_pseudopotential_and_stores_nothing(alice, settings, kwargs, field, message):
    with pytest.raises(ValidationError) as exc_info:
        upload(alice, **kwargs)
    assert any(message in m for m in messages(exc_info)[field]), messages(exc_info)
    assert not Pseudopotential.objects.exists()
    assert not (settings.MEDIA_ROOT / "pseudos").exists()


def test_it_refuses_a_pseudopotential_over_the_size_limit(alice, settings):
    settings.UPLOAD_MAX_BYTES = 1024
    with pytest.raises(ValidationError) as exc_info:
        upload(alice, (PSEUDOS / "O.psf").read_bytes())
    assert "the limit is 1024" in messages(exc_info)["file"][0]
    assert not Pseudopotential.objects.exists()


def test_it_deletes_a_pseudopotential_and_its_file_after_commit(alice, django_capture_on_commit_callbacks):
    pseudo, _ = upload(alice)
    path = pseudo.file.path
    with django_capture_on_commit_callbacks(execute=True):
        services.delete_pseudopotential(actor=alice, pseudo=pseudo)
    assert not Pseudopotential.objects.exists()
    assert not Path(path).exists()


def test_it_changes_only_the_flavour(alice):
    pseudo, _ = upload(alice)
    services.update_pseudopotential(actor=alice, pseudo=pseudo, flavour="pbe")
    pseudo.refresh_from_db()
    assert pseudo.flavour == "pbe" and pseudo.name == "O.psf"


def test_it_lets_the_system_act_without_a_user(db):
    molecule = create(None)
    assert molecule.owner is None


def test_it_refuses_any_actor_who_is_not_signed_in(db):
    with pytest.raises(PermissionDenied):
        upload(AnonymousUser())
    assert not Pseudopotential.objects.exists()
