"""The admin writes through the services: its forms show the model's and services' messages."""

from django.core.files.uploadedfile import SimpleUploadedFile

from molecules.models import Molecule, Pseudopotential
from tests.factories import psf_bytes
from tests.molecules.conftest import PSEUDOS


def test_it_adds_a_molecule_owned_by_the_moderator(page_as, mod):
    response = page_as("mod").post("/admin/molecules/molecule/add/", {
        "name": "argon", "description": "", "tags": '["noble"]', "species": '["Ar"]',
        "positions": "[[0, 0, 0]]", "cell": "null"})
    assert response.status_code == 302, response.content.decode()[:2000]
    molecule = Molecule.objects.get(name="argon")
    assert molecule.owner == mod and molecule.tags == ["noble"]


def test_it_shows_the_structure_rules_in_the_molecule_form(page_as, mod):
    response = page_as("mod").post("/admin/molecules/molecule/add/", {
        "name": "bad", "tags": "[]", "species": '["Ar", "Qq"]', "positions": "[[0, 0, 0], [1, 1, 1]]",
        "cell": "null"})
    assert response.status_code == 200
    assert "Atom 2: &#x27;Qq&#x27; is not an element symbol." in response.content.decode()
    assert not Molecule.objects.exists()


def test_it_uploads_a_pseudopotential_in_the_admin(page_as, mod):
    data = (PSEUDOS / "N.psf").read_bytes()
    response = page_as("mod").post("/admin/molecules/pseudopotential/add/", {
        "file": SimpleUploadedFile("N.psf", data), "element": "", "flavour": "lda"})
    assert response.status_code == 302
    pseudo = Pseudopotential.objects.get()
    assert (pseudo.name, pseudo.element, pseudo.flavour, pseudo.uploaded_by) == ("N.psf", "N", "lda", mod)


def test_it_shows_the_upload_checks_in_the_admin(page_as, mod):
    response = page_as("mod").post("/admin/molecules/pseudopotential/add/", {
        "file": SimpleUploadedFile("N.psf", psf_bytes("N")), "element": "O", "flavour": ""})
    assert response.status_code == 200
    assert "N.psf is a pseudopotential for N, not O." in response.content.decode()
    assert not Pseudopotential.objects.exists()


def test_it_edits_only_the_flavour_of_a_pseudopotential(page_as, pseudo):
    response = page_as("root").post(f"/admin/molecules/pseudopotential/{pseudo.pk}/change/",
                                    {"flavour": "pbe", "element": "Fe"})
    assert response.status_code == 302
    pseudo.refresh_from_db()
    assert (pseudo.flavour, pseudo.element) == ("pbe", "O")


def test_it_deletes_through_the_admin_action(page_as, molecule):
    response = page_as("mod").post("/admin/molecules/molecule/", {
        "action": "delete_selected", "_selected_action": [molecule.pk], "post": "yes"})
    assert response.status_code == 302
    assert not Molecule.objects.exists()


def test_it_links_a_pseudopotential_to_its_download(page_as, pseudo):
    html = page_as("mod").get(f"/admin/molecules/pseudopotential/{pseudo.pk}/change/").content.decode()
    assert f'href="/api/pseudopotentials/{pseudo.pk}/download/"' in html
