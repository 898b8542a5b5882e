"""factory_boy factories: minimal objects, explicit relations."""

import factory

from accounts.models import User

PASSWORD = "correct horse battery staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.org")
    role = User.Role.USER
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):  # noqa: N805 - factory_boy hook
        if create:
            obj.save()



# --- clusters (models by label, so these appended factories need no import above) ---------

API_KEY_SECRET = "factory-secret-0123456789abcdefghijklmnopqrstuvwxyz"


def _now():
    from django.utils import timezone

    return timezone.now()


def _api_key_hash(key) -> str:
    from clusters.models import hash_key

    return hash_key(f"sfk_{key.prefix}_{API_KEY_SECRET}")


class ClusterFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "clusters.Cluster"

    name = factory.Sequence(lambda n: f"cluster{n}")


class ApiKeyFactory(factory.django.DjangoModelFactory):
    """A key of known text: ``key.plaintext`` is ``sfk_<prefix>_<API_KEY_SECRET>``."""

    class Meta:
        model = "clusters.ApiKey"
        skip_postgeneration_save = True

    cluster = factory.SubFactory(ClusterFactory)
    name = "agent"
    prefix = factory.Sequence(lambda n: f"f{n:011x}")
    key_hash = factory.LazyAttribute(_api_key_hash)

    @factory.post_generation
    def plaintext(obj, create, extracted, **kwargs):  # noqa: N805 - factory_boy hook
        obj.plaintext = f"sfk_{obj.prefix}_{API_KEY_SECRET}"


class HeartbeatFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "clusters.Heartbeat"

    cluster = factory.SubFactory(ClusterFactory)
    time = factory.LazyFunction(_now)
    cpu_percent = 10.0
    memory_percent = 20.0
    memory_used = 2_000
    memory_total = 10_000
    disk_free = 5_000
    load_1 = 0.5
    running = 0


# --- molecules (models by label, so these appended factories need no import above) -------


def psf_bytes(element: str = "O", note: str = "") -> bytes:
    """A small file that passes the psf header checks (not a usable pseudopotential)."""
    return (f" {element:<2} ca nrl nc\n ATM3      19-FEB-98 Troullier-Martins {note}\n"
            " 2s 2.00  r= 1.14/2p 4.00  r= 1.14/3d 0.00  r= 1.14/4f 0.00  r= 1.14/\n"
            "   4  0 1029  0.309844022083E-03  0.125000000000E-01   6.00000000000\n"
            " Radial grid follows\n  0.389735801693E-05  0.784373876281E-05\n").encode()


def _sha256(content: bytes) -> str:
    import hashlib

    return hashlib.sha256(content).hexdigest()


def _content_file(content: bytes, name: str):
    from django.core.files.base import ContentFile

    return ContentFile(content, name=name)


class MoleculeFactory(factory.django.DjangoModelFactory):
    """A water molecule (no cell) with a unique name."""

    class Meta:
        model = "molecules.Molecule"

    name = factory.Sequence(lambda n: f"molecule{n}")
    species = factory.LazyFunction(lambda: ["O", "H", "H"])
    positions = factory.LazyFunction(lambda: [[0.0, -0.0656, 0.0], [0.757, 0.5203, 0.0], [-0.757, 0.5203, 0.0]])
    cell = None
    tags = factory.LazyFunction(list)


class PseudopotentialFactory(factory.django.DjangoModelFactory):
    """A stored psf of unique content (written under MEDIA_ROOT: point it at tmp_path)."""

    class Meta:
        model = "molecules.Pseudopotential"

    class Params:
        content = factory.LazyAttributeSequence(lambda o, n: psf_bytes(o.element, f"factory {n}"))

    element = "O"
    flavour = ""
    name = factory.LazyAttribute(lambda o: f"{o.element}.psf")
    format = "psf"
    sha256 = factory.LazyAttribute(lambda o: _sha256(o.content))
    size = factory.LazyAttribute(lambda o: len(o.content))
    file = factory.LazyAttribute(lambda o: _content_file(o.content, o.name))
