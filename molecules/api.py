"""REST endpoints of molecules and pseudopotentials; every change goes through ``services``."""

from __future__ import annotations

import logging

from django.http import FileResponse, HttpResponse
from django.utils.http import content_disposition_header
from django.utils.text import slugify
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from accounts import permissions as perms
from molecules import services
from molecules.filters import MoleculeFilterSet, PseudopotentialFilterSet
from molecules.formats import WRITERS
from molecules.models import Molecule, Pseudopotential
from molecules.serializers import (
    MoleculeImportSerializer,
    MoleculeListSerializer,
    MoleculeSerializer,
    PseudopotentialSerializer,
    PseudopotentialUploadSerializer,
)

log = logging.getLogger(__name__)
Science = perms.Allow(perms.can_use_science)


@extend_schema_view(list=extend_schema(responses=MoleculeListSerializer))
class MoleculeViewSet(viewsets.ModelViewSet):
    """Molecules: list (without coordinates), create, read, edit, delete, import from XYZ
    or fdf, export to XYZ or fdf."""

    permission_classes = [Science]
    serializer_class = MoleculeSerializer
    filterset_class = MoleculeFilterSet
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    def get_queryset(self):
        molecules = Molecule.objects.visible_to(self.request.user).with_list_relations()
        return molecules.defer("positions") if self.action == "list" else molecules

    def get_serializer_class(self):
        return MoleculeListSerializer if self.action == "list" else MoleculeSerializer

    def perform_create(self, serializer):
        serializer.instance = services.create_molecule(actor=self.request.user, **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.update_molecule(
            actor=self.request.user, molecule=serializer.instance, **serializer.validated_data)

    def perform_destroy(self, instance):
        services.delete_molecule(actor=self.request.user, molecule=instance)

    @extend_schema(request={"application/json": MoleculeImportSerializer,
                            "multipart/form-data": MoleculeImportSerializer},
                   responses={201: MoleculeSerializer})
    @action(detail=False, methods=["post"], url_path="import")
    def import_structure(self, request):
        """Create a molecule from an XYZ or fdf file (multipart ``file``) or ``text``; a parse
        error answers 400 with the line at fault under ``text``."""
        form = MoleculeImportSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        molecule = services.import_molecule(actor=request.user, fmt=data.pop("format"), **data)
        return Response(MoleculeSerializer(molecule).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[OpenApiParameter("format", str, enum=sorted(WRITERS), default="xyz",
                                     description="xyz, or fdf (a geometry block SIESTA reads)")],
        responses={(200, "text/plain"): OpenApiTypes.STR, 400: OpenApiResponse(description="Unknown format")})
    @action(detail=True, methods=["get"])
    def export(self, request, pk=None):
        """The molecule as a text/plain download: XYZ (extended XYZ with a cell) or an fdf
        geometry block (``?format=xyz|fdf``, xyz by default)."""
        fmt = request.query_params.get("format", "xyz")
        if fmt not in WRITERS:
            raise ValidationError({"format": [f"Choose one of {', '.join(sorted(WRITERS))}, not {fmt!r}."]})
        molecule = self.get_object()
        response = HttpResponse(WRITERS[fmt](molecule), content_type="text/plain; charset=utf-8")
        filename = f"{slugify(molecule.name) or f'molecule-{molecule.pk}'}.{fmt}"
        response["Content-Disposition"] = content_disposition_header(True, filename)
        return response


class PseudopotentialViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin,
                             mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """Pseudopotentials: upload (.psf or .psml; the same bytes are stored once), list, read,
    change the flavour, delete, download the exact bytes."""

    permission_classes = [Science]
    serializer_class = PseudopotentialSerializer
    filterset_class = PseudopotentialFilterSet
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    def get_queryset(self):
        return Pseudopotential.objects.visible_to(self.request.user).with_list_relations()

    @extend_schema(request={"multipart/form-data": PseudopotentialUploadSerializer},
                   responses={201: PseudopotentialSerializer,
                              200: OpenApiResponse(PseudopotentialSerializer, description="Already stored")})
    def create(self, request):
        """Upload a .psf or .psml (multipart ``file``): 201 when stored, 200 with the stored
        one when the same bytes are already there."""
        form = PseudopotentialUploadSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        pseudo, created = services.upload_pseudopotential(
            actor=request.user, content=data["file"], name=data.get("name"),
            element=data.get("element") or None, flavour=data["flavour"])
        return Response(PseudopotentialSerializer(pseudo).data,
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    def perform_update(self, serializer):
        flavour = serializer.validated_data.get("flavour", serializer.instance.flavour)
        serializer.instance = services.update_pseudopotential(
            actor=self.request.user, pseudo=serializer.instance, flavour=flavour)

    def perform_destroy(self, instance):
        services.delete_pseudopotential(actor=self.request.user, pseudo=instance)

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def download(self, request, pk=None):
        """The exact bytes, streamed, with their SHA-256 in ``X-Checksum-Sha256``."""
        pseudo = self.get_object()
        try:
            stream = pseudo.file.open("rb")
        except FileNotFoundError:
            log.error("pseudopotential %s: file %s is missing from storage", pseudo.pk, pseudo.file.name)
            raise NotFound("The file of this pseudopotential is missing from storage.") from None
        response = FileResponse(stream, as_attachment=True, filename=pseudo.name,
                                content_type="application/octet-stream")
        response["X-Checksum-Sha256"] = pseudo.sha256
        return response
