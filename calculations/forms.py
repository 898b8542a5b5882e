"""The calculation form of the pages. It shapes input; ``services`` and ``validation`` (the
same code the API calls) apply the rules, and their errors land next to the fields."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from siestaflow_agent.analyses import catalogue

from calculations import validation
from calculations.models import Calculation
from clusters.models import Cluster
from molecules.models import Molecule, Pseudopotential
from siestaflow.forms import QuickSelect, add_service_errors

#: Where a service's error key is shown on this form.
ERROR_FIELDS = {"config": "fdf", "files": "files", "chain": "chain_values", "state": None}


class AnalysisCheckboxes(forms.CheckboxSelectMultiple):
    """Checkboxes that carry each analysis's requirements and engines for calculations.js."""

    def create_option(self, name, value, *args, **kwargs):
        option = super().create_option(name, value, *args, **kwargs)
        analysis = catalogue.CATALOGUE.get(str(value))
        if analysis:
            option["attrs"].update({"title": analysis.description, "data-requires": " ".join(analysis.requires),
                                    "data-engines": " ".join(analysis.engines),
                                    "data-chain-level": "true" if analysis.chain_level else "false"})
        return option


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several uploads in one field (Django's documented recipe)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        if isinstance(data, list | tuple):
            return [super(MultipleFileField, self).clean(d, initial) for d in data]
        return [super().clean(data, initial)] if data else []


def _value(token: str) -> int | float | str:
    """A chain value as typed: an integer, a number, or a string."""
    for kind in (int, float):
        try:
            return kind(token)
        except ValueError:
            continue
    return token


class CalculationForm(forms.Form):
    """Create (or, with ``calc``, edit) a calculation."""

    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    cluster = forms.ModelChoiceField(Cluster.objects.all(), widget=QuickSelect)
    engine = forms.ChoiceField(choices=[(e, e) for e in validation.ENGINES], initial="siesta")
    molecule = forms.ModelChoiceField(Molecule.objects.order_by("name"), required=False, widget=QuickSelect,
                                      help_text="Its structure is copied when you submit.")
    fdf = forms.CharField(label="fdf input", required=False, strip=False,
                          widget=forms.Textarea(attrs={"rows": 14, "spellcheck": "false", "class": "code"}),
                          help_text="Paste the fdf, or upload it below (the upload replaces the text).")
    fdf_file = forms.FileField(label="fdf file", required=False)
    program = forms.CharField(required=False, max_length=100,
                              help_text="Command engine only: a [programs.NAME] of the agent's configuration.")
    options = forms.JSONField(required=False, initial=dict, widget=forms.Textarea(attrs={"rows": 2}),
                              help_text='Engine options as JSON, e.g. {"method": "RKS"}.')
    files = MultipleFileField(label="Attached files", required=False,
                              help_text="E.g. electrodes' .TSHS files. Browsers cannot keep a chosen file "
                                        "after an error: choose them again.")
    pseudopotentials = forms.ModelMultipleChoiceField(
        Pseudopotential.objects.all(), required=False, widget=forms.CheckboxSelectMultiple)
    analyses = forms.MultipleChoiceField(
        choices=[(a.id, a.title) for a in catalogue.ANALYSES], required=False, widget=AnalysisCheckboxes,
        help_text="Checking an analysis checks what it needs; unchecking one unchecks what needs it.")
    chain_parameter = forms.CharField(label="Chain parameter", required=False, max_length=100,
                                      help_text="Leave empty for a single step; an fdf key, e.g. TS.Voltage, "
                                                "or rotation (the molecule turned by each value, in degrees).")
    chain_unit = forms.CharField(label="Unit", required=False, max_length=20)
    chain_values = forms.CharField(label="Values", required=False,
                                   help_text="Separated by spaces or commas, e.g. 0 0.1 0.2.")
    chain_axis = forms.CharField(label="Rotation axis", required=False, max_length=60,
                                 help_text="A rotation chain only: x, y, z (the default) or three numbers.")
    chain_carry = forms.CharField(label="Files handed to the next step", required=False,
                                  help_text="Patterns separated by spaces, e.g. *.DM *.TSDE.")
    priority = forms.IntegerField(initial=0, min_value=-1000, max_value=1000)

    def __init__(self, *args, calc: Calculation | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.calc = calc
        if calc is not None:  # a calculation stays on its cluster; files are attached at creation
            self.fields["cluster"].disabled = True
            self.fields["cluster"].required = False
            del self.fields["files"]

    @staticmethod
    def initial_from(calc: Calculation) -> dict:
        """Initial values repeating ``calc`` (for editing it or submitting a copy)."""
        chain = calc.chain or {}
        return {"name": calc.name, "description": calc.description, "cluster": calc.cluster_id,
                "engine": calc.engine, "molecule": calc.molecule_id, "fdf": calc.config.get("fdf", ""),
                "program": calc.config.get("program", ""), "options": calc.config.get("options") or {},
                "priority": calc.priority,
                "pseudopotentials": [p.pk for p in calc.pseudopotentials.all()], "analyses": calc.analyses,
                "chain_parameter": chain.get("parameter", ""), "chain_unit": chain.get("unit", ""),
                "chain_values": " ".join(str(v) for v in chain.get("values", [])),
                "chain_carry": " ".join(chain.get("carry", [])),
                "chain_axis": " ".join(map(str, a)) if isinstance(a := chain.get("axis", ""), list) else a}

    def clean_fdf_file(self):
        upload = self.cleaned_data.get("fdf_file")
        if not upload:
            return None
        try:
            validation.check_file_size(upload.name, upload.size, field="fdf_file")
            text = upload.read().decode("utf-8")
        except ValidationError as exc:
            raise ValidationError(exc.message_dict["fdf_file"]) from None
        except UnicodeDecodeError:
            raise ValidationError("The fdf file is not UTF-8 text.") from None
        self.data = self.data.copy()
        self.data["fdf"] = text  # shown in the text area if the form comes back with errors
        return text

    def clean(self):
        data = super().clean()
        if data.get("fdf_file") is not None:
            data["fdf"] = data["fdf_file"]
        data["chain"] = self._chain(data)
        if "analyses" in data and "engine" in data:
            self._check_analyses(data)
        return data

    def _chain(self, data) -> dict | None:
        split = lambda text: (text or "").replace(",", " ").split()  # noqa: E731 - a one-line helper
        parameter, values = data.get("chain_parameter", "").strip(), split(data.get("chain_values"))
        if not parameter and not values:
            return None
        chain = {"parameter": parameter, "unit": data.get("chain_unit", ""),
                 "values": [_value(v) for v in values], "carry": split(data.get("chain_carry"))}
        axis = split(data.get("chain_axis"))
        if axis:
            chain["axis"] = axis[0] if len(axis) == 1 else [_value(v) for v in axis]
        return chain

    def _check_analyses(self, data) -> None:
        """The shared validator, here too, so a missing dependency shows with the other errors."""
        try:
            validation.check_analyses(data["analyses"], chain=data["chain"], engine=data["engine"])
        except ValidationError as exc:
            self.add_error("analyses", exc.message_dict["analyses"])

    def service_fields(self) -> dict:
        """The keyword arguments of ``submit_calculation`` / ``update_calculation``."""
        data = self.cleaned_data
        fields = {name: data[name] for name in ("name", "description", "engine", "molecule", "analyses",
                                                  "chain", "priority")}
        fields["config"] = {"fdf": data["fdf"], "options": data.get("options") or {}}
        if data.get("program"):  # left out when not given, as the API does
            fields["config"]["program"] = data["program"]
        fields["pseudopotentials"] = list(data["pseudopotentials"])
        if self.calc is None:
            fields["cluster"] = data["cluster"]
        return fields

    def uploads(self) -> list[tuple[str, bytes]]:
        """The attached files as ``(name, bytes)`` pairs, size-checked before reading."""
        pairs = []
        for upload in self.cleaned_data.get("files") or []:
            validation.check_file_size(upload.name, upload.size)
            pairs.append((upload.name, upload.read()))
        return pairs

    def add_service_errors(self, error: ValidationError) -> None:
        """A service's ``ValidationError`` placed next to the field it names (a chain's on its
        parameter while none is given)."""
        fields = {**ERROR_FIELDS, **({} if self.cleaned_data.get("chain_parameter") else {"chain": "chain_parameter"})}
        add_service_errors(self, error, fields)
