"""Molecules and pseudopotentials in the Django admin, under the same predicate as the API.

Moderators and admins (the staff) view, add, change and delete both; every write goes
through ``services``. A pseudopotential's file never changes once stored: only its flavour
can be edited, and a new file is a new upload.
"""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.html import format_html

from accounts import permissions as perms
from molecules import services
from molecules.models import Molecule, Pseudopotential


class _ScienceAdmin(admin.ModelAdmin):
    """Every permission is ``can_use_science`` (only staff reach the admin at all)."""

    def has_module_permission(self, request):
        return perms.can_use_science(request.user)

    def has_view_permission(self, request, obj=None):
        return perms.can_use_science(request.user)

    def has_add_permission(self, request):
        return perms.can_use_science(request.user)

    def has_change_permission(self, request, obj=None):
        return perms.can_use_science(request.user)

    def has_delete_permission(self, request, obj=None):
        return perms.can_use_science(request.user)


@admin.register(Molecule)
class MoleculeAdmin(_ScienceAdmin):
    list_display = ["name", "formula", "natoms", "owner", "updated_at"]
    search_fields = ["name", "description"]
    list_select_related = ["owner"]
    readonly_fields = ["owner", "created_at", "updated_at"]
    fields = ["name", "description", "tags", "species", "positions", "cell", *readonly_fields]

    def save_model(self, request, obj, form, change):
        values = {name: form.cleaned_data[name] for name in services.MOLECULE_FIELDS if name in form.cleaned_data}
        if change:
            services.update_molecule(actor=request.user, molecule=obj, **values)
        else:
            obj.pk = services.create_molecule(actor=request.user, **values).pk

    def delete_model(self, request, obj):
        services.delete_molecule(actor=request.user, molecule=obj)

    def delete_queryset(self, request, queryset):
        for molecule in queryset:
            services.delete_molecule(actor=request.user, molecule=molecule)


class PseudopotentialUploadForm(forms.ModelForm):
    """Upload: the file is checked by the service's own checks before anything is stored."""

    element = forms.CharField(required=False, help_text="Leave empty to read it from the file.")

    class Meta:
        model = Pseudopotential
        fields = ["file", "element", "flavour"]

    def clean(self):
        data = super().clean()
        if data.get("file") is not None:
            try:
                services.check_pseudopotential(content=data["file"], element=data.get("element") or None)
            except ValidationError as exc:
                raise ValidationError({"file" if key in ("name", "file") else key: value
                                       for key, value in exc.message_dict.items()}) from None
        return data


@admin.register(Pseudopotential)
class PseudopotentialAdmin(_ScienceAdmin):
    list_display = ["name", "element", "flavour", "format", "size", "uploaded_by", "created_at"]
    list_filter = ["format", "element", "flavour"]
    search_fields = ["name", "element", "flavour", "sha256"]
    list_select_related = ["uploaded_by"]
    add_form = PseudopotentialUploadForm

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = self.add_form
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["file", "element", "flavour"]
        return ["name", "element", "flavour", "format", "size", "sha256", "download", "uploaded_by", "created_at"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["name", "element", "format", "size", "sha256", "download", "uploaded_by", "created_at"]

    @admin.display(description="File")
    def download(self, obj):
        return format_html('<a href="{}">{}</a>', reverse("api-pseudopotential-download", args=[obj.pk]), obj.name)

    def save_model(self, request, obj, form, change):
        if change:
            services.update_pseudopotential(actor=request.user, pseudo=obj, flavour=form.cleaned_data["flavour"])
            return
        stored, _created = services.upload_pseudopotential(
            actor=request.user, content=form.cleaned_data["file"],
            element=form.cleaned_data.get("element") or None, flavour=form.cleaned_data.get("flavour", ""))
        obj.pk = stored.pk  # an earlier upload of the same bytes, or the new one

    def delete_model(self, request, obj):
        services.delete_pseudopotential(actor=request.user, pseudo=obj)

    def delete_queryset(self, request, queryset):
        for pseudo in queryset:
            services.delete_pseudopotential(actor=request.user, pseudo=pseudo)
