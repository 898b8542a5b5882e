"""The Molecules pages: who may do what, the list (shared FilterSet, pagination, query
budget), the structure preview, calculations side by side, exports, import and edit."""

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext

from calculations.models import Calculation, Result
from molecules.models import Molecule
from tests.factories import ClusterFactory, MoleculeFactory

R = 302
WATER_XYZ = "3\nwater from xyz\nO 0 0 0\nH 0.757 0.586 0\nH -0.757 0.586 0\n"
BROKEN_XYZ = "3\nbroken\nO 0 0 0\nH 0.757 zero 0\nH -0.757 0.586 0\n"

# method, url, body, (anon, alice, mod, root)
MATRIX = [
    ("get", "/molecules/", None, (R, 200, 200, 200)),
    ("get", "/molecules/{m}/", None, (R, 200, 200, 200)),
    ("get", "/molecules/999999/", None, (R, 404, 404, 404)),
    ("get", "/molecules/new/", None, (R, 200, 200, 200)),
    ("post", "/molecules/new/", {"text": WATER_XYZ, "format": "xyz", "name": "imported"}, (R, 302, 302, 302)),
    ("get", "/molecules/{m}/edit/", None, (R, 200, 200, 200)),
    ("post", "/molecules/{m}/edit/", {"name": "renamed", "description": "", "tags": ""}, (R, 302, 302, 302)),
    ("get", "/molecules/{m}/delete/", None, (405, 405, 405, 405)),
    ("post", "/molecules/{m}/delete/", None, (R, 302, 302, 302)),
    ("post", "/molecules/999999/delete/", None, (R, 404, 404, 404)),
]


@pytest.mark.parametrize("persona", ["anon", "alice", "mod", "root"])
@pytest.mark.parametrize(("method", "url", "body", "expected"), MATRIX, ids=[f"{m} {u}" for m, u, *_ in MATRIX])
def test_it_lets_each_role_do_only_what_it_may(page_as, persona, method, url, body, expected, molecule):
    response = getattr(page_as(persona), method)(url.format(m=molecule.pk), body or {})
    assert response.status_code == expected[["anon", "alice", "mod", "root"].index(persona)]
    if persona == "anon":  # nothing changed for a visitor
        assert list(Molecule.objects.values_list("name", flat=True)) == ["water"]


def test_it_keeps_blocked_users_out(page_as, alice, molecule):
    client = page_as("alice")
    alice.is_active = False
    alice.save()
    assert client.get("/molecules/").status_code == R


# --- list -------------------------------------------------------------------------------------


def _list_queries(client, url="/molecules/") -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_it_lists_in_the_same_number_of_queries_at_5_and_50_rows(page_as, alice, settings):
    settings.DEBUG = False
    cluster = ClusterFactory()
    client = page_as("alice")

    def add(n):
        for _ in range(n):
            m = MoleculeFactory(owner=alice, tags=["t"])
            Calculation.objects.create(name="c", owner=alice, cluster=cluster, molecule=m, engine="command",
                                       inputs_hash=str(m.pk))

    add(5)
    few = _list_queries(client)
    add(45)
    assert _list_queries(client) == few <= 6


def test_it_searches_filters_by_tag_and_element_and_pages(page_as, alice):
    MoleculeFactory(name="benzene", species=["C", "H"], positions=[[0, 0, 0], [1.1, 0, 0]], tags=["aromatic"])
    MoleculeFactory(name="water", tags=["solvent"])
    for n in range(30):
        MoleculeFactory(name=f"zz{n:02d}")
    client = page_as("alice")

    def names(url):
        return re.findall(r'<a href="/molecules/\d+/">([^<]+)</a>', client.get(url).content.decode())

    assert names("/molecules/?search=benz") == ["benzene"]
    assert names("/molecules/?tag=solvent") == ["water"]
    assert names("/molecules/?element=C") == ["benzene"]
    first, second = names("/molecules/"), names("/molecules/?page=2")
    assert len(first) == 25 and len(second) == 7 and not set(first) & set(second)
    html = client.get("/molecules/?search=zz").content.decode()
    assert 'href="?search=zz&amp;page=2"' in html  # paging keeps the filters


