"""The molecules and pseudopotentials API: behaviour, bad input, downloads and query budgets."""

import hashlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from molecules.formats import parse_fdf, parse_xyz
from molecules.models import Molecule, Pseudopotential
from tests.factories import MoleculeFactory, PseudopotentialFactory, psf_bytes
from tests.molecules.conftest import DATA, PSEUDOS

WATER = {"name": "water", "species": ["O", "H", "H"],
         "positions": [[0, 0, 0], [0.757, 0.586, 0], [-0.757, 0.586, 0]]}


def upload(client, data: bytes, filename="O.psf", **fields):
    return client.post("/api/pseudopotentials/", {"file": SimpleUploadedFile(filename, data), **fields},
                       format="multipart")


# --- molecules: CRUD and lists ---------------------------------------------------------


def test_it_creates_a_molecule_owned_by_the_caller(api_as, alice):
    response = api_as("alice").post("/api/molecules/", {**WATER, "tags": ["demo"]}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["owner"] == "alice" and body["formula"] == "H2O" and body["natoms"] == 3
    assert body["positions"][1] == [0.757, 0.586, 0.0] and body["cell"] is None
    assert Molecule.objects.get(name="water").owner == alice


def test_it_lists_molecules_without_their_coordinates(api_as, molecule):
    body = api_as("alice").get("/api/molecules/").json()
    assert body["count"] == 1
    assert body["results"][0]["formula"] == "H2O" and "positions" not in body["results"][0]


def test_it_filters_molecules_by_search_tag_element_and_periodicity(api_as, molecule):
    MoleculeFactory(name="silicon", species=["Si"], positions=[[0, 0, 0]], tags=["bulk"],
                    cell=[[5, 0, 0], [0, 5, 0], [0, 0, 5]], description="a crystal")
    client = api_as("mod")

    def names(query):
        return [m["name"] for m in client.get(f"/api/molecules/?{query}").json()["results"]]

    assert names("search=CRYSTAL") == ["silicon"]
    assert names("tag=demo") == ["water"]
    assert names("tag=dem") == []
    assert names("element=Si") == ["silicon"]
    assert names("element=H") == ["water"]
    assert names("periodic=true") == ["silicon"]
    assert names("periodic=false") == ["water"]
    assert names("owner=alice") == ["water"]


def test_it_edits_a_molecule(api_as, molecule):
    response = api_as("mod").patch(f"/api/molecules/{molecule.pk}/", {"description": "H2O", "tags": ["x"]},
                                   format="json")
    assert response.status_code == 200, response.content
    molecule.refresh_from_db()
    assert molecule.description == "H2O" and molecule.tags == ["x"]


@pytest.mark.parametrize(("body", "field", "message"), [
    ({**WATER, "species": ["O", "Xx", "H"]}, "species", "Atom 2: 'Xx' is not an element symbol."),
    ({**WATER, "species": ["O", "H"]}, "positions", "2 species but 3 positions: give one position per atom."),
    ({**WATER, "positions": [[0, 0, 0], [1, 0], [2, 0, 0]]}, "positions",
     "Position 2: expected [x, y, z], got [1.0, 0.0]."),
    ({**WATER, "cell": [[1, 0, 0]]}, "cell", "The cell must be three lattice vectors (3×3), or null."),
    ({**WATER, "name": ""}, "name", "This field may not be blank."),
])
def test_it_refuses_a_bad_molecule_with_the_field_and_a_message(api_as, body, field, message):
    response = api_as("alice").post("/api/molecules/", body, format="json")
    assert response.status_code == 400
    assert message in response.json()[field]
    assert not Molecule.objects.exists()


def test_it_refuses_a_taken_name(api_as, molecule):
    response = api_as("alice").post("/api/molecules/", WATER, format="json")
    assert response.status_code == 400
    assert "name" in response.json()
    assert Molecule.objects.count() == 1


def test_it_refuses_malformed_json_with_a_message(api_as):
    response = api_as("alice").generic("POST", "/api/molecules/", '{"name": "x", "species": [',
                                       content_type="application/json")
    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]
    assert not Molecule.objects.exists()


