"""XYZ and fdf: parsing, writing, round trips, real SIESTA inputs, and errors with line numbers."""

import numpy as np
import pytest
import sisl

from molecules.formats import parse_fdf, parse_xyz, to_fdf, to_xyz
from tests.molecules.conftest import DATA

WATER_XYZ = """3
water
O   0.000000  -0.065564   0.000000
H   0.756950   0.520318   0.000000
H  -0.756950   0.520318   0.000000
"""
WATER = {"name": "water", "species": ["O", "H", "H"],
         "positions": [[0.0, -0.065564, 0.0], [0.75695, 0.520318, 0.0], [-0.75695, 0.520318, 0.0]], "cell": None}
SI2 = {"name": "Si bulk", "species": ["Si", "Si"], "positions": [[0.0, 0.0, 0.0], [1.3575, 1.3575, 1.3575]],
       "cell": [[0.0, 2.715, 2.715], [2.715, 0.0, 2.715], [2.715, 2.715, 0.0]]}
BOHR = 0.529177210544

# sisl's fdf reader looks for basis files next to the fdf and warns when none fits.
pytestmark = pytest.mark.filterwarnings("ignore:Specification requirement")


def close(a, b):
    return np.allclose(np.array(a, dtype=float), np.array(b, dtype=float), atol=1e-9)


def same(a, b):
    assert a["species"] == b["species"]
    assert close(a["positions"], b["positions"])
    assert (a["cell"] is None) == (b["cell"] is None)
    if a["cell"] is not None:
        assert close(a["cell"], b["cell"])


# --- XYZ -------------------------------------------------------------------------------


def test_it_parses_xyz():
    assert parse_xyz(WATER_XYZ) == WATER


def test_it_normalises_symbol_case_and_atomic_numbers_in_xyz():
    structure = parse_xyz("2\n\ncl 0 0 0\n8 0 0 1.2\n")
    assert structure["species"] == ["Cl", "O"]
    assert structure["name"] == ""


def test_it_reads_the_cell_of_extended_xyz():
    text = '1\nLattice="5 0 0 0 5 0 0 0 5" Properties=species:S:1:pos:R:3 pbc="T T T"\nSi 0 0 0\n'
    structure = parse_xyz(text)
    assert structure["cell"] == [[5, 0, 0], [0, 5, 0], [0, 0, 5]]
    assert structure["name"] == ""


def test_it_reads_only_the_first_frame_of_an_xyz_trajectory():
    assert parse_xyz(WATER_XYZ + WATER_XYZ)["species"] == ["O", "H", "H"]


@pytest.mark.parametrize("spec", [WATER, SI2])
def test_it_round_trips_xyz_exactly(spec):
    assert parse_xyz(to_xyz(spec)) == spec


def test_it_writes_xyz_that_sisl_reads(tmp_path):
    path = tmp_path / "si.xyz"
    path.write_text(to_xyz(SI2))
    geometry = sisl.io.xyzSile(str(path)).read_geometry()
    assert close(geometry.xyz, SI2["positions"]) and close(geometry.cell, SI2["cell"])
    assert [atom.symbol for atom in geometry.atoms] == SI2["species"]


def test_it_keeps_quotes_in_a_name_through_extended_xyz():
    spec = {**SI2, "name": 'the "best" silicon'}
    assert parse_xyz(to_xyz(spec))["name"] == 'the "best" silicon'


