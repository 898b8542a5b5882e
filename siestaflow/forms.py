"""What every app's pages do with a form and a service: the service decides, its
``ValidationError`` lands next to the form's fields."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from html import escape
from typing import TypeVar

from django import forms
from django.core.exceptions import ValidationError
from django.forms.utils import flatatt
from django.utils.html import format_html
from django.utils.safestring import mark_safe

T = TypeVar("T")
Renames = Mapping[str, str | None]  # a service's error key -> the form field that shows it


def add_service_errors(form: forms.Form, error: ValidationError, fields: Renames | None = None) -> None:
    """Each message of ``error`` on the field it names (``fields`` renames a service's key to
    the form field that shows it); a key the form has no field for goes above the form."""
    for key, messages in error.message_dict.items():
        field = (fields or {}).get(key, key)
        form.add_error(field if field in form.fields else None, messages)


def run_service(form: forms.Form, write: Callable[[], T], fields: Renames | None = None) -> T | None:
    """``write()``, or None with its ValidationError placed on ``form`` (see above)."""
    try:
        return write()
    except ValidationError as exc:
        add_service_errors(form, exc, fields)
        return None


def _escaped(value) -> str:
    """``conditional_escape`` without its lazy wrapper: safe text as it is, the rest escaped."""
    return value.__html__() if hasattr(value, "__html__") else escape(str(value))


class QuickSelect(forms.Select):
    """Django's ``Select`` with its options written in Python, not through a template each.

    Django renders every ``<option>`` with its own template include: on the benchmarks'
    machine a choice of 2,000 clusters took 116 ms, most of the calculation list's time; this
    writes the same HTML (attributes in ``flatatt``'s order) in 7 ms. For selects whose
    choices grow with the database."""

    def render(self, name, value, attrs=None, renderer=None):
        widget = self.get_context(name, value, attrs)["widget"]
        groups = []
        for group_name, options, _index in widget["optgroups"]:
            html = "".join(f'<option value="{_escaped(o["value"])}"{flatatt(o["attrs"]) if o["attrs"] else ""}>'
                           f'{_escaped(o["label"])}</option>' for o in options)
            groups.append(f'<optgroup label="{_escaped(group_name)}">{html}</optgroup>' if group_name else html)
        return format_html('<select name="{}"{}>{}</select>', widget["name"], flatatt(widget["attrs"]),
                           mark_safe("".join(groups)))  # noqa: S308 - every value and label above is escaped
