"""DNS zones, the records Slipway publishes in them, and which zone each environment uses."""
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, URLValidator
from django.db import models
from django.db.models import Q

from deployments.models import Application, Environment
from paas_site.crypto import EncryptedTextField

from . import naming
from .choices import ADDRESS_TYPES, RecordStatus, RecordType, ZoneProvider
from .providers import RRset

MAX_TTL = 7 * 24 * 3600


class Zone(models.Model):
    """A DNS zone Slipway publishes application names in. The API key never leaves the model."""

    name = models.CharField(
        max_length=254, unique=True, help_text="Absolute zone name, e.g. internal.example. (the trailing dot is added)."
    )
    provider = models.CharField(max_length=16, choices=ZoneProvider.choices, default=ZoneProvider.LOCAL)
    api_url = models.CharField(
        max_length=255, blank=True, validators=[URLValidator(schemes=["http", "https"])],
        help_text="PowerDNS webserver URL, e.g. http://pdns.internal:8081.",
    )
    server_id = models.CharField(max_length=64, default="localhost", help_text="PowerDNS server id (almost always localhost).")
    api_key = EncryptedTextField(blank=True)
    default_ttl = models.PositiveIntegerField(default=300, validators=[MinValueValidator(1), MaxValueValidator(MAX_TTL)])
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def has_api_key(self) -> bool:
        return bool(self.api_key)

    def clean(self) -> None:
        errors: dict[str, str] = {}
        try:
            self.name = naming.canonical_name(self.name, what="zone name")
        except ValueError as exc:
            errors["name"] = str(exc)
        if self.provider == ZoneProvider.POWERDNS:
            if not self.api_url:
                errors["api_url"] = "is required for a PowerDNS zone."
            if not self.api_key:
                errors["api_key"] = "is required for a PowerDNS zone."
            if not self.server_id:
                errors["server_id"] = "is required for a PowerDNS zone."
        if errors:
            raise ValidationError(errors)


class EnvironmentZone(models.Model):
    """The zone an environment publishes its applications' names in, and how they are named."""

    environment = models.OneToOneField(Environment, on_delete=models.CASCADE, related_name="dns_zone")
    zone = models.ForeignKey(Zone, on_delete=models.PROTECT, related_name="environments")
    name_pattern = models.CharField(
        max_length=200, default=naming.DEFAULT_PATTERN,
        help_text="Placeholders {application} {project} {environment} {zone}; must end with .{zone}.",
    )

    class Meta:
        ordering = ["environment__rank", "environment__name"]
        verbose_name = "environment zone"

    def __str__(self) -> str:
        return f"{self.environment} → {self.zone}" if self.environment_id and self.zone_id else "environment zone"

    def clean(self) -> None:
        try:
            naming.validate_pattern(self.name_pattern)
        except ValueError as exc:
            raise ValidationError({"name_pattern": str(exc)}) from None


class Record(models.Model):
    """One record set Slipway published (or means to): its content, its owner and whether DNS agrees.

    Each published application has two: its address (A or CNAME) and the TXT
    that marks the name as Slipway's (see ``dns.ownership``). An application or
    environment with published records cannot be deleted before they are
    unpublished. Rows without one belong to no one Slipway knows: it leaves them alone.
    """

    zone = models.ForeignKey(Zone, on_delete=models.PROTECT, related_name="records")
    name = models.CharField(max_length=254, help_text="Absolute name with the trailing dot.")
    type = models.CharField(max_length=8, choices=RecordType.choices)
    content = models.CharField(max_length=512, help_text="Presentation format, as in a zone file.")
    ttl = models.PositiveIntegerField(validators=[MinValueValidator(1), MaxValueValidator(MAX_TTL)])
    application = models.ForeignKey(
        Application, null=True, blank=True, on_delete=models.PROTECT, related_name="dns_records"
    )
    environment = models.ForeignKey(
        Environment, null=True, blank=True, on_delete=models.PROTECT, related_name="dns_records"
    )
    status = models.CharField(max_length=16, choices=RecordStatus.choices, default=RecordStatus.PENDING)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["zone__name", "name", "type"]
        constraints = [
            models.UniqueConstraint(fields=["zone", "name", "type"], name="dns_record_unique_rrset"),
            # A CNAME may not share its name with an A (or another CNAME): one address per name.
            models.UniqueConstraint(
                fields=["zone", "name"], condition=Q(type__in=ADDRESS_TYPES), name="dns_record_one_address_per_name"
            ),
            models.CheckConstraint(
                condition=Q(status="error") | Q(last_error=""), name="dns_record_error_only_when_failed"
            ),
        ]
        indexes = [models.Index(fields=["application", "environment"]), models.Index(fields=["status"])]

    def __str__(self) -> str:
        return f"{self.name} {self.type} {self.content}"

    @property
    def rrset(self) -> RRset:
        return RRset(name=self.name, type=self.type, ttl=self.ttl, contents=(self.content,))

    @property
    def project_id(self) -> int | None:
        """The project whose application owns the record: the audit trail files its events there."""
        return self.application.project_id if self.application_id else None

    @property
    def is_address(self) -> bool:
        return self.type in ADDRESS_TYPES
