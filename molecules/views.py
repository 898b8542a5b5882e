"""The Molecules pages: the list (the API's FilterSet), a molecule's page with a structure
preview and every calculation made of it side by side, import from XYZ or fdf, edit, delete.

Every signed-in user works with molecules (``accounts.permissions.can_use_science``); every
write goes through ``molecules.services``. Exports are the API's ``export`` action.
"""

from __future__ import annotations

import math

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, F
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts import permissions as perms
from calculations.models import Calculation, Result
from molecules import services
from molecules.filters import MoleculeFilterSet
from molecules.formats import ATOMIC_NUMBER
from molecules.forms import MoleculeEditForm, MoleculeImportForm
from molecules.models import Molecule
from siestaflow.forms import run_service

PAGE_SIZE = 25

# The results worth comparing across calculations: a label and the paths in a step's
# "extracted" data holding it (SIESTA's first, then PySCF's).
KEY_RESULTS = [
    ("Total energy (eV)", ("energies__total", "total_energy_ev")),
    ("Free energy (eV)", ("energies__free",)),
    ("Fermi level (eV)", ("energies__fermi",)),
    ("Gap (eV)", ("eigenvalues__gap", "gap_ev")),
    ("Max force (eV/Å)", ("forces__max_constrained",)),
    ("Pressure (kbar)", ("stress__pressure_kbar",)),
]


@perms.require(perms.can_use_science)
def molecule_list(request):
    """Molecules, filtered and searched as in the API, with how many calculations use each."""
    molecules = (Molecule.objects.visible_to(request.user).with_list_relations().defer("positions")
                 .annotate(calculation_count=Count("calculations")).order_by("name"))
    filterset = MoleculeFilterSet(request.GET, queryset=molecules)
    rows = filterset.qs if filterset.is_valid() else Molecule.objects.none()
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "molecules/molecule_list.html", {"filter": filterset, "page": page})


@perms.require(perms.can_use_science)
def molecule_detail(request, pk):
    """A molecule: its structure seen from a chosen side, exports, and its calculations."""
    molecule = get_object_or_404(Molecule.objects.visible_to(request.user).with_list_relations(), pk=pk)
    view = request.GET.get("view") if request.GET.get("view") in VIEWS else "tilted"
    calcs = (Calculation.objects.visible_to(request.user).filter(molecule=molecule)
             .select_related("owner", "cluster").order_by("-created_at", "-pk"))
    page = Paginator(calcs, PAGE_SIZE).get_page(request.GET.get("page"))  # a page of them side by side
    columns, rows = key_results(list(page))
    return render(request, "molecules/molecule_detail.html", {
        "molecule": molecule, "svg": structure_svg(molecule, VIEWS[view]), "view": view, "views": VIEWS,
        "columns": columns, "rows": rows, "page": page})


@perms.require(perms.can_use_science)
def molecule_create(request):
    """Import a molecule from an uploaded or pasted XYZ or fdf structure."""
    form = MoleculeImportForm(*_posted(request, files=True))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        molecule = _apply(form, lambda: services.import_molecule(
            actor=request.user, text=data["text"], fmt=data["format"], name=data["name"],
            description=data["description"], tags=data["tags"]), text_field="file" if data["file"] else "text")
        if molecule:
            messages.success(request, f"Molecule {molecule.name} imported: {molecule.formula}.")
            return redirect("molecule-detail", pk=molecule.pk)
    return render(request, "molecules/molecule_form.html", {"form": form, "molecule": None},
                  status=400 if form.errors else 200)


@perms.require(perms.can_use_science)
def molecule_edit(request, pk):
    """Change a molecule's name, description, tags and, optionally, its structure."""
    molecule = get_object_or_404(Molecule.objects.visible_to(request.user), pk=pk)
    initial = {"name": molecule.name, "description": molecule.description, "tags": molecule.tags}
    form = MoleculeEditForm(*_posted(request), initial=initial)
    if request.method == "POST" and form.is_valid():
        if _apply(form, lambda: services.update_molecule(actor=request.user, molecule=molecule,
                                                         **form.cleaned_data), text_field="structure"):
            messages.success(request, f"Molecule {molecule.name} saved.")
            return redirect("molecule-detail", pk=pk)
    return render(request, "molecules/molecule_form.html", {"form": form, "molecule": molecule},
                  status=400 if form.errors else 200)


