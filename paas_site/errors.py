"""The project's errors and the one place that turns them into API responses.

Services raise :class:`ApplicationError` subclasses; adapters to outside systems
raise :class:`TransientError` (retry later) or :class:`PermanentError` (retrying
cannot help). Every API error is JSON ``{"message", "code", "extra"}``.
"""
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import ProtectedError, RestrictedError
from django.http import Http404
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class ApplicationError(Exception):
    """A request the platform refuses, with a message meant for the user."""

    status_code = 400
    default_code = "invalid"

    def __init__(self, message: str, *, code: str | None = None, extra: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.extra = extra or {}


class NotAuthenticated(ApplicationError):
    """The credentials sent (e.g. a CI token) are unknown, revoked or expired."""

    status_code = 401
    default_code = "not_authenticated"


class NotAllowed(ApplicationError):
    status_code = 403
    default_code = "permission_denied"


class NotFound(ApplicationError):
    status_code = 404
    default_code = "not_found"


class Conflict(ApplicationError):
    status_code = 409
    default_code = "conflict"


class ServiceUnavailable(ApplicationError):
    """The request was fine but a system it needs could not be reached now: try again (503)."""

    status_code = 503
    default_code = "try_again"


def invalid_fields(fields: dict[str, list[str]]) -> ApplicationError:
    """A 400 naming each bad field (``extra.fields``), its message listing the first reason of each."""
    message = "; ".join(f"{field}: {reasons[0]}" for field, reasons in fields.items())
    return ApplicationError(message, extra={"fields": fields})


class ExternalError(Exception):
    """A failure talking to a system outside Slipway (cluster, DNS, registry).

    When one reaches the API it answers 502/503: the request was fine, the
    system behind it was not.
    """

    status_code = 502
    code = "upstream_error"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class TransientError(ExternalError):
    """The outside system may succeed later: retry with backoff."""

    status_code = 503
    code = "upstream_unavailable"


class PermanentError(ExternalError):
    """Retrying cannot help: the request itself is wrong or was refused."""


def describe_field_errors(detail: Any, prefix: str = "") -> list[str]:
    """Flatten DRF/Django error details into ``"field: reason"`` lines."""
    if isinstance(detail, dict):
        lines = []
        for field, value in detail.items():
            name = field if field not in ("non_field_errors", "__all__") else ""
            lines += describe_field_errors(value, f"{prefix}.{name}" if prefix and name else prefix or name)
        return lines
    if isinstance(detail, list):
        if all(isinstance(item, dict) for item in detail):
            return [
                line
                for index, item in enumerate(detail)
                for line in describe_field_errors(item, f"{prefix}[{index}]")
            ]
        return [line for item in detail for line in describe_field_errors(item, prefix)]
    return [f"{prefix}: {detail}" if prefix else str(detail)]


def _body(message: str, code: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"message": message, "code": code, "extra": extra or {}}


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApplicationError):
        return Response(_body(exc.message, exc.code, exc.extra), status=exc.status_code)
    if isinstance(exc, ExternalError):
        return Response(_body(exc.message, exc.code), status=exc.status_code)
    if isinstance(exc, (ProtectedError, RestrictedError)):
        blockers = exc.protected_objects if isinstance(exc, ProtectedError) else exc.restricted_objects
        names = ", ".join(sorted({str(obj) for obj in blockers})[:5])
        return Response(_body(f"Still in use by: {names}.", "in_use"), status=409)
    if isinstance(exc, DjangoValidationError):
        exc = drf.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    elif isinstance(exc, Http404):
        exc = drf.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, drf.ValidationError):
        fields = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        message = "; ".join(describe_field_errors(fields)) or "Invalid input."
        response.data = _body(message, "invalid", {"fields": fields})
    else:
        detail = exc.detail if isinstance(exc, drf.APIException) else str(exc)
        code = exc.get_codes() if isinstance(exc, drf.APIException) else "error"
        response.data = _body(str(detail), code if isinstance(code, str) else "error")
    return response