@pytest.mark.parametrize(("text", "message"), [
    ("", "line 1: expected the number of atoms"),
    ("three\nwater\n", "line 1: expected the number of atoms, got 'three'"),
    ("0\nnothing\n", "line 1: the number of atoms must be between 1"),
    ("3\nwater\nO 0 0 0\nH 1 0 0\n", "line 5: expected atom 3 of the 3 declared on line 1"),
    ("2\nwater\nO 0 0 0\nH 1 0 0\nH 2 0 0\n", "line 5: more atoms than the 2 declared on line 1"),
    ("1\nx\nXx 0 0 0\n", "line 3: unknown element 'Xx'"),
    ("1\nx\nO 0 zero 0\n", "line 3: 'zero' is not a number"),
    ("1\nx\nO 0 nan 0\n", "line 3: 'nan' is not a finite number"),
    ("1\nx\nO 0 0\n", "line 3: expected 'symbol x y z'"),
    ('1\nLattice="1 2 3"\nO 0 0 0\n', "line 2: Lattice needs 9 numbers"),
])
def test_it_says_what_is_wrong_with_xyz_and_where(text, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        parse_xyz(text)


# --- fdf -------------------------------------------------------------------------------


def test_it_parses_a_real_molecule_fdf_without_a_cell(data):
    structure = parse_fdf(data("h2o.fdf"))
    assert structure == {"name": "Water molecule", "species": ["O", "H", "H"],
                         "positions": [[0.0, 0.0, 0.0], [0.757, 0.586, 0.0], [-0.757, 0.586, 0.0]], "cell": None}


@pytest.mark.parametrize("name", ["sih.fdf", "graphite_c6_full.fdf", "fe_clust_noncollinear-gga.fdf",
                                  "FePt_soc.fdf"])
def test_it_reads_real_fdf_files_as_sisl_does(data, name):
    structure = parse_fdf(data(name))
    geometry = sisl.io.siesta.fdfSileSiesta(str(DATA / name)).read_geometry()
    assert structure["species"] == [atom.symbol for atom in geometry.atoms]
    assert close(structure["positions"], geometry.xyz)
    assert close(structure["cell"], geometry.cell)


def test_it_reads_scaled_cartesian_coordinates_with_the_lattice_constant(data):
    structure = parse_fdf(data("sih.fdf"))
    assert len(structure["species"]) == 65 and structure["species"][-1] == "H"
    assert close(structure["positions"][1], [1.3575, 1.3575, 1.3575])  # 0.25 × 5.430 Å
    assert close(structure["cell"], np.eye(3) * 10.86)


def test_it_reads_fractional_coordinates_in_a_cell_from_lattice_parameters(data):
    structure = parse_fdf(data("graphite_c6_full.fdf"))
    a = np.array(structure["cell"])
    assert close(np.linalg.norm(a, axis=1), [2.461, 2.461, 6.708])
    assert close(structure["positions"][1], [0, 0, 3.354])


def test_it_reads_bohr_coordinates_and_a_bohr_lattice(data):
    structure = parse_fdf(data("fe_clust_noncollinear-gga.fdf"))
    assert close(structure["positions"][0], [0, 0, 3.644 * BOHR])
    assert close(structure["cell"][2], [0, 0, 20 * BOHR])


def test_it_takes_elements_from_atomic_numbers_not_species_labels(data):
    assert parse_fdf(data("FePt_soc.fdf"))["species"] == ["Fe", "Pt"]


def test_it_defaults_to_bohr_like_siesta():
    text = "%block ChemicalSpeciesLabel\n1 1 H\n%endblock ChemicalSpeciesLabel\n" \
           "%block AtomicCoordinatesAndAtomicSpecies\n0 0 1 1\n%endblock AtomicCoordinatesAndAtomicSpecies\n"
    assert close(parse_fdf(text)["positions"], [[0, 0, BOHR]])


def test_it_ignores_case_dots_underscores_and_dashes_in_labels():
    text = """number_of_atoms 1
%Block chemical.species-label
 1 8 O  # oxygen
%EndBlock chemical.species-label
atomiccoordinatesformat ang
%block Atomic_Coordinates_And_Atomic_Species
 1.5D0 0 0 1
%endblock Atomic_Coordinates_And_Atomic_Species
"""
    assert parse_fdf(text)["positions"] == [[1.5, 0.0, 0.0]]


@pytest.mark.parametrize("spec", [WATER, SI2])
def test_it_round_trips_fdf_exactly(spec):
    assert parse_fdf(to_fdf(spec)) == spec


@pytest.mark.parametrize("name", ["h2o.fdf", "sih.fdf", "graphite_c6_full.fdf", "fe_clust_noncollinear-gga.fdf"])
def test_it_round_trips_real_fdf_through_both_formats(data, name):
    structure = parse_fdf(data(name))
    same(parse_fdf(to_fdf(structure)), structure)
    same(parse_xyz(to_xyz(structure)), structure)


def test_it_writes_fdf_that_sisl_reads(tmp_path):
    path = tmp_path / "si.fdf"
    path.write_text(to_fdf(SI2))
    geometry = sisl.io.siesta.fdfSileSiesta(str(path)).read_geometry()
    assert close(geometry.xyz, SI2["positions"]) and close(geometry.cell, SI2["cell"])
    assert [atom.symbol for atom in geometry.atoms] == ["Si", "Si"]


def test_it_writes_a_geometry_block_labelled_by_element():
    text = to_fdf(WATER)
    assert "%block ChemicalSpeciesLabel\n 1 8 O\n 2 1 H\n%endblock ChemicalSpeciesLabel" in text
    assert "NumberOfAtoms 3" in text and "AtomicCoordinatesFormat Ang" in text
    assert "LatticeVectors" not in text  # SIESTA sizes the box of a molecule itself


SPECIES = "%block ChemicalSpeciesLabel\n 1 8 O\n%endblock ChemicalSpeciesLabel\n"
ATOM = "%block AtomicCoordinatesAndAtomicSpecies\n 0 0 0 1\n%endblock AtomicCoordinatesAndAtomicSpecies\n"


@pytest.mark.parametrize(("text", "message"), [
    ("NumberOfAtoms 2\n" + SPECIES + ATOM, "line 1: NumberOfAtoms is 2 but the block on line 5 lists 1 atoms"),
    (SPECIES + "%block AtomicCoordinatesAndAtomicSpecies\n 0 0 0 2\n%endblock AtomicCoordinatesAndAtomicSpecies\n",
     "line 5: species index '2' is not in ChemicalSpeciesLabel"),
    ("%block ChemicalSpeciesLabel\n 1 0 X\n%endblock ChemicalSpeciesLabel\n" + ATOM,
     "line 2: atomic number 0 is not a real element"),
    ("%block ChemicalSpeciesLabel\n 1 -1 H_ghost\n%endblock ChemicalSpeciesLabel\n" + ATOM,
     "line 2: atomic number -1 is not a real element"),
    (SPECIES + "%block AtomicCoordinatesAndAtomicSpecies\n 0 0 one 1\n%endblock AtomicCoordinatesAndAtomicSpecies\n",
     "line 5: 'one' is not a number"),
    (SPECIES + "%block AtomicCoordinatesAndAtomicSpecies\n 0 0 0 1\n", "line 4: %block atomiccoordinates"),
    (SPECIES + "%endblock Foo\n", "line 4: %endblock without a %block"),
    (SPECIES, "AtomicCoordinatesAndAtomicSpecies \\(the geometry\\) is missing"),
    (ATOM, "ChemicalSpeciesLabel .* is missing"),
    ("AtomicCoordinatesFormat Furlongs\n" + SPECIES + ATOM, "line 1: unknown AtomicCoordinatesFormat 'Furlongs'"),
    ("AtomicCoordinatesFormat Fractional\n" + SPECIES + ATOM, "line 6: Fractional coordinates need a cell"),
    ("AtomicCoordinatesFormat ScaledCartesian\n" + SPECIES + ATOM, "line 6: ScaledCartesian coordinates need a"),
    ("%block LatticeVectors\n1 0 0\n0 1 0\n0 0 1\n%endblock LatticeVectors\n" + SPECIES + ATOM,
     "line 1: the cell needs a LatticeConstant"),
    ("LatticeConstant 1 Ang\n%block LatticeVectors\n1 0 0\n0 1 0\n%endblock LatticeVectors\n" + SPECIES + ATOM,
     "line 2: LatticeVectors needs 3 line"),
    ("LatticeConstant 1 furlong\n" + SPECIES + ATOM, "line 1: unknown length unit 'furlong'"),
    ("%include /etc/passwd\n" + SPECIES, "line 1: .*includes are not followed"),
    (SPECIES + "%block AtomicCoordinatesAndAtomicSpecies < /etc/passwd\n",
     "line 4: reading from another file \\('<'\\) is not supported"),
    ("NumberOfSpecies 2\n" + SPECIES + ATOM, "line 1: NumberOfSpecies is 2 but ChemicalSpeciesLabel lists 1"),
])
def test_it_says_what_is_wrong_with_fdf_and_where(text, message):
    with pytest.raises(ValueError, match=message):
        parse_fdf(text)


def test_it_refuses_a_z_matrix_with_the_line_of_the_block(data):
    with pytest.raises(ValueError, match="line 23: Z-matrix geometries are not supported"):
        parse_fdf(data("benzene.fdf"))


def test_it_reads_the_geometry_even_when_other_blocks_are_included_from_files():
    text = "%block PAO.Basis < basis.fdf\n" + SPECIES + ATOM
    assert parse_fdf(text)["species"] == ["O"]