def test_it_refuses_an_edit_that_breaks_the_structure_and_keeps_the_old_one(api_as, molecule):
    response = api_as("alice").patch(f"/api/molecules/{molecule.pk}/", {"species": ["O"]}, format="json")
    assert response.status_code == 400 and "positions" in response.json()
    molecule.refresh_from_db()
    assert molecule.species == ["O", "H", "H"]


def test_it_deletes_a_molecule(api_as, molecule):
    assert api_as("mod").delete(f"/api/molecules/{molecule.pk}/").status_code == 204
    assert not Molecule.objects.exists()


@pytest.mark.parametrize("rows", [3, 30])
def test_it_lists_molecules_in_constant_queries(api_as, alice, django_assert_max_num_queries, rows):
    MoleculeFactory.create_batch(rows, owner=alice)
    client = api_as("alice")
    with django_assert_max_num_queries(3):
        response = client.get("/api/molecules/")
    assert response.json()["count"] == rows


# --- import and export -----------------------------------------------------------------


def test_it_imports_xyz_text(api_as):
    text = "3\nwater from xyz\nO 0 0 0\nH 0.757 0.586 0\nH -0.757 0.586 0\n"
    response = api_as("alice").post("/api/molecules/import/", {"format": "xyz", "text": text}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["name"] == "water from xyz" and response.json()["formula"] == "H2O"


def test_it_imports_an_fdf_file_by_its_extension(api_as):
    upload_file = SimpleUploadedFile("sih.fdf", (DATA / "sih.fdf").read_bytes())
    response = api_as("alice").post("/api/molecules/import/", {"file": upload_file, "name": "SiH", "tags": ["bulk"]},
                                    format="multipart")
    assert response.status_code == 201, response.content
    molecule = Molecule.objects.get(name="SiH")
    assert molecule.formula == "HSi64" and molecule.is_periodic and molecule.tags == ["bulk"]


def test_it_imports_a_real_molecule_fdf_named_by_system_name(api_as):
    response = api_as("alice").post("/api/molecules/import/",
                                    {"format": "fdf", "text": (DATA / "h2o.fdf").read_text()}, format="json")
    assert response.status_code == 201
    assert response.json()["name"] == "Water molecule"


@pytest.mark.parametrize(("body", "field", "message"), [
    ({"format": "fdf", "text": "%block ChemicalSpeciesLabel\n 1 8 O\n%endblock ChemicalSpeciesLabel\n"
                              "%block AtomicCoordinatesAndAtomicSpecies\n 0 0 0 9\n"
                              "%endblock AtomicCoordinatesAndAtomicSpecies\n", "name": "x"},
     "text", "Not valid fdf: line 5: species index '9' is not in ChemicalSpeciesLabel."),
    ({"format": "xyz", "text": "1\nx\nUnobtainium 0 0 0\n"}, "text", "Not valid xyz: line 3: unknown element"),
    ({"format": "xyz", "text": "4\nx\nO 0 0 0\n"}, "text", "line 4: expected atom 2 of the 4 declared on line 1"),
    ({"format": "pdb", "text": "ATOM"}, "format", '"pdb" is not a valid choice.'),
    ({"text": "1\nx\nO 0 0 0\n"}, "format", "Say which format: fdf or xyz."),
    ({"format": "xyz"}, "text", "Give either a file or text."),
])
def test_it_refuses_a_bad_import_with_a_message_and_stores_nothing(api_as, body, field, message):
    response = api_as("alice").post("/api/molecules/import/", body, format="json")
    assert response.status_code == 400
    assert any(message in m for m in response.json()[field]), response.json()
    assert not Molecule.objects.exists()


def test_it_refuses_an_import_file_of_unknown_type(api_as):
    response = api_as("alice").post("/api/molecules/import/", {"file": SimpleUploadedFile("w.pdb", b"ATOM")},
                                    format="multipart")
    assert response.status_code == 400 and "format" in response.json()


def test_it_refuses_an_import_file_that_is_not_text(api_as):
    response = api_as("alice").post("/api/molecules/import/",
                                    {"file": SimpleUploadedFile("w.xyz", b"\xff\xfe\x00binary")}, format="multipart")
    assert response.status_code == 400 and response.json()["file"] == ["The file is not UTF-8 text."]


def test_it_refuses_an_oversize_import_file(api_as, settings):
    settings.UPLOAD_MAX_BYTES = 1024
    text = "1\nbig\nO 0 0 0\n" + "#" * 2000
    response = api_as("alice").post("/api/molecules/import/", {"file": SimpleUploadedFile("w.xyz", text.encode())},
                                    format="multipart")
    assert response.status_code == 400 and "the limit is 1024" in response.json()["file"][0]
    assert not Molecule.objects.exists()


@pytest.mark.parametrize(("fmt", "parse"), [("xyz", parse_xyz), ("fdf", parse_fdf)])
def test_it_exports_a_download_that_imports_back_the_same(api_as, molecule, fmt, parse):
    response = api_as("mod").get(f"/api/molecules/{molecule.pk}/export/?format={fmt}")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="water.{fmt}"'
    assert parse(response.content.decode()) == molecule.as_spec()


def test_it_exports_xyz_by_default(api_as, molecule):
    response = api_as("mod").get(f"/api/molecules/{molecule.pk}/export/")
    assert response.status_code == 200 and response.content.decode().startswith("3\nwater\n")


def test_it_refuses_an_unknown_export_format_in_json(api_as, molecule):
    response = api_as("mod").get(f"/api/molecules/{molecule.pk}/export/?format=pdb")
    assert response.status_code == 400
    assert response.json() == {"format": ["Choose one of fdf, xyz, not 'pdb'."]}


def test_it_answers_404_for_exporting_a_missing_molecule(api_as, db):
    assert api_as("alice").get("/api/molecules/999/export/?format=fdf").status_code == 404


# --- pseudopotentials ------------------------------------------------------------------


def test_it_uploads_a_pseudopotential(api_as, alice):
    data = (PSEUDOS / "O.psf").read_bytes()
    response = upload(api_as("alice"), data, flavour="lda")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["element"], body["flavour"], body["name"], body["format"], body["size"], body["uploaded_by"]) == \
        ("O", "lda", "O.psf", "psf", len(data), "alice")
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    assert body["download_url"] == f"/api/pseudopotentials/{body['id']}/download/"


