"""Shapes of molecules and pseudopotentials in the API. Rules are in the model and services."""

from django.conf import settings
from django.urls import reverse
from rest_framework import serializers

from molecules.formats import PARSERS
from molecules.models import Molecule, Pseudopotential

_FORMAT_CHOICES = sorted(PARSERS)


class MoleculeListSerializer(serializers.ModelSerializer):
    """A molecule in a list: everything but the coordinates."""

    owner = serializers.SlugRelatedField(slug_field="username", read_only=True)
    formula = serializers.CharField(read_only=True)
    natoms = serializers.IntegerField(read_only=True)
    periodic = serializers.BooleanField(source="is_periodic", read_only=True)

    class Meta:
        model = Molecule
        fields = ["id", "name", "description", "tags", "formula", "natoms", "periodic", "owner",
                  "created_at", "updated_at"]
        read_only_fields = fields


class MoleculeSerializer(MoleculeListSerializer):
    """A whole molecule: species, positions (Å) and cell (3×3 Å, or null)."""

    tags = serializers.ListField(child=serializers.CharField(), required=False)
    species = serializers.ListField(child=serializers.CharField())
    positions = serializers.ListField(child=serializers.ListField(child=serializers.FloatField()))
    cell = serializers.ListField(child=serializers.ListField(child=serializers.FloatField()),
                                 required=False, allow_null=True)

    class Meta(MoleculeListSerializer.Meta):
        fields = MoleculeListSerializer.Meta.fields + ["species", "positions", "cell"]
        read_only_fields = ["id", "formula", "natoms", "periodic", "owner", "created_at", "updated_at"]
        # Uniqueness of the name is checked once, by the model (services.create/update_molecule).
        extra_kwargs = {"name": {"validators": []}}


class MoleculeImportSerializer(serializers.Serializer):
    """A structure file to import: ``file`` (multipart) or ``text``, in ``format`` (xyz or
    fdf; from the file's extension when not given), with an optional name, description, tags."""

    file = serializers.FileField(required=False)
    text = serializers.CharField(required=False, trim_whitespace=False)
    format = serializers.ChoiceField(choices=_FORMAT_CHOICES, required=False)
    name = serializers.CharField(required=False, allow_blank=True, default="")
    description = serializers.CharField(required=False, allow_blank=True, default="")
    tags = serializers.ListField(child=serializers.CharField(), required=False, default=list)

    def validate(self, data):
        upload, text = data.pop("file", None), data.get("text")
        if (upload is None) == (text is None):
            raise serializers.ValidationError({"text": "Give either a file or text."})
        if upload is not None:
            data["text"] = _read_text(upload)
            data.setdefault("format", _format_from_name(upload.name))
        if "format" not in data:
            raise serializers.ValidationError({"format": f"Say which format: {' or '.join(_FORMAT_CHOICES)}."})
        return data


def _read_text(upload) -> str:
    if upload.size > settings.UPLOAD_MAX_BYTES:
        raise serializers.ValidationError(
            {"file": f"The file is {upload.size} bytes; the limit is {settings.UPLOAD_MAX_BYTES}."})
    try:
        return upload.read().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise serializers.ValidationError({"file": "The file is not UTF-8 text."}) from None


def _format_from_name(name: str) -> str:
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if extension not in PARSERS:
        raise serializers.ValidationError(
            {"format": f"Cannot tell the format from {name!r}: say which, {' or '.join(_FORMAT_CHOICES)}."})
    return extension


class PseudopotentialSerializer(serializers.ModelSerializer):
    """A stored pseudopotential (download its bytes at ``download_url``)."""

    uploaded_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = Pseudopotential
        fields = ["id", "element", "flavour", "name", "format", "sha256", "size", "uploaded_by", "created_at",
                  "download_url"]
        read_only_fields = ["id", "element", "name", "format", "sha256", "size", "uploaded_by", "created_at"]

    def get_download_url(self, pseudo) -> str:
        return reverse("api-pseudopotential-download", args=[pseudo.pk])


class PseudopotentialUploadSerializer(serializers.Serializer):
    """A .psf or .psml file; ``name`` overrides the file's name, ``element`` is checked against
    (or, when absent, read from) the file's header."""

    file = serializers.FileField()
    name = serializers.CharField(required=False)
    element = serializers.CharField(required=False, allow_blank=True)
    flavour = serializers.CharField(required=False, allow_blank=True, default="")
