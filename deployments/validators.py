"""Field validators shared by models, serializers and forms."""
import re
from decimal import Decimal

from django.core.exceptions import ValidationError
from kubernetes.utils.quantity import parse_quantity

from .images import parse_image_reference

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def validate_dns_label(value: str) -> None:
    """RFC 1123 label: what Kubernetes accepts for names of Services and namespaces."""
    if len(value) > 63:
        raise ValidationError("must be at most 63 characters (RFC 1123 label).", code="too_long")
    if not _DNS_LABEL.match(value):
        raise ValidationError(
            "must consist of lowercase letters, digits and '-', and start and end with a letter or digit (RFC 1123 label).",
            code="invalid_name",
        )


def validate_service_name(value: str) -> None:
    """RFC 1035 label: a Service name must also start with a letter."""
    validate_dns_label(value)
    if not value[0].isalpha():
        raise ValidationError("must start with a letter (it names a Kubernetes Service).", code="invalid_name")


def parse_cpu(value: str) -> Decimal:
    return _parse(value, "CPU", "e.g. 250m or 1")


def parse_memory(value: str) -> Decimal:
    return _parse(value, "memory", "e.g. 512Mi or 1Gi")


def _parse(value: str, what: str, example: str) -> Decimal:
    try:
        quantity = parse_quantity(value)
    except (ValueError, TypeError):
        raise ValidationError(f"{value!r} is not a Kubernetes {what} quantity ({example}).", code="invalid_quantity") from None
    if quantity <= 0:
        raise ValidationError(f"{what} quantity must be positive.", code="invalid_quantity")
    return quantity


def validate_cpu_quantity(value: str) -> None:
    parse_cpu(value)


def validate_memory_quantity(value: str) -> None:
    parse_memory(value)


def validate_image_reference(value: str) -> None:
    try:
        parse_image_reference(value)
    except ValueError as exc:
        raise ValidationError(str(exc), code="invalid_image") from None


def validate_absolute_path(value: str) -> None:
    if not value.startswith("/") or ".." in value.split("/") or any(c.isspace() for c in value):
        raise ValidationError("must be an absolute path without spaces or '..'.", code="invalid_path")