# --- detail -----------------------------------------------------------------------------------


def test_it_previews_the_structure_coloured_by_element(page_as, molecule):
    html = page_as("alice").get(f"/molecules/{molecule.pk}/").content.decode()
    svg = re.search(r'<svg class="structure".*?</svg>', html, re.S).group(0)
    fills = re.findall(r'fill="(#[0-9a-f]{6})"><title>(\w+)</title>', svg)
    assert sorted(fills) == sorted([("#ff0d0d", "O"), ("#e8e8e8", "H"), ("#e8e8e8", "H")])
    assert len(re.findall(r"<line ", svg)) == 2  # the two O–H bonds, not H–H


def test_it_draws_the_cell_of_a_periodic_structure_around_its_atoms(page_as):
    crystal = MoleculeFactory(name="si", species=["Si", "Si"], positions=[[0, 0, 0], [1.36, 1.36, 1.36]],
                              cell=[[5.43, 0, 0], [0, 5.43, 0], [0, 0, 5.43]])
    html = page_as("alice").get(f"/molecules/{crystal.pk}/?view=front").content.decode()
    edges = re.findall(r'<line class="cell" x1="([\d.]+)" y1="([\d.]+)" x2="([\d.]+)" y2="([\d.]+)"', html)
    assert len(edges) == 12
    xs = [float(v) for edge in edges for v in edge[::2]]
    atoms = [float(x) for x in re.findall(r'<circle cx="([\d.]+)"', html)]
    assert min(xs) <= min(atoms) and max(atoms) <= max(xs)  # the atoms sit inside the drawn cell
    assert 0 <= min(xs) and max(xs) <= 320


def test_it_turns_the_view_and_ignores_unknown_views(page_as, molecule):
    client = page_as("alice")
    top = client.get(f"/molecules/{molecule.pk}/?view=top").content.decode()
    front = client.get(f"/molecules/{molecule.pk}/?view=front").content.decode()
    odd = client.get(f"/molecules/{molecule.pk}/?view=<script>").content.decode()

    def circles(html):
        return re.findall(r'<circle cx="([\d.]+)" cy="([\d.]+)"', html)

    assert circles(top) != circles(front)  # water lies in the xy plane: seen edge-on from the top
    assert len({cy for _cx, cy in circles(top)}) == 1
    assert circles(odd) == circles(client.get(f"/molecules/{molecule.pk}/").content.decode())
    assert "<script>" not in odd


def test_it_links_the_api_exports(page_as, molecule):
    client = page_as("alice")
    html = client.get(f"/molecules/{molecule.pk}/").content.decode()
    links = re.findall(r'href="([^"]+/export/\?format=\w+)"', html)
    assert links == [f"/api/molecules/{molecule.pk}/export/?format={fmt}" for fmt in ("xyz", "fdf")]
    xyz = client.get(links[0])
    assert xyz.status_code == 200 and xyz.content.decode().startswith("3\n")
    assert "AtomicCoordinatesAndAtomicSpecies" in client.get(links[1]).content.decode()


