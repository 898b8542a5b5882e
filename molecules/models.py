"""Molecules (structures that calculations start from) and the pseudopotential library."""

from __future__ import annotations

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from molecules.formats import StructureError, check_structure, hill_formula

TAG_RE = re.compile(r"^[a-z0-9][a-z0-9._+-]{0,49}$")
MAX_TAGS = 20


class MoleculeQuerySet(models.QuerySet):
    def visible_to(self, user) -> MoleculeQuerySet:
        """Every signed-in user sees every molecule; nobody else sees any."""
        from accounts.permissions import can_use_science

        return self if can_use_science(user) else self.none()

    def search(self, text: str) -> MoleculeQuerySet:
        """Name, description or a tag containing ``text`` (case-insensitive)."""
        text = text.strip()
        if not text:
            return self
        return self.filter(Q(name__icontains=text) | Q(description__icontains=text) | Q(tags__icontains=text))

    def tagged(self, tag: str) -> MoleculeQuerySet:
        """Molecules carrying exactly ``tag``. Tags are plain lower-case ASCII (see ``clean``),
        so the quoted tag matches one whole list item in the stored JSON text, on SQLite and
        PostgreSQL alike (SQLite has no JSON ``contains``)."""
        return self.filter(tags__icontains=f'"{tag.strip().lower()}"')

    def containing(self, element: str) -> MoleculeQuerySet:
        """Molecules with at least one atom of ``element`` (a symbol such as "O"); the quotes
        keep "O" from matching "Os" or "Co" (stored symbols are always capitalised)."""
        return self.filter(species__icontains=f'"{element.strip()}"')

    def with_list_relations(self) -> MoleculeQuerySet:
        return self.select_related("owner")


class Molecule(models.Model):
    """A structure: element symbols, Cartesian positions in Å and an optional cell."""

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    tags = models.JSONField(default=list, blank=True)  # lower-case ASCII words
    species = models.JSONField()  # one element symbol per atom
    positions = models.JSONField()  # [[x, y, z], ...] in Å
    cell = models.JSONField(null=True, blank=True)  # 3×3 lattice vectors in Å, or null: a molecule in vacuum
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="molecules")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = MoleculeQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """Validate (and normalise) name, tags and structure; raises ValidationError by field."""
        errors = {}
        self.name = " ".join(str(self.name or "").split())
        if not self.name:
            errors["name"] = ["Give the molecule a name."]
        try:
            self.tags = _clean_tags(self.tags)
        except ValidationError as exc:
            errors["tags"] = exc.messages
        try:
            structure = check_structure(species=self.species, positions=self.positions, cell=self.cell)
            self.species, self.positions, self.cell = structure["species"], structure["positions"], structure["cell"]
        except StructureError as exc:
            errors[exc.field or "species"] = [str(exc)]
        if errors:
            raise ValidationError(errors)

    @property
    def formula(self) -> str:
        """The chemical formula in Hill order, e.g. "H2O", "CH4"."""
        return hill_formula(self.species or [])

    @property
    def natoms(self) -> int:
        return len(self.species or [])

    @property
    def is_periodic(self) -> bool:
        return self.cell is not None

    def as_spec(self) -> dict:
        """What an agent receives: name, species, positions (Å) and cell (Å or None)."""
        return {"name": self.name, "species": list(self.species), "positions": [list(p) for p in self.positions],
                "cell": [list(v) for v in self.cell] if self.cell is not None else None}


def _clean_tags(tags) -> list[str]:
    if tags is None:
        return []
    if not isinstance(tags, list | tuple) or not all(isinstance(t, str) for t in tags):
        raise ValidationError("Tags must be a list of words.")
    cleaned = list(dict.fromkeys(t.strip().lower() for t in tags if t.strip()))
    bad = [t for t in cleaned if not TAG_RE.match(t)]
    if bad:
        raise ValidationError(f"Tags are up to 50 letters, digits, '.', '_', '+' or '-' (not {bad[0]!r}).")
    if len(cleaned) > MAX_TAGS:
        raise ValidationError(f"At most {MAX_TAGS} tags.")
    return cleaned


class PseudopotentialQuerySet(models.QuerySet):
    def visible_to(self, user) -> PseudopotentialQuerySet:
        """Every signed-in user sees every pseudopotential; nobody else sees any."""
        from accounts.permissions import can_use_science

        return self if can_use_science(user) else self.none()

    def with_list_relations(self) -> PseudopotentialQuerySet:
        return self.select_related("uploaded_by")


def _pseudo_path(instance: Pseudopotential, filename: str) -> str:
    return f"pseudos/{instance.sha256}/{instance.name}"


class Pseudopotential(models.Model):
    """A pseudopotential file, stored once per content (SHA-256) under ``pseudos/<sha256>/<name>``.

    Calculations refer to it (``Calculation.pseudopotentials``); deleting one that a
    calculation used is refused by ``services.delete_pseudopotential`` (calculations app check).
    """

    class Format(models.TextChoices):
        PSF = "psf", "psf (SIESTA / ATOM)"
        PSML = "psml", "PSML (XML)"

    element = models.CharField(max_length=3, db_index=True)
    flavour = models.CharField(max_length=50, blank=True, db_index=True)  # "", "pbe", "lda", "vdw", ...
    name = models.CharField(max_length=200)  # the file name, e.g. "O.psf"
    file = models.FileField(upload_to=_pseudo_path, max_length=300)
    sha256 = models.CharField(max_length=64, unique=True)
    size = models.PositiveBigIntegerField()
    format = models.CharField(max_length=4, choices=Format.choices)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="pseudopotentials")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = PseudopotentialQuerySet.as_manager()

    class Meta:
        ordering = ["element", "flavour", "name", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(format__in=["psf", "psml"]), name="pseudo_format_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.element}{', ' + self.flavour if self.flavour else ''})"