@require_POST
@perms.require(perms.can_use_science)
def molecule_delete(request, pk):
    """Delete a molecule; its calculations keep their own copy of the structure."""
    molecule = get_object_or_404(Molecule.objects.visible_to(request.user), pk=pk)
    services.delete_molecule(actor=request.user, molecule=molecule)
    messages.success(request, f"Molecule {molecule.name} deleted.")
    return redirect("molecules")


def _posted(request, *, files: bool = False) -> tuple:
    """A form's data: the POST (even an empty one), or none on GET."""
    if request.method != "POST":
        return ()
    return (request.POST, request.FILES) if files else (request.POST,)


def _apply(form, write, *, text_field: str):
    """Run a service call; its errors land next to the form's fields (the structure's next
    to where it was given)."""
    return run_service(form, write, dict.fromkeys(("text", "species", "positions", "cell"), text_field))


# --- calculations side by side ----------------------------------------------------------


def key_results(calcs: list[Calculation]) -> tuple[list[str], list[tuple[Calculation, list[str]]]]:
    """The labels of the key results any of ``calcs`` has, and per calculation their values
    from the last step of its latest attempt. One query, reading only those JSON members (a
    step's extracted data may hold eigenvalues and SCF histories)."""
    paths = [f"data__{path}" for _label, options in KEY_RESULTS for path in options]
    rows = (Result.objects.filter(calculation__in=[c.pk for c in calcs], key="extracted", step__gte=0,
                                  attempt=F("calculation__attempt"))
            .values("calculation_id", "step", *paths).order_by("calculation_id", "step"))
    last = {row["calculation_id"]: row for row in rows}  # the highest step wins
    values = [[_first(last.get(calc.pk, {}), options) for _label, options in KEY_RESULTS] for calc in calcs]
    shown = [i for i in range(len(KEY_RESULTS)) if any(v[i] is not None for v in values)]
    return ([KEY_RESULTS[i][0] for i in shown],
            [(calc, [_show(v[i]) for i in shown]) for calc, v in zip(calcs, values, strict=True)])


def _first(row: dict, options: tuple[str, ...]):
    return next((row[f"data__{path}"] for path in options if row.get(f"data__{path}") is not None), None)


def _show(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.10g}"
    return str(value)


# --- structure preview ------------------------------------------------------------------

# (rotation about x, rotation about y) in degrees: the side the structure is seen from.
VIEWS = {"tilted": (-25, 35), "front": (0, 0), "side": (0, 90), "top": (-90, 0)}
MAX_DRAWN = 3000  # atoms drawn; bigger structures are previewed by their first atoms
MAX_BONDED = 400  # bonds are searched pairwise, so only in small structures
SIZE = 320
COLOURS = {"H": "#e8e8e8", "C": "#505050", "N": "#3050f8", "O": "#ff0d0d", "F": "#90e050", "Cl": "#1ff01f",
           "Br": "#a62929", "I": "#940094", "S": "#e6c52e", "P": "#ff8000", "Si": "#d2b48c", "B": "#ffb5b5",
           "Na": "#ab5cf2", "K": "#8f40d4", "Mg": "#8aff00", "Ca": "#3dff00", "Fe": "#e06633", "Cu": "#c88033",
           "Zn": "#7d80b0", "Au": "#ffd123", "Ag": "#c0c0c0", "Pt": "#d0d0e0", "Ti": "#bfc2c7", "Al": "#bfa6a6",
           "Li": "#cc80ff", "Ni": "#50d050", "Co": "#f090a0", "Ga": "#c28f8f", "As": "#bd80e3", "Ge": "#668f8f"}


