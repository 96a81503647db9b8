"""Shared REST API building blocks: pagination, and input fields that answer 400 where Python would overflow."""
import datetime
import io
import re
from typing import Any

import django_filters
from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest, JsonResponse
from django.urls import Resolver404, resolve
from django.utils import timezone
from django.views.decorators.common import no_append_slash
from rest_framework import parsers, serializers
from rest_framework.exceptions import APIException, ParseError
from rest_framework.pagination import PageNumberPagination

BIGINT_MAX = 2**63 - 1
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # str pairs are already joined, so any left is lone


class Pagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 500


class JSONParser(parsers.JSONParser):
    """Bounded JSON whose strings are Unicode text.

    The body is read up to ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (paas_site.limits has refused a longer one
    already). Nesting deeper than ``SLIPWAY_JSON_MAX_DEPTH`` is a 400, also where Python's recursive
    decoder gives up first, and before anything walks the data recursively. ``"\\ud800"`` (a lone
    surrogate) is refused, not stored: Python's ``json`` decodes such escapes, but no database or UTF-8
    encoder accepts the result.
    """

    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
        depth = settings.SLIPWAY_JSON_MAX_DEPTH
        too_deep = ParseError(f"body: JSON nested deeper than {depth} levels.")
        try:
            data = super().parse(io.BytesIO(raw), media_type, parser_context)
        except RecursionError:  # Python's decoder gives up past the interpreter's recursion limit
            raise too_deep from None
        if nesting_exceeds(data, depth):
            raise too_deep
        where = _lone_surrogate_at(data, "")
        if where is not None:
            where = where.encode("utf-8", "backslashreplace").decode()  # the path may hold the surrogate itself
            raise ParseError(f"{where or 'body'}: holds a lone UTF-16 surrogate (\\ud800-\\udfff), which is not text.")
        return data


class PayloadTooLarge(APIException):
    status_code = 413
    default_code = "request_too_large"


def nesting_exceeds(value: Any, limit: int) -> bool:
    """Whether arrays/objects in ``value`` nest deeper than ``limit`` (no recursion: the depth is the attack)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _lone_surrogate_at(value: Any, path: str) -> str | None:
    """The path of the first string (key or value) holding a lone surrogate, else None."""
    if isinstance(value, str):
        return path if _LONE_SURROGATE.search(value) else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        child = f"{path}.{key}" if path else str(key)
        if isinstance(key, str) and _lone_surrogate_at(key, child) is not None:
            return child
        found = _lone_surrogate_at(item, child)
        if found is not None:
            return found
    return None


class SlugRelatedField(serializers.SlugRelatedField):
    """A row named by a text field; a name holding a NUL character (which PostgreSQL cannot compare) is a 400."""

    def to_internal_value(self, data):
        if isinstance(data, str) and "\x00" in data:
            self.fail("does_not_exist", slug_name=self.slug_field, value=data.replace("\x00", "\\x00"))
        return super().to_internal_value(data)


class DateTimeField(serializers.DateTimeField):
    """A date-time that exists as a UTC instant (``9999-12-31T23:59:59-12:00`` does not)."""

    default_error_messages = {"out_of_range": "is out of the range of dates this system stores."}

    def enforce_timezone(self, value):
        try:
            return super().enforce_timezone(value)
        except OverflowError:
            self.fail("out_of_range")


class _IsoDateTimeFormField(django_filters.fields.IsoDateTimeField):
    def to_python(self, value):
        value = super().to_python(value)
        if value is not None and timezone.is_aware(value):
            try:
                value.astimezone(datetime.UTC)
            except OverflowError:
                raise ValidationError("is out of the range of dates this system stores.", code="invalid") from None
        return value


class IsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = _IsoDateTimeFormField


class IdFilter(django_filters.NumberFilter):
    """A row id: a positive integer that fits a bigint (anything else is a 400, never an overflow)."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", BIGINT_MAX)
        super().__init__(*args, **kwargs)


@no_append_slash
def api_not_found(request: HttpRequest, path: str = "") -> JsonResponse:
    """Unknown API paths answer in the API's error format, not with an HTML page."""
    return JsonResponse({"message": f"No API endpoint at {request.path}.", "code": "not_found", "extra": {}}, status=404)


class ApiTrailingSlashMiddleware:
    """Serve ``/api/v1/releases`` as ``/api/v1/releases/``.

    API clients often leave the slash off, and Django's redirect to add it would turn a
    POST into a GET without its body (or, under DEBUG, an error page).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        path = request.path_info
        if path.startswith("/api/") and not path.endswith("/") and not _is_api_endpoint(path) and _is_api_endpoint(f"{path}/"):
            request.path_info = f"{path}/"
        return self.get_response(request)


def _is_api_endpoint(path: str) -> bool:
    try:
        return resolve(path).func is not api_not_found
    except Resolver404:
        return False