def test_it_shows_every_calculation_with_key_results_side_by_side(page_as, alice, molecule, settings):
    settings.DEBUG = False
    cluster = ClusterFactory(name="hpc1")
    calcs = []
    for n, total in enumerate([-465.1, -466.25, None]):
        calc = Calculation.objects.create(name=f"run {n}", owner=alice, cluster=cluster, molecule=molecule,
                                          engine="siesta", inputs_hash=str(n), state="succeeded", attempt=2)
        calcs.append(calc)
        if total is not None:
            Result.objects.create(calculation=calc, attempt=2, step=0, key="extracted",
                                  data={"energies": {"total": total + 1, "fermi": -4.0}})
            Result.objects.create(calculation=calc, attempt=2, step=1, key="extracted",
                                  data={"energies": {"total": total, "fermi": -4.5}})
            Result.objects.create(calculation=calc, attempt=1, step=1, key="extracted",
                                  data={"energies": {"total": 999.0}})  # an earlier try
    pyscf = Calculation.objects.create(name="run 3", owner=alice, cluster=cluster, molecule=molecule,
                                       engine="pyscf", inputs_hash="p", state="succeeded")
    Result.objects.create(calculation=pyscf, attempt=1, step=0, key="extracted",
                          data={"total_energy_ev": -2070.5, "gap_ev": 12.25, "mo_energy": [-20.1, -1.3]})
    other = MoleculeFactory()
    Calculation.objects.create(name="elsewhere", owner=alice, cluster=cluster, molecule=other, engine="siesta",
                               inputs_hash="x")
    client = page_as("alice")
    with CaptureQueriesContext(connection) as queries:
        html = client.get(f"/molecules/{molecule.pk}/").content.decode()
    table = re.search(r"<h2>Calculations</h2>(.*?)</section>", html, re.S).group(1)
    headers = re.findall(r'<th scope="col" class="num">([^<]+)</th>', table)
    assert headers == ["Total energy (eV)", "Fermi level (eV)", "Gap (eV)"]
    rows = re.findall(r"<tr><td>(.*?)</tr>", table, re.S)
    cells = {re.search(r"run \d", row).group(0): re.findall(r'<td class="num">([^<]+)</td>', row) for row in rows}
    assert cells == {"run 0": ["-465.1", "-4.5", "—"], "run 1": ["-466.25", "-4.5", "—"], "run 2": ["—", "—", "—"],
                     "run 3": ["-2070.5", "—", "12.25"]}  # SIESTA's and PySCF's names in the same columns
    assert "elsewhere" not in table
    assert len(queries) <= 8


def test_it_pages_through_a_molecules_calculations_newest_first(page_as, alice, molecule):
    from molecules.views import PAGE_SIZE

    cluster = ClusterFactory(name="hpc1")
    Calculation.objects.bulk_create([
        Calculation(name=f"run {n:03d}", owner=alice, cluster=cluster, molecule=molecule, engine="siesta",
                    inputs_hash=str(n)) for n in range(PAGE_SIZE + 3)])
    client = page_as("alice")
    first = client.get(f"/molecules/{molecule.pk}/").content.decode()
    second = client.get(f"/molecules/{molecule.pk}/?page=2").content.decode()
    names = lambda html: re.findall(r"run (\d{3})", html)  # noqa: E731 - a one-line helper
    assert len(names(first)) == PAGE_SIZE and len(names(second)) == 3
    assert names(first)[0] == f"{PAGE_SIZE + 2:03d}" and "Page 1 of 2" in first  # newest first


# --- import, edit, delete ---------------------------------------------------------------------


def test_it_imports_pasted_xyz(page_as, alice):
    response = page_as("alice").post("/molecules/new/", {"text": WATER_XYZ, "format": "xyz", "tags": "solvent, Small"})
    molecule = Molecule.objects.get()
    assert response["Location"] == f"/molecules/{molecule.pk}/"
    assert (molecule.name, molecule.formula, molecule.tags, molecule.owner) == (
        "water from xyz", "H2O", ["solvent", "small"], alice)


def test_it_imports_an_uploaded_fdf(page_as, data):
    upload = SimpleUploadedFile("h2o.fdf", data("h2o.fdf").encode())
    response = page_as("alice").post("/molecules/new/", {"file": upload, "name": "uploaded water"})
    assert response.status_code == 302
    assert Molecule.objects.get(name="uploaded water").formula == "H2O"


