"""Structures in and out: XYZ and SIESTA fdf geometry blocks, no Django here.

A *structure* is a plain dict ``{"name", "species", "positions", "cell"}``: one element symbol
per atom, positions in Å, and the cell as three lattice vectors in Å (or ``None`` for a
molecule in vacuum). Every parse error is a ``ValueError`` saying what is wrong and on which
line, so the API can answer 400 with it.

Why our own fdf reader rather than sisl's ``fdfSileSiesta``: sisl follows ``%include`` and
``label < file`` redirections to files on the server (unsafe for uploaded text) and cannot
read a molecule without a cell (``Could not find LatticeConstant``). sisl supplies what it does
well here: the cell from ``LatticeParameters`` and the Bohr/Å conversion; the tests check our
reader against sisl's on real SIESTA inputs that have a cell.
"""

from __future__ import annotations

import math
import numbers
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import sisl

# fmt: off
ELEMENTS = (
    "H", "He", "Li", "Be", "B", "C", "N", "O", "F", "Ne", "Na", "Mg", "Al", "Si", "P", "S", "Cl",
    "Ar", "K", "Ca", "Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge", "As",
    "Se", "Br", "Kr", "Rb", "Sr", "Y", "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd", "In",
    "Sn", "Sb", "Te", "I", "Xe", "Cs", "Ba", "La", "Ce", "Pr", "Nd", "Pm", "Sm", "Eu", "Gd", "Tb",
    "Dy", "Ho", "Er", "Tm", "Yb", "Lu", "Hf", "Ta", "W", "Re", "Os", "Ir", "Pt", "Au", "Hg", "Tl",
    "Pb", "Bi", "Po", "At", "Rn", "Fr", "Ra", "Ac", "Th", "Pa", "U", "Np", "Pu", "Am", "Cm", "Bk",
    "Cf", "Es", "Fm", "Md", "No", "Lr", "Rf", "Db", "Sg", "Bh", "Hs", "Mt", "Ds", "Rg", "Cn", "Nh",
    "Fl", "Mc", "Lv", "Ts", "Og",
)
# fmt: on
ATOMIC_NUMBER = {symbol: z for z, symbol in enumerate(ELEMENTS, start=1)}
MAX_ATOMS = 100_000
BOHR = float(sisl.unit_convert("Bohr", "Ang"))  # Å per Bohr
_LENGTH_UNITS = {"ang": 1.0, "angstrom": 1.0, "bohr": BOHR, "au": BOHR, "nm": 10.0}


