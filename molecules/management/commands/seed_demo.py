"""Load the demo molecules and the bundled pseudopotential library; safe to run again."""

import re
from pathlib import Path

from django.core.files import File
from django.core.management.base import BaseCommand

from molecules import services
from molecules.formats import parse_xyz
from molecules.models import Molecule

DATA = Path(__file__).resolve().parents[2] / "data"
MOLECULES = {
    "water": "Water, experimental gas-phase geometry: r(O-H) 0.9572 Å, ∠HOH 104.52°.",
    "methane": "Methane, experimental geometry: r(C-H) 1.087 Å, tetrahedral.",
    "ammonia": "Ammonia, experimental geometry: r(N-H) 1.012 Å, ∠HNH 106.67°.",
    "benzene": "Benzene, experimental geometry: r(C-C) 1.397 Å, r(C-H) 1.084 Å, planar.",
}
# Files whose header names no real element: ON-0.34560.psf is SIESTA's mixps virtual-crystal
# mix of O with 0.3456 N (header label "SX"), used on oxygen sites.
PSEUDO_OVERRIDES = {"ON-0.34560.psf": {"element": "O", "flavour": "vca-n0.3456"}}


def flavour_from_name(stem: str, element: str) -> str:
    """The part of a file name after the element: "C.pbe" → "pbe", "Fe_SOC" → "soc", "O" → ""."""
    rest = stem[len(element):] if stem.lower().startswith(element.lower()) else stem
    return re.sub(r"^[._-]+", "", rest).lower()


class Command(BaseCommand):
    help = "Create the demo molecules and load data/pseudos/*.psf (existing ones are left alone)."

    def handle(self, *args, **options):
        for name, description in MOLECULES.items():
            if Molecule.objects.filter(name=name).exists():
                self.stdout.write(f"molecule {name}: already there")
                continue
            structure = parse_xyz((DATA / "molecules" / f"{name}.xyz").read_text())
            services.create_molecule(actor=None, name=name, description=description, tags=["demo"],
                                     species=structure["species"], positions=structure["positions"], cell=None)
            self.stdout.write(f"molecule {name}: created")
        for path in sorted((DATA / "pseudos").glob("*.psf")):
            self._load_pseudo(path)
        self.stdout.write(self.style.SUCCESS("Demo data loaded."))

    def _load_pseudo(self, path: Path) -> None:
        override = PSEUDO_OVERRIDES.get(path.name, {})
        with path.open("rb") as handle:
            content = File(handle, name=path.name)
            checked = services.check_pseudopotential(content=content, element=override.get("element"))
            pseudo, created = services.upload_pseudopotential(
                actor=None, content=content, element=checked.element,
                flavour=override.get("flavour", flavour_from_name(path.stem, checked.element)))
        if created:
            self.stdout.write(f"pseudopotential {path.name}: stored ({pseudo.element}, {pseudo.flavour or '-'})")
        elif pseudo.name == path.name:
            self.stdout.write(f"pseudopotential {path.name}: already there")
        else:
            self.stdout.write(f"pseudopotential {path.name}: same bytes as {pseudo.name}, kept once")
