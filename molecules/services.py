"""Every change to molecules and pseudopotentials: one function each, one transaction.

The API, the admin and ``seed_demo`` shape input and call these. ``actor`` is the acting
user, checked against ``accounts.permissions.can_use_science``; ``None`` means the system
itself (management commands), never a request.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files import File
from django.db import IntegrityError, transaction

from accounts.permissions import can_use_science
from molecules.formats import PARSERS, element_symbol
from molecules.models import Molecule, Pseudopotential

MOLECULE_FIELDS = ("name", "description", "tags", "species", "positions", "cell")


def _check(actor) -> None:
    if actor is not None and not can_use_science(actor):
        raise PermissionDenied("Sign in to work with molecules and pseudopotentials.")


def _save_unique(obj, field: str) -> None:
    """Save; a unique clash that slipped past full_clean (a concurrent write) is a 400 too."""
    try:
        with transaction.atomic():
            obj.save()
    except IntegrityError:
        raise ValidationError({field: [f"This {field} is already taken."]}) from None


# --- Molecules -------------------------------------------------------------------------


@transaction.atomic
def create_molecule(*, actor, name: str, species: list, positions: list, cell: list | None = None,
                    description: str = "", tags: list | tuple = ()) -> Molecule:
    """Create a molecule; the structure is validated by ``Molecule.clean``."""
    _check(actor)
    molecule = Molecule(name=name, description=description, tags=tags, species=species,
                        positions=positions, cell=cell, owner=actor)
    molecule.full_clean(exclude=["owner"])
    _save_unique(molecule, "name")
    return molecule


@transaction.atomic
def update_molecule(*, actor, molecule: Molecule, **fields) -> Molecule:
    """Change any of name, description, tags, species, positions and cell."""
    _check(actor)
    unknown = set(fields) - set(MOLECULE_FIELDS)
    if unknown:
        raise ValidationError({name: ["This field cannot be changed."] for name in sorted(unknown)})
    for name, value in fields.items():
        setattr(molecule, name, value)
    molecule.full_clean(exclude=["owner"])
    _save_unique(molecule, "name")
    return molecule


@transaction.atomic
def delete_molecule(*, actor, molecule: Molecule) -> None:
    """Delete a molecule; calculations made of it keep their own copy of the structure."""
    _check(actor)
    molecule.delete()


@transaction.atomic
def import_molecule(*, actor, text: str, fmt: str, name: str = "", description: str = "",
                    tags: list | tuple = ()) -> Molecule:
    """Create a molecule from XYZ or fdf text. Named ``name``, else by the file (the XYZ
    comment line, the fdf's SystemName or SystemLabel). Parse errors give the line."""
    _check(actor)
    if fmt not in PARSERS:
        raise ValidationError({"format": [f"Unknown format {fmt!r}: choose one of {', '.join(PARSERS)}."]})
    try:
        structure = PARSERS[fmt](text)
    except ValueError as exc:
        raise ValidationError({"text": [f"Not valid {fmt}: {exc}"]}) from None
    name = name.strip() or structure["name"]
    if not name:
        raise ValidationError({"name": ["The file names no molecule: give a name."]})
    return create_molecule(actor=actor, name=name, description=description, tags=tags,
                           species=structure["species"], positions=structure["positions"], cell=structure["cell"])


# --- Pseudopotentials ------------------------------------------------------------------

PSEUDO_EXTENSIONS = {"psf": Pseudopotential.Format.PSF, "psml": Pseudopotential.Format.PSML}
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,190}$")
_HEAD_BYTES = 64 * 1024  # enough for any psf header and a psml's <pseudo-atom-spec>
_PSF_RELATIVITY = {"nrl", "rel", "isp", "srl"}
_PSML_ROOT = re.compile(r"^\s*(<\?xml[^>]*\?>\s*)?(<!--.*?-->\s*)*<psml[\s>]", re.DOTALL)
_PSML_Z = re.compile(r"<pseudo-atom-spec\b[^>]*\batomic-number=\"(\d+)", re.DOTALL)


@dataclass(frozen=True)
class CheckedPseudo:
    """What an upload turned out to be: checked name, element, format, digest and size."""

    name: str
    element: str
    format: str
    sha256: str
    size: int


def _checked_name(name: str) -> tuple[str, str]:
    """The file name and its format; a path, hidden or odd name, or wrong extension is refused."""
    name = (name or "").strip()
    if "/" in name or "\\" in name or "\x00" in name:
        raise ValidationError({"name": [f"{name!r} is a path: give a plain file name such as 'O.psf'."]})
    if name.startswith("."):
        raise ValidationError({"name": [f"{name!r} is hidden: a file name starts with a letter or digit."]})
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if extension not in PSEUDO_EXTENSIONS:
        raise ValidationError({"name": [f"{name!r}: a pseudopotential file ends in .psf or .psml."]})
    if not _NAME_RE.match(name):
        raise ValidationError({"name": [f"{name!r}: use letters, digits, '.', '_', '+' or '-' only."]})
    return name, PSEUDO_EXTENSIONS[extension]