def _radius(symbol: str) -> float:
    """A rough covalent radius in Å, growing with the period (enough for a preview)."""
    z = ATOMIC_NUMBER.get(symbol, 6)
    return 0.32 if z == 1 else 0.75 if z <= 10 else 1.1 if z <= 18 else 1.3 if z <= 36 else 1.45


def _rotate(points: list[list[float]], ax: float, ay: float) -> list[tuple[float, float, float]]:
    cx, sx, cy, sy = math.cos(math.radians(ax)), math.sin(math.radians(ax)), \
        math.cos(math.radians(ay)), math.sin(math.radians(ay))
    out = []
    for x, y, z in points:
        x, z = x * cy + z * sy, -x * sy + z * cy  # about y
        y, z = y * cx - z * sx, y * sx + z * cx  # about x
        out.append((x, y, z))
    return out


# The 12 edges of a cell, between corners numbered by which lattice vectors they add (bits).
CELL_EDGES = [(a, b) for a in range(8) for b in range(a + 1, 8) if bin(a ^ b).count("1") == 1]


def _corners(cell: list[list[float]]) -> list[list[float]]:
    return [[sum(cell[k][i] for k in range(3) if mask >> k & 1) for i in range(3)] for mask in range(8)]


def _bonds(species: list[str], positions: list[list[float]], atoms: list[dict]) -> list[dict]:
    """Lines between atoms closer than 1.2 times the sum of their radii (small structures only)."""
    if len(atoms) > MAX_BONDED:
        return []
    return [{"x1": atoms[i]["x"], "y1": atoms[i]["y"], "x2": atoms[j]["x"], "y2": atoms[j]["y"]}
            for i in range(len(atoms)) for j in range(i + 1, len(atoms))
            if math.dist(positions[i], positions[j]) <= 1.2 * (_radius(species[i]) + _radius(species[j]))]


def structure_svg(molecule: Molecule, angles: tuple[float, float]) -> dict:
    """The atoms (and the cell's edges) projected on the screen plane, farthest atoms first,
    with bonds between close atoms: circles and lines for an inline SVG, coloured by element."""
    species, positions = molecule.species[:MAX_DRAWN], molecule.positions[:MAX_DRAWN]
    corners = _corners(molecule.cell) if molecule.cell else []
    around = corners or positions  # a periodic structure is centred on its cell
    centre = [sum(p[i] for p in around) / len(around) for i in range(3)]
    rotated = _rotate([[p[i] - centre[i] for i in range(3)] for p in positions + corners], *angles)
    extent = max([max(abs(x), abs(y)) + _radius(s) for (x, y, _z), s in zip(rotated, species, strict=False)]
                 + [max(abs(x), abs(y)) for x, y, _z in rotated[len(positions):]])
    scale = (SIZE / 2 - 8) / max(extent, 1.0)
    flat = [(round(SIZE / 2 + x * scale, 1), round(SIZE / 2 - y * scale, 1)) for x, y, _z in rotated]
    atoms = [{"x": x, "y": y, "z": z, "r": round(max(_radius(s) * 0.45 * scale, 1.5), 1), "symbol": s,
              "colour": COLOURS.get(s, "#ff69b4")}
             for (x, y), (_x, _y, z), s in zip(flat, rotated, species, strict=False)]
    edges = [dict(zip(("x1", "y1", "x2", "y2"), (*flat[len(positions) + a], *flat[len(positions) + b]), strict=True))
             for a, b in CELL_EDGES] if corners else []
    legend = sorted(set(species), key=lambda s: ATOMIC_NUMBER.get(s, 0))
    return {"size": SIZE, "atoms": sorted(atoms, key=lambda a: a["z"]), "bonds": _bonds(species, positions, atoms),
            "cell": edges, "legend": [(s, COLOURS.get(s, "#ff69b4")) for s in legend],
            "truncated": len(molecule.species) > MAX_DRAWN}
