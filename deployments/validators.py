"""Field validators shared by models, serializers and forms."""
import re
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from kubernetes.utils.quantity import parse_quantity

from .images import parse_image_reference

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")


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


# (smallest, largest, as written): Kubernetes' precision at the bottom; at the top far above
# any node, low enough that costs and sums stay ordinary numbers.
CPU_RANGE = (Decimal("0.001"), Decimal(1000), "1m", "1000")
MEMORY_RANGE = (Decimal(1), Decimal(64 * 2**40), "1 byte", "64Ti")


def parse_cpu(value: str) -> Decimal:
    return _parse(value, "CPU", "e.g. 250m or 1", CPU_RANGE)


def parse_memory(value: str) -> Decimal:
    return _parse(value, "memory", "e.g. 512Mi or 1Gi", MEMORY_RANGE)


def _parse(value: str, what: str, example: str, bounds: tuple[Decimal, Decimal, str, str]) -> Decimal:
    try:
        quantity = parse_quantity(value)
    except (ValueError, TypeError, ArithmeticError):
        quantity = None
    if quantity is None or not quantity.is_finite():
        raise ValidationError(f"{value!r} is not a Kubernetes {what} quantity ({example}).", code="invalid_quantity")
    smallest, largest, smallest_text, largest_text = bounds
    if quantity <= 0:
        raise ValidationError(f"{what} quantity must be positive.", code="invalid_quantity")
    if not smallest <= quantity <= largest:
        raise ValidationError(
            f"{what} quantity must be between {smallest_text} and {largest_text}.", code="invalid_quantity"
        )
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


DOCKER_HUB = "docker.io"
DOCKER_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io"}


def allowed_registries() -> list[str]:
    """The build registry (always) and ``SLIPWAY_REGISTRIES``."""
    return list(dict.fromkeys([r for r in [settings.SLIPWAY_REGISTRY, *settings.SLIPWAY_REGISTRIES] if r]))


def registry_allowed(registry: str) -> bool:
    """``registry`` is ``host[:port]`` as an image reference names it ("" is Docker Hub)."""
    registry = registry.lower().rstrip(".") or DOCKER_HUB
    if registry in DOCKER_HUB_ALIASES:
        registry = DOCKER_HUB
    for allowed in allowed_registries():
        allowed = allowed.lower().rstrip(".")
        allowed = DOCKER_HUB if allowed in DOCKER_HUB_ALIASES else allowed
        if registry == allowed or (allowed.startswith("*.") and ":" not in registry and registry.endswith(allowed[1:])):
            return True
    return False


def validate_image_registry(value: str) -> None:
    """An image may only come from an allow-listed registry (the outbound policy of images)."""
    try:
        registry = parse_image_reference(value).registry
    except ValueError:
        return  # validate_image_reference names that problem
    if not registry_allowed(registry):
        allowed = ", ".join(allowed_registries()) or "none are configured (SLIPWAY_REGISTRY, SLIPWAY_REGISTRIES)"
        raise ValidationError(
            f"registry {registry or DOCKER_HUB} is not allowed (allowed registries: {allowed}).",
            code="registry_not_allowed",
        )


def validate_absolute_path(value: str) -> None:
    if not value.startswith("/") or ".." in value.split("/") or any(c.isspace() for c in value):
        raise ValidationError("must be an absolute path without spaces or '..'.", code="invalid_path")
