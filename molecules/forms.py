"""Forms of the Molecules pages. They shape input (files to text, tags to a list); the
structure and every rule are checked by ``molecules.services`` and the model."""

from __future__ import annotations

from django import forms
from django.conf import settings

from molecules.formats import PARSERS

FORMAT_CHOICES = [("", "From the file's extension"), ("xyz", "XYZ"), ("fdf", "fdf (SIESTA)")]


def tag_list(text: str) -> list[str]:
    """Tags typed as words separated by commas or spaces."""
    return [t for t in text.replace(",", " ").split() if t]


class _TagsField(forms.CharField):
    def prepare_value(self, value):
        return ", ".join(value) if isinstance(value, list | tuple) else value


class MoleculeImportForm(forms.Form):
    """A new molecule from an XYZ or fdf file, uploaded or pasted."""

    file = forms.FileField(required=False, help_text="An .xyz or .fdf file.",
                           widget=forms.ClearableFileInput(attrs={"accept": ".xyz,.fdf"}))
    text = forms.CharField(required=False, strip=False, label="Or paste the structure",
                           widget=forms.Textarea(attrs={"rows": 10, "spellcheck": "false", "class": "mono"}))
    format = forms.ChoiceField(choices=FORMAT_CHOICES, required=False,
                               help_text="Needed for pasted text.")
    name = forms.CharField(max_length=200, required=False,
                           help_text="Empty: the XYZ comment line, or the fdf's SystemName or SystemLabel.")
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    tags = _TagsField(required=False, help_text="Words separated by commas, e.g. “water, test”.")

    def clean(self):
        data = super().clean()
        upload, text = data.get("file"), data.get("text") or ""
        if upload is None and not text.strip():
            raise forms.ValidationError("Upload a file or paste the structure.")
        if upload is not None and text.strip():
            raise forms.ValidationError("Upload a file or paste the structure, not both.")
        if upload is not None:
            data["text"] = self._read(upload)
            data["format"] = data.get("format") or self._format_of(upload.name)
        elif not data.get("format"):
            self.add_error("format", "Say which format the pasted text is in.")
        data["tags"] = tag_list(data.get("tags") or "")
        return data

    def _read(self, upload) -> str:
        if upload.size > settings.UPLOAD_MAX_BYTES:
            raise forms.ValidationError({"file": f"The file is {upload.size} bytes; the limit is "
                                                 f"{settings.UPLOAD_MAX_BYTES}."})
        try:
            return upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise forms.ValidationError({"file": "The file is not UTF-8 text."}) from None

    @staticmethod
    def _format_of(name: str) -> str:
        extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        if extension not in PARSERS:
            raise forms.ValidationError({"format": f"Cannot tell the format of {name!r}: choose it."})
        return extension


class MoleculeEditForm(forms.Form):
    """A molecule's name, description and tags; optionally a new structure (XYZ or fdf)."""

    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    tags = _TagsField(required=False, help_text="Words separated by commas.")
    structure = forms.CharField(required=False, strip=False, label="New structure (optional)",
                                help_text="Paste XYZ or fdf text to replace the atoms; empty keeps them.",
                                widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false", "class": "mono"}))
    format = forms.ChoiceField(choices=FORMAT_CHOICES[1:], required=False, label="Its format")

    def clean_tags(self):
        return tag_list(self.cleaned_data["tags"] or "")

    def clean(self):
        data = super().clean()
        text = data.pop("structure", "") or ""
        fmt = data.pop("format", "") or "xyz"
        if text.strip():
            try:
                parsed = PARSERS[fmt](text)
            except ValueError as exc:
                self.add_error("structure", f"Not valid {fmt}: {exc}")
                return data
            data.update(species=parsed["species"], positions=parsed["positions"], cell=parsed["cell"])
        return data