def test_it_shows_a_parse_error_next_to_the_text_and_keeps_it(page_as):
    response = page_as("alice").post("/molecules/new/", {"text": BROKEN_XYZ, "format": "xyz", "name": "bad"})
    html = response.content.decode()
    assert response.status_code == 400 and not Molecule.objects.exists()
    field = re.search(r'<div class="field invalid">\s*<label for="id_text">.*?</textarea>.*?</div>\s*</div>',
                      html, re.S).group(0)
    assert "Not valid xyz" in field and "line 4" in field
    assert "H 0.757 zero 0" in field  # the typed text is kept
    assert 'value="bad"' in html


def test_it_shows_a_bad_upload_next_to_the_file_field(page_as):
    upload = SimpleUploadedFile("water.xyz", BROKEN_XYZ.encode())
    html = page_as("alice").post("/molecules/new/", {"file": upload}).content.decode()
    field = re.search(r'<div class="field invalid">\s*<label for="id_file">.*?</div>\s*</div>', html, re.S).group(0)
    assert "Not valid xyz" in field
    binary = SimpleUploadedFile("water.xyz", b"\xff\xfe\x00bad")
    assert "not UTF-8" in page_as("alice").post("/molecules/new/", {"file": binary}).content.decode()


@pytest.mark.parametrize(("body", "field", "message"), [
    ({}, None, "Upload a file or paste the structure."),
    ({"text": WATER_XYZ}, "format", "Say which format"),
    ({"text": WATER_XYZ, "format": "pdb"}, "format", "Select a valid choice"),
    ({"text": WATER_XYZ, "format": "xyz", "tags": "bad tag!"}, "tags", "Tags are up to 50"),
])
def test_it_refuses_bad_imports_with_a_message_where_it_belongs(page_as, body, field, message):
    response = page_as("alice").post("/molecules/new/", body)
    html = response.content.decode()
    assert response.status_code == 400 and not Molecule.objects.exists()
    where = html if field is None else re.search(
        rf'<label for="id_{field}">.*?</div>\s*</div>', html, re.S).group(0)
    assert message in where


def test_it_refuses_a_taken_name_next_to_the_name(page_as, molecule):
    html = page_as("alice").post("/molecules/new/", {"text": WATER_XYZ, "format": "xyz", "name": "water"}
                                 ).content.decode()
    assert re.search(r'<label for="id_name">.*?already exists.*?</div>\s*</div>', html, re.S)
    assert Molecule.objects.count() == 1


def test_it_edits_names_tags_and_replaces_the_structure(page_as, molecule):
    client = page_as("mod")
    response = client.post(f"/molecules/{molecule.pk}/edit/", {
        "name": "methane", "description": "edited", "tags": "gas", "format": "xyz",
        "structure": "2\n\nC 0 0 0\nH 0 0 1.09\n"})
    assert response.status_code == 302
    molecule.refresh_from_db()
    assert (molecule.name, molecule.description, molecule.tags) == ("methane", "edited", ["gas"])
    assert molecule.formula == "CH"


def test_it_keeps_the_structure_when_the_edit_is_refused(page_as, molecule):
    response = page_as("alice").post(f"/molecules/{molecule.pk}/edit/", {
        "name": "water", "tags": "", "format": "xyz", "structure": BROKEN_XYZ})
    html = response.content.decode()
    assert response.status_code == 400 and "Not valid xyz" in html and "H 0.757 zero 0" in html
    molecule.refresh_from_db()
    assert molecule.formula == "H2O"


def test_it_prefills_the_edit_form(page_as, molecule):
    html = page_as("alice").get(f"/molecules/{molecule.pk}/edit/").content.decode()
    assert 'value="water"' in html and 'value="demo, small"' in html


def test_it_deletes_a_molecule_and_keeps_its_calculations(page_as, alice, molecule):
    calc = Calculation.objects.create(name="c", owner=alice, cluster=ClusterFactory(), molecule=molecule,
                                      engine="command", inputs_hash="h")
    response = page_as("alice").post(f"/molecules/{molecule.pk}/delete/")
    assert response["Location"] == "/molecules/"
    assert not Molecule.objects.exists()
    assert Calculation.objects.get(pk=calc.pk).molecule is None