def test_it_stores_a_reupload_once_and_answers_the_stored_one(api_as):
    data = (PSEUDOS / "H.psf").read_bytes()
    first = upload(api_as("alice"), data, filename="H.psf")
    again = upload(api_as("mod"), data, filename="Hfloat.psf", flavour="float")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"] and again.json()["name"] == "H.psf"
    assert Pseudopotential.objects.count() == 1


def test_it_downloads_the_exact_bytes_with_their_checksum(api_as):
    data = (PSEUDOS / "Si.psf").read_bytes()
    pseudo_id = upload(api_as("alice"), data, filename="Si.psf").json()["id"]
    response = api_as("mod").get(f"/api/pseudopotentials/{pseudo_id}/download/")
    assert response.status_code == 200 and response.streaming
    assert b"".join(response.streaming_content) == data
    assert response["X-Checksum-Sha256"] == hashlib.sha256(data).hexdigest()
    assert response["Content-Disposition"] == 'attachment; filename="Si.psf"'


def test_it_answers_404_when_the_stored_file_is_gone(api_as, pseudo):
    pseudo.file.storage.delete(pseudo.file.name)
    response = api_as("alice").get(f"/api/pseudopotentials/{pseudo.pk}/download/")
    assert response.status_code == 404 and "missing" in response.json()["detail"]