class StructureError(ValueError):
    """A structure that breaks a rule; ``field`` names the part at fault (species, positions, cell)."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def element_symbol(text: str) -> str | None:
    """The element symbol for ``text`` ("o", "FE", "8"), or None if it names no element."""
    text = text.strip()
    if text.isdigit():
        z = int(text)
        return ELEMENTS[z - 1] if 1 <= z <= len(ELEMENTS) else None
    symbol = text[:1].upper() + text[1:].lower()
    return symbol if symbol in ATOMIC_NUMBER else None


# --- Validation ------------------------------------------------------------------------


def _finite(value, where: str, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise StructureError(f"{where}: {value!r} is not a number.", field)
    if not math.isfinite(value):
        raise StructureError(f"{where}: {value!r} is not a finite number.", field)
    return float(value)


def _vectors(rows, what: str, field: str) -> list[list[float]]:
    if not isinstance(rows, list | tuple):
        raise StructureError(f"{what} must be a list of [x, y, z].", field)
    out = []
    for i, row in enumerate(rows, start=1):
        if not isinstance(row, list | tuple) or len(row) != 3:
            raise StructureError(f"{what} {i}: expected [x, y, z], got {row!r}.", field)
        out.append([_finite(v, f"{what} {i}", field) for v in row])
    return out


def check_structure(*, species, positions, cell) -> dict:
    """The structure, normalised (symbols capitalised, numbers as floats), or StructureError.

    Rules: species are element symbols, one per atom; positions are N×3 finite numbers;
    there is at least one atom; the cell is ``None`` or 3×3 finite numbers, not degenerate.
    """
    if not isinstance(species, list | tuple) or not species:
        raise StructureError("Give at least one atom: a list of element symbols.", "species")
    if len(species) > MAX_ATOMS:
        raise StructureError(f"At most {MAX_ATOMS} atoms.", "species")
    symbols = []
    for i, s in enumerate(species, start=1):
        symbol = element_symbol(s) if isinstance(s, str) and not s.strip().isdigit() else None
        if symbol is None:
            raise StructureError(f"Atom {i}: {s!r} is not an element symbol.", "species")
        symbols.append(symbol)
    coords = _vectors(positions, "Position", "positions")
    if len(coords) != len(symbols):
        raise StructureError(
            f"{len(symbols)} species but {len(coords)} positions: give one position per atom.", "positions")
    lattice = None
    if cell is not None:
        lattice = _vectors(cell, "Lattice vector", "cell")
        if len(lattice) != 3:
            raise StructureError("The cell must be three lattice vectors (3×3), or null.", "cell")
        if abs(_det(lattice)) < 1e-8:
            raise StructureError("The cell's lattice vectors are linearly dependent (zero volume).", "cell")
    return {"species": symbols, "positions": coords, "cell": lattice}


def _det(m: list[list[float]]) -> float:
    return (m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
            - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]))


def hill_formula(species: Iterable[str]) -> str:
    """Hill order: C, then H, then the rest alphabetically; without carbon, all alphabetically."""
    counts: dict[str, int] = {}
    for s in species:
        counts[s] = counts.get(s, 0) + 1
    order = sorted(counts)
    if "C" in counts:
        order = ["C"] + (["H"] if "H" in counts else []) + [s for s in order if s not in ("C", "H")]
    return "".join(s + (str(counts[s]) if counts[s] > 1 else "") for s in order)


# --- XYZ -------------------------------------------------------------------------------


def _number(token: str, line: int) -> float:
    try:
        value = float(token.replace("D", "e").replace("d", "e"))
    except ValueError:
        raise ValueError(f"line {line}: {token!r} is not a number.") from None
    if not math.isfinite(value):
        raise ValueError(f"line {line}: {token!r} is not a finite number.")
    return value


def _xyz_comment(comment: str, line: int) -> tuple[str, list[list[float]] | None]:
    """The name and cell in an XYZ comment line: plain text is the name; extended XYZ
    (``Lattice="..." name="..."``, as written by ASE and sisl) carries the cell."""
    if "lattice=" not in comment.lower():
        return comment.strip(), None
    try:
        pairs = dict(item.split("=", 1) for item in shlex.split(comment) if "=" in item)
    except ValueError as exc:
        raise ValueError(f"line {line}: unreadable extended-XYZ comment ({exc}).") from None
    pairs = {key.lower(): value for key, value in pairs.items()}
    numbers = [_number(t, line) for t in pairs.get("lattice", "").split()]
    if len(numbers) != 9:
        raise ValueError(f"line {line}: Lattice needs 9 numbers (three vectors), got {len(numbers)}.")
    return pairs.get("name", "").strip(), [numbers[0:3], numbers[3:6], numbers[6:9]]


def parse_xyz(text: str) -> dict:
    """A structure from XYZ text: atom count, a comment line (the name, or extended-XYZ
    ``Lattice="..."``), then ``symbol x y z`` per atom in Å. Only the first frame is read."""
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise ValueError("line 1: expected the number of atoms.")
    try:
        natoms = int(lines[0].split()[0])
    except ValueError:
        raise ValueError(f"line 1: expected the number of atoms, got {lines[0].strip()!r}.") from None
    if not 0 < natoms <= MAX_ATOMS:
        raise ValueError(f"line 1: the number of atoms must be between 1 and {MAX_ATOMS}, got {natoms}.")
    name, cell = _xyz_comment(lines[1] if len(lines) > 1 else "", 2)
    species, positions = [], []
    for n in range(3, natoms + 3):
        tokens = lines[n - 1].split() if n <= len(lines) else []
        if not tokens:
            raise ValueError(f"line {n}: expected atom {n - 2} of the {natoms} declared on line 1, "
                             "found no more atoms.")
        if len(tokens) < 4:
            raise ValueError(f"line {n}: expected 'symbol x y z', got {lines[n - 1].strip()!r}.")
        symbol = element_symbol(tokens[0])
        if symbol is None:
            raise ValueError(f"line {n}: unknown element {tokens[0]!r}.")
        species.append(symbol)
        positions.append([_number(t, n) for t in tokens[1:4]])
    _no_extra_atoms(lines, natoms)
    return {"name": name, "species": species, "positions": positions, "cell": cell}


def _no_extra_atoms(lines: list[str], natoms: int) -> None:
    """After the declared atoms: nothing, or the next frame of a trajectory (ignored)."""
    for n in range(natoms + 3, len(lines) + 1):
        tokens = lines[n - 1].split()
        if not tokens:
            continue
        if len(tokens) == 1 and tokens[0].isdigit():
            return  # a second frame
        raise ValueError(f"line {n}: more atoms than the {natoms} declared on line 1.")


def _spec(molecule) -> Mapping:
    return molecule.as_spec() if hasattr(molecule, "as_spec") else molecule


def _fmt(x: float) -> str:
    """Shortest text that reads back as the same float (so export→import is exact)."""
    return repr(float(x) + 0.0)  # + 0.0 turns -0.0 into 0.0


def to_xyz(molecule) -> str:
    """XYZ text of a molecule (or structure dict); a cell goes in the extended-XYZ comment."""
    spec = _spec(molecule)
    name = " ".join(str(spec.get("name") or "").split())
    if spec.get("cell"):
        lattice = " ".join(_fmt(v) for row in spec["cell"] for v in row)
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        comment = f'Lattice="{lattice}" Properties=species:S:1:pos:R:3 pbc="T T T" name="{quoted}"'
    else:
        comment = name
    rows = [f"{s:<3}{_fmt(x):>24}{_fmt(y):>24}{_fmt(z):>24}" for s, (x, y, z)
            in zip(spec["species"], spec["positions"], strict=True)]
    return "\n".join([str(len(rows)), comment, *rows]) + "\n"


# --- fdf -------------------------------------------------------------------------------


def _label(text: str) -> str:
    """fdf labels ignore case and the characters ``.``, ``_`` and ``-``."""
    return re.sub(r"[._-]", "", text).lower()


@dataclass
class _Fdf:
    """Labels and blocks with their line numbers; ``redirected`` maps a label or block read
    from another file (``label < file``, ``%block name < file``) to its line, ``includes``
    lists the lines of ``%include``: neither is followed (server files stay out of reach)."""

    values: dict[str, tuple[int, list[str]]] = field(default_factory=dict)
    blocks: dict[str, tuple[int, list[tuple[int, list[str]]]]] = field(default_factory=dict)
    redirected: dict[str, int] = field(default_factory=dict)
    includes: list[int] = field(default_factory=list)

    def _followed(self, label: str) -> None:
        if label in self.redirected:
            raise ValueError(f"line {self.redirected[label]}: reading from another file ('<') is not "
                             "supported: paste that file's content instead.")

    def value(self, label: str) -> tuple[int, list[str]] | None:
        self._followed(_label(label))
        return self.values.get(_label(label))

    def block(self, label: str) -> tuple[int, list[tuple[int, list[str]]]] | None:
        self._followed(_label(label))
        return self.blocks.get(_label(label))

    def missing(self, what: str) -> ValueError:
        """The error for a required label or block that is absent (maybe in an included file)."""
        if self.includes:
            return ValueError(f"line {self.includes[0]}: {what} is missing, maybe in the %include'd file; "
                              "includes are not followed: paste that file's content instead.")
        return ValueError(f"line 1: {what} is missing.")


def _strip_comment(line: str) -> str:
    return re.split(r"[#!;]", line, maxsplit=1)[0].strip()


def _read_fdf(text: str) -> _Fdf:
    """Labels and blocks of fdf text, each with its line number (first definition wins)."""
    fdf, open_block = _Fdf(), None  # open_block: (name, line, rows) while inside a block
    for n, raw in enumerate(text.splitlines(), start=1):
        tokens = _strip_comment(raw).split()
        if not tokens:
            continue
        keyword = tokens[0].lower()
        if open_block is None:
            open_block = _outside_block(fdf, n, tokens)
        elif keyword == "%endblock":
            fdf.blocks.setdefault(open_block[0], (open_block[1], open_block[2]))
            open_block = None
        elif keyword == "%block":
            raise ValueError(f"line {n}: %block inside the %block opened on line {open_block[1]}.")
        else:
            open_block[2].append((n, tokens))
    if open_block is not None:
        raise ValueError(f"line {open_block[1]}: %block {open_block[0]} is never closed by %endblock.")
    return fdf


def _outside_block(fdf: _Fdf, n: int, tokens: list[str]) -> tuple[str, int, list] | None:
    """Record one line outside blocks; returns the block it opens, if it opens one."""
    keyword = tokens[0].lower()
    if keyword == "%include":
        fdf.includes.append(n)
    elif keyword == "%endblock":
        raise ValueError(f"line {n}: %endblock without a %block.")
    elif keyword == "%block" and len(tokens) < 2:
        raise ValueError(f"line {n}: %block without a name.")
    elif "<" in tokens:
        fdf.redirected.setdefault(_label(tokens[1] if keyword == "%block" else tokens[0]), n)
    elif keyword == "%block":
        return _label(tokens[1]), n, []
    else:
        fdf.values.setdefault(_label(tokens[0]), (n, tokens[1:]))
    return None


def _count(fdf: _Fdf, label: str) -> tuple[int, int] | None:
    """An integer label such as NumberOfAtoms: (line, value), or None if absent."""
    found = fdf.value(label)
    if found is None:
        return None
    n, tokens = found
    try:
        return n, int(tokens[0])
    except (IndexError, ValueError):
        raise ValueError(f"line {n}: {label} must be a whole number.") from None


def _species_table(fdf: _Fdf) -> dict[int, str]:
    """ChemicalSpeciesLabel: species index → element symbol (from the atomic number)."""
    found = fdf.block("ChemicalSpeciesLabel")
    if found is None:
        raise fdf.missing("%block ChemicalSpeciesLabel (which element each species is)")
    _, rows = found
    table = {}
    for n, tokens in rows:
        if len(tokens) < 3 or not tokens[0].isdigit():
            raise ValueError(f"line {n}: expected 'index atomic-number label', got {' '.join(tokens)!r}.")
        try:
            z = int(tokens[1])
        except ValueError:
            raise ValueError(f"line {n}: atomic number {tokens[1]!r} is not an integer.") from None
        if not 1 <= z <= len(ELEMENTS):
            raise ValueError(f"line {n}: atomic number {z} is not a real element "
                             "(ghost and synthetic species are not supported).")
        table[int(tokens[0])] = ELEMENTS[z - 1]
    count = _count(fdf, "NumberOfSpecies")
    if count and count[1] != len(table):
        raise ValueError(f"line {count[0]}: NumberOfSpecies is {count[1]} but ChemicalSpeciesLabel "
                         f"lists {len(table)}.")
    return table


def _lattice_constant(fdf: _Fdf) -> float | None:
    """LatticeConstant in Å (fdf's default unit for it is Bohr)."""
    found = fdf.value("LatticeConstant")
    if found is None:
        return None
    n, tokens = found
    if not tokens:
        raise ValueError(f"line {n}: LatticeConstant needs a value.")
    unit = tokens[1].lower() if len(tokens) > 1 else "bohr"
    if unit not in _LENGTH_UNITS:
        raise ValueError(f"line {n}: unknown length unit {tokens[1]!r} (use Ang or Bohr).")
    return _number(tokens[0], n) * _LENGTH_UNITS[unit]


def _rows_of_numbers(found, width: int, count: int, what: str) -> list[list[float]]:
    line, rows = found
    if len(rows) != count:
        raise ValueError(f"line {line}: {what} needs {count} line(s) of {width} numbers, got {len(rows)}.")
    out = []
    for n, tokens in rows:
        if len(tokens) < width:
            raise ValueError(f"line {n}: expected {width} numbers, got {' '.join(tokens)!r}.")
        out.append([_number(t, n) for t in tokens[:width]])
    return out


def _cell(fdf: _Fdf, constant: float | None) -> list[list[float]] | None:
    vectors, parameters = fdf.block("LatticeVectors"), fdf.block("LatticeParameters")
    if vectors is None and parameters is None:
        return None
    if constant is None:
        line = (vectors or parameters)[0]
        raise ValueError(f"line {line}: the cell needs a LatticeConstant (e.g. 'LatticeConstant 1.0 Ang').")
    if vectors is not None:
        return [[constant * v for v in row] for row in _rows_of_numbers(vectors, 3, 3, "LatticeVectors")]
    (a, b, c, alpha, beta, gamma), = _rows_of_numbers(parameters, 6, 1, "LatticeParameters")
    cell = sisl.Lattice.tocell(a * constant, b * constant, c * constant, alpha, beta, gamma)
    return [[float(v) for v in row] for row in cell]


_COORDINATE_FORMATS = {
    "bohr": "bohr", "notscaledcartesianbohr": "bohr",
    "ang": "ang", "notscaledcartesianang": "ang",
    "scaledcartesian": "scaled",
    "fractional": "fractional", "scaledbylatticevectors": "fractional",
}


def _coordinate_format(fdf: _Fdf) -> str:
    found = fdf.value("AtomicCoordinatesFormat")
    if found is None:
        return "bohr"  # SIESTA's default
    n, tokens = found
    kind = _COORDINATE_FORMATS.get(_label(tokens[0]) if tokens else "")
    if kind is None:
        raise ValueError(f"line {n}: unknown AtomicCoordinatesFormat {' '.join(tokens)!r} "
                         "(use Ang, Bohr, ScaledCartesian or Fractional).")
    return kind


def _to_angstrom(xyz: list[float], kind: str, constant: float | None, cell, line: int) -> list[float]:
    if kind == "ang":
        return xyz
    if kind == "bohr":
        return [v * BOHR for v in xyz]
    if kind == "scaled":
        if constant is None:
            raise ValueError(f"line {line}: ScaledCartesian coordinates need a LatticeConstant.")
        return [v * constant for v in xyz]
    if cell is None:
        raise ValueError(f"line {line}: Fractional coordinates need a cell (LatticeVectors or LatticeParameters).")
    return [sum(xyz[i] * cell[i][k] for i in range(3)) for k in range(3)]


def _atoms(fdf: _Fdf, table: dict[int, str]) -> list[tuple[int, list[float], str]]:
    """(line, [x, y, z] as written, element) per atom of AtomicCoordinatesAndAtomicSpecies."""
    found = fdf.block("AtomicCoordinatesAndAtomicSpecies")
    if found is None:
        if fdf.block("Zmatrix") is not None:
            raise ValueError(f"line {fdf.block('Zmatrix')[0]}: Z-matrix geometries are not supported: "
                             "give Cartesian coordinates in %block AtomicCoordinatesAndAtomicSpecies.")
        if fdf.value("MDUseStructFile") is not None:
            raise ValueError(f"line {fdf.value('MDUseStructFile')[0]}: the geometry is in a STRUCT file, "
                             "not in this fdf.")
        raise fdf.missing("%block AtomicCoordinatesAndAtomicSpecies (the geometry)")
    line, rows = found
    if not rows:
        raise ValueError(f"line {line}: AtomicCoordinatesAndAtomicSpecies lists no atom.")
    if len(rows) > MAX_ATOMS:
        raise ValueError(f"line {line}: at most {MAX_ATOMS} atoms.")
    count = _count(fdf, "NumberOfAtoms")
    if count and count[1] != len(rows):
        raise ValueError(f"line {count[0]}: NumberOfAtoms is {count[1]} but the block on line {line} "
                         f"lists {len(rows)} atoms.")
    atoms = []
    for n, tokens in rows:
        if len(tokens) < 4:
            raise ValueError(f"line {n}: expected 'x y z species-index', got {' '.join(tokens)!r}.")
        index = int(tokens[3]) if tokens[3].isdigit() else None
        if index not in table:
            raise ValueError(f"line {n}: species index {tokens[3]!r} is not in ChemicalSpeciesLabel.")
        atoms.append((n, [_number(t, n) for t in tokens[:3]], table[index]))
    return atoms


def _fdf_name(fdf: _Fdf) -> str:
    for label in ("SystemName", "SystemLabel"):
        found = fdf.value(label)
        if found and found[1]:
            return " ".join(found[1])
    return ""


def parse_fdf(text: str) -> dict:
    """A structure from the geometry of a SIESTA fdf input: ChemicalSpeciesLabel,
    AtomicCoordinatesAndAtomicSpecies in Ang, Bohr, ScaledCartesian or Fractional coordinates,
    and the cell from LatticeConstant with LatticeVectors or LatticeParameters (if any)."""
    fdf = _read_fdf(text)
    table = _species_table(fdf)
    constant = _lattice_constant(fdf)
    cell = _cell(fdf, constant)
    kind = _coordinate_format(fdf)
    atoms = _atoms(fdf, table)
    return {"name": _fdf_name(fdf), "species": [element for _, _, element in atoms],
            "positions": [_to_angstrom(xyz, kind, constant, cell, n) for n, xyz, _ in atoms], "cell": cell}


def to_fdf(molecule) -> str:
    """The geometry of a molecule (or structure dict) as fdf that SIESTA reads: SystemName,
    Cartesian coordinates in Å, species labelled by their element symbol (so ``O`` uses
    ``O.psf``), and the cell as LatticeVectors when there is one (SIESTA sizes the box otherwise)."""
    spec = _spec(molecule)
    labels = list(dict.fromkeys(spec["species"]))
    index = {symbol: i for i, symbol in enumerate(labels, start=1)}
    name = " ".join(str(spec.get("name") or "").split())
    lines = [f"# {hill_formula(spec['species'])}, written by siestaflow", *([f"SystemName {name}"] if name else []),
             f"NumberOfAtoms {len(spec['species'])}", f"NumberOfSpecies {len(labels)}",
             "%block ChemicalSpeciesLabel",
             *(f" {index[s]} {ATOMIC_NUMBER[s]} {s}" for s in labels),
             "%endblock ChemicalSpeciesLabel"]
    if spec.get("cell"):
        lines += ["LatticeConstant 1.0 Ang", "%block LatticeVectors",
                  *(" ".join(f"{_fmt(v):>24}" for v in row) for row in spec["cell"]),
                  "%endblock LatticeVectors"]
    lines += ["AtomicCoordinatesFormat Ang", "%block AtomicCoordinatesAndAtomicSpecies",
              *(f"{_fmt(x):>24}{_fmt(y):>24}{_fmt(z):>24} {index[s]}" for s, (x, y, z)
                in zip(spec["species"], spec["positions"], strict=True)),
              "%endblock AtomicCoordinatesAndAtomicSpecies"]
    return "\n".join(lines) + "\n"


PARSERS = {"xyz": parse_xyz, "fdf": parse_fdf}
WRITERS = {"xyz": to_xyz, "fdf": to_fdf}
