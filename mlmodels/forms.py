"""Forms of the Models pages. They shape input; ``mlmodels.services`` applies the rules."""

from __future__ import annotations

import json

from django import forms
from django.forms.fields import InvalidJSONInput

from mlmodels.models import MLModel
from mlmodels.services import EDITABLE_FIELDS


class PrettyJSONField(forms.JSONField):
    """JSON typed in a textarea, shown indented; invalid text comes back as it was typed."""

    widget = forms.Textarea(attrs={"rows": 4, "spellcheck": "false", "class": "code"})

    def prepare_value(self, value):
        if isinstance(value, InvalidJSONInput):
            return value
        return json.dumps(value, ensure_ascii=False, indent=2, cls=self.encoder)


class MLModelForm(forms.ModelForm):
    """A model image and how to run it (admins register and edit models)."""

    environment = PrettyJSONField(required=False, help_text="An object of variable names to text, e.g. "
                                                            "<code>{\"THREADS\": \"2\"}</code>.")
    example_input = PrettyJSONField(required=False, help_text=MLModel._meta.get_field("example_input").help_text)
    dataset_snapshot = PrettyJSONField(required=False,
                                       help_text="What train.py printed, e.g. the export's sha256 and rows.")

    class Meta:
        model = MLModel
        fields = list(EDITABLE_FIELDS)
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}
        labels = {"memory_mb": "Memory limit (MiB)", "cpus": "CPU limit", "start_timeout": "Start timeout (s)"}

    def clean_environment(self):
        return self.cleaned_data["environment"] or {}


class PredictForm(forms.Form):
    """The JSON body sent to the model's ``/invocations``."""

    input = PrettyJSONField(label="Input (JSON)", widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false",
                                                                              "class": "code"}),
                            help_text="Sent as application/json to the model, as the API's invocations do.")


class DeleteForm(forms.Form):
    remove_image = forms.BooleanField(required=False, label="Also remove its image from the Docker engine")
