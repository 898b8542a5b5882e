"""Project-wide DRF glue: the exception handler that keeps every error a clear 4xx."""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import ProtectedError, RestrictedError
from rest_framework import exceptions
from rest_framework.views import exception_handler as drf_exception_handler


class Conflict(exceptions.APIException):
    status_code = 409
    default_detail = "The request conflicts with the current state."
    default_code = "conflict"


def exception_handler(exc, context):
    """DRF's handler, plus: Django's ValidationError (from services and model validation)
    as a 400 with field-level messages; Django's PermissionDenied with its message; an
    exception carrying ``http_status = 409`` (state conflicts) and a delete refused because
    other rows still use the object, as 409 with their message."""
    if isinstance(exc, ProtectedError | RestrictedError):
        names = sorted({str(obj._meta.verbose_name_plural) for obj in exc.protected_objects
                        } if isinstance(exc, ProtectedError) else {"records"})
        exc = Conflict(f"Still in use by {', '.join(names)}: delete or change those first.")
    elif getattr(exc, "http_status", None) == 409:
        exc = Conflict(str(exc))
    elif isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        exc = exceptions.ValidationError(detail)
    elif isinstance(exc, DjangoPermissionDenied) and exc.args:
        exc = exceptions.PermissionDenied(str(exc))
    return drf_exception_handler(exc, context)