def test_it_filters_pseudopotentials_by_element_flavour_and_format(api_as, alice):
    PseudopotentialFactory(element="O", flavour="pbe")
    PseudopotentialFactory(element="O", flavour="")
    PseudopotentialFactory(element="Fe", flavour="pbe", format="psml", name="Fe.psml")
    client = api_as("mod")

    def count(query):
        return client.get(f"/api/pseudopotentials/?{query}").json()["count"]

    assert (count("element=O"), count("element=fe"), count("flavour=PBE"), count("format=psml")) == (2, 1, 2, 1)
    assert count("element=O&flavour=pbe") == 1


def test_it_changes_only_the_flavour_of_a_pseudopotential(api_as, pseudo):
    response = api_as("mod").patch(f"/api/pseudopotentials/{pseudo.pk}/", {"flavour": "vdw", "element": "Fe"},
                                   format="json")
    assert response.status_code == 200
    pseudo.refresh_from_db()
    assert (pseudo.flavour, pseudo.element) == ("vdw", "O")


def test_it_deletes_a_pseudopotential(api_as, pseudo):
    assert api_as("mod").delete(f"/api/pseudopotentials/{pseudo.pk}/").status_code == 204
    assert not Pseudopotential.objects.exists()


@pytest.mark.parametrize(("fields", "field", "message"), [
    ({"name": "../../etc/passwd.psf"}, "name", "'../../etc/passwd.psf' is a path"),
    ({"name": "/etc/passwd.psf"}, "name", "is a path"),
    ({"element": "Fe"}, "element", "O.psf is a pseudopotential for O, not Fe."),
    ({"name": "O.exe"}, "name", "ends in .psf or .psml"),
])
def test_it_refuses_a_bad_upload_and_stores_nothing(api_as, settings, fields, field, message):
    response = upload(api_as("alice"), psf_bytes("O"), **fields)
    assert response.status_code == 400
    assert any(message in m for m in response.json()[field]), response.json()
    assert not Pseudopotential.objects.exists()
    assert not (settings.MEDIA_ROOT / "pseudos").exists()


def test_it_refuses_content_that_is_no_pseudopotential(api_as):
    response = upload(api_as("alice"), b"#!/bin/sh\nrm -rf /\n", filename="evil.psf")
    assert response.status_code == 400 and "not a psf pseudopotential" in response.json()["file"][0]
    assert not Pseudopotential.objects.exists()


def test_it_keeps_a_traversing_file_name_inside_its_folder(api_as, settings):
    data = psf_bytes("O")
    response = upload(api_as("alice"), data, filename="../../etc/passwd.psf")
    stored = Pseudopotential.objects.get()
    digest = hashlib.sha256(data).hexdigest()
    assert response.status_code == 201 and stored.name == "passwd.psf"  # Django keeps only the base name
    assert stored.file.path == str(settings.MEDIA_ROOT / "pseudos" / digest / "passwd.psf")


def test_it_refuses_an_oversize_upload(api_as, settings):
    settings.UPLOAD_MAX_BYTES = 1024
    response = upload(api_as("alice"), (PSEUDOS / "O.psf").read_bytes())
    assert response.status_code == 400
    assert response.json()["file"] == [f"O.psf is {(PSEUDOS / 'O.psf').stat().st_size} bytes; the limit is 1024."]
    assert not Pseudopotential.objects.exists()


def test_it_refuses_an_upload_without_a_file(api_as):
    response = api_as("alice").post("/api/pseudopotentials/", {"element": "O"}, format="multipart")
    assert response.status_code == 400 and "file" in response.json()


@pytest.mark.parametrize("rows", [3, 30])
def test_it_lists_pseudopotentials_in_constant_queries(api_as, alice, django_assert_max_num_queries, rows):
    PseudopotentialFactory.create_batch(rows, uploaded_by=alice)
    client = api_as("alice")
    with django_assert_max_num_queries(3):
        response = client.get("/api/pseudopotentials/")
    assert response.json()["count"] == rows and response.json()["results"][0]["uploaded_by"] == "alice"


def test_it_documents_the_endpoints_in_the_schema(api_as):
    schema = api_as("anon").get("/api/schema/?format=json").content.decode()
    for path in ("/api/molecules/import/", "/api/molecules/{id}/export/", "/api/pseudopotentials/{id}/download/"):
        assert path in schema
