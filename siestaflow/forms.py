"""What every app's pages do with a form and a service: the service decides, its
``ValidationError`` lands next to the form's fields."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

from django import forms
from django.core.exceptions import ValidationError

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