def _digest(content: File) -> tuple[str, bytes]:
    """SHA-256 of the whole content (streamed) and its first bytes."""
    sha, head = hashlib.sha256(), b""
    content.seek(0)
    for chunk in content.chunks():
        sha.update(chunk)
        if len(head) < _HEAD_BYTES:
            head += chunk[: _HEAD_BYTES - len(head)]
    content.seek(0)
    return sha.hexdigest(), head


def _psf_element(head: bytes, name: str) -> str | None:
    """The element a psf's first line names (e.g. ' O  ca nrl nc'); None for a label that
    is no element, such as a mixed (VCA) pseudopotential's 'SX'."""
    text = head.decode("ascii", errors="replace")
    tokens = text.split("\n", 1)[0].split()
    if len(tokens) < 3 or tokens[2].lower() not in _PSF_RELATIVITY or "radial grid follows" not in text.lower():
        raise ValidationError({"file": [f"{name} is not a psf pseudopotential: its first line should name the "
                                        "element, functional and relativity (e.g. ' O  ca nrl nc') and a "
                                        "'Radial grid follows' line should come next."]})
    return element_symbol(tokens[0]) if tokens[0].isalpha() else None


def _psml_element(head: bytes, name: str) -> str | None:
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
    if not _PSML_ROOT.match(text):
        raise ValidationError({"file": [f"{name} is not PSML: an XML document with a <psml> root was expected."]})
    found = _PSML_Z.search(text)
    return element_symbol(found.group(1)) if found else None


def _agreed_element(declared: str | None, given: str | None, name: str) -> str:
    if given:
        symbol = element_symbol(given) if not given.strip().isdigit() else None
        if symbol is None:
            raise ValidationError({"element": [f"{given!r} is not an element symbol."]})
        if declared and declared != symbol:
            raise ValidationError({"element": [f"{name} is a pseudopotential for {declared}, not {symbol}."]})
        return symbol
    if declared is None:
        raise ValidationError({"element": [f"{name} does not name a real element: give the element."]})
    return declared


def check_pseudopotential(*, content: File, name: str | None = None, element: str | None = None) -> CheckedPseudo:
    """Check an upload without storing it: a plain .psf/.psml name, at most
    ``UPLOAD_MAX_BYTES``, a plausible header, and an element agreeing with the file's own."""
    name, fmt = _checked_name(name if name is not None else content.name)
    if content.size > settings.UPLOAD_MAX_BYTES:
        raise ValidationError({"file": [f"{name} is {content.size} bytes; the limit is {settings.UPLOAD_MAX_BYTES}."]})
    if not content.size:
        raise ValidationError({"file": [f"{name} is empty."]})
    sha256, head = _digest(content)
    declared = _psf_element(head, name) if fmt == "psf" else _psml_element(head, name)
    return CheckedPseudo(name=name, element=_agreed_element(declared, element, name), format=fmt,
                         sha256=sha256, size=content.size)


@transaction.atomic
def upload_pseudopotential(*, actor, content: File, name: str | None = None, element: str | None = None,
                           flavour: str = "") -> tuple[Pseudopotential, bool]:
    """Store a pseudopotential once per content: the same bytes again return the stored one
    (whatever name, element or flavour came with them). Returns ``(pseudo, created)``."""
    _check(actor)
    checked = check_pseudopotential(content=content, name=name, element=element)
    existing = Pseudopotential.objects.filter(sha256=checked.sha256).first()
    if existing is not None:
        return existing, False
    pseudo = Pseudopotential(element=checked.element, flavour=(flavour or "").strip(), name=checked.name,
                             sha256=checked.sha256, size=checked.size, format=checked.format, uploaded_by=actor)
    pseudo.full_clean(exclude=["file", "uploaded_by", "sha256"])
    pseudo.file.save(checked.name, content, save=False)  # pseudos/<sha256>/<name>
    try:
        with transaction.atomic():
            pseudo.save()
    except IntegrityError:  # the same bytes stored concurrently: theirs wins
        winner = Pseudopotential.objects.get(sha256=checked.sha256)
        if winner.file.name != pseudo.file.name:
            pseudo.file.delete(save=False)
        return winner, False
    return pseudo, True


@transaction.atomic
def update_pseudopotential(*, actor, pseudo: Pseudopotential, flavour: str) -> Pseudopotential:
    """Change the flavour (the file, and so its name and element, never change)."""
    _check(actor)
    pseudo.flavour = (flavour or "").strip()
    pseudo.full_clean(exclude=["file", "uploaded_by", "sha256"])
    pseudo.save(update_fields=["flavour"])
    return pseudo


@transaction.atomic
def delete_pseudopotential(*, actor, pseudo: Pseudopotential) -> None:
    """Delete a pseudopotential and, once committed, its file."""
    _check(actor)
    # Calculation.pseudopotentials is many-to-many (no on_delete): refuse here, so a
    # calculation can always be rerun with the exact pseudopotentials it used.
    used = pseudo.calculations.count()
    if used:
        raise ValidationError({"detail": f"{pseudo.name} is used by {used} calculation(s) and cannot be deleted."})
    storage, path = pseudo.file.storage, pseudo.file.name
    pseudo.delete()
    transaction.on_commit(lambda: storage.delete(path))
