"""Prices, metered usage, rated costs and budgets.

Amounts are ``Decimal`` end to end: prices are stored with 6 decimal places,
rated quantities and amounts with 12 (a sample's share of an hour is rarely a
terminating decimal), and reports round to cents only at the very end.
"""
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q

from deployments.models import Application, Cluster, Environment, Project

from .choices import BudgetThreshold
from .currencies import validate_currency

PRICE = {"max_digits": 12, "decimal_places": 6, "validators": [MinValueValidator(0)]}
QUANTITY = {"max_digits": 24, "decimal_places": 12}


class PriceBook(models.Model):
    """Prices in force for one environment or one cluster during a period.

    The period is half-open, ``[valid_from, valid_until)``, and timestamps
    rather than dates so that a price can change at any hour of a day. An
    environment's own price book wins over its cluster's.
    """

    name = models.CharField(max_length=120)
    environment = models.ForeignKey(
        Environment, null=True, blank=True, on_delete=models.PROTECT, related_name="price_books"
    )
    cluster = models.ForeignKey(Cluster, null=True, blank=True, on_delete=models.PROTECT, related_name="price_books")
    valid_from = models.DateTimeField()
    valid_until = models.DateTimeField(null=True, blank=True, help_text="Exclusive; empty means open-ended.")
    currency = models.CharField(max_length=3, validators=[validate_currency], help_text="ISO 4217 code, e.g. EUR.")
    cpu_core_hour = models.DecimalField(**PRICE, help_text="Price of one requested CPU core for one hour.")
    memory_gib_hour = models.DecimalField(**PRICE, help_text="Price of one requested GiB of memory for one hour.")
    storage_gib_hour = models.DecimalField(**PRICE, default=0, help_text="Price of one GiB of storage for one hour.")
    ingress_hour = models.DecimalField(**PRICE, default=0, help_text="Price of one exposed application for one hour.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["environment__name", "cluster__name", "-valid_from"]
        constraints = [
            models.CheckConstraint(
                condition=Q(environment__isnull=False, cluster__isnull=True)
                | Q(environment__isnull=True, cluster__isnull=False),
                name="pricebook_environment_xor_cluster",
            ),
            models.CheckConstraint(
                condition=Q(valid_until__isnull=True) | Q(valid_until__gt=F("valid_from")),
                name="pricebook_period_not_empty",
            ),
            models.CheckConstraint(
                condition=Q(cpu_core_hour__gte=0, memory_gib_hour__gte=0, storage_gib_hour__gte=0, ingress_hour__gte=0),
                name="pricebook_prices_not_negative",
            ),
        ]
        indexes = [
            models.Index(fields=["environment", "valid_from"]),
            models.Index(fields=["cluster", "valid_from"]),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.scope_label})"

    @property
    def scope_label(self) -> str:
        if self.environment_id:
            return f"environment {self.environment.name}"
        return f"cluster {self.cluster.name}" if self.cluster_id else "no scope"

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if bool(self.environment_id) == bool(self.cluster_id):
            errors["environment"] = "set exactly one of environment or cluster."
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            errors["valid_until"] = "must be after valid_from."
        if errors:
            raise ValidationError(errors)


class UsageSample(models.Model):
    """What one application requested in one environment at one metering run, for one interval."""

    cluster = models.ForeignKey(Cluster, on_delete=models.PROTECT, related_name="+")
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="+")
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="+")
    application = models.ForeignKey(Application, on_delete=models.PROTECT, related_name="+")
    sampled_at = models.DateTimeField()
    interval_seconds = models.PositiveIntegerField()
    replicas = models.PositiveIntegerField()
    cpu_cores = models.DecimalField(max_digits=18, decimal_places=9, help_text="Requested cores × replicas.")
    memory_gib = models.DecimalField(**QUANTITY, help_text="Requested GiB × replicas.")
    exposed = models.BooleanField(default=False)
    demo = models.BooleanField(default=False, help_text="Made up by the demo (manage.py demo), not metered.")

    class Meta:
        ordering = ["-sampled_at", "application_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["cluster", "environment", "application", "sampled_at"], name="usagesample_once_per_run"
            ),
            models.CheckConstraint(condition=Q(interval_seconds__gt=0), name="usagesample_interval_positive"),
        ]
        indexes = [models.Index(fields=["sampled_at"]), models.Index(fields=["application", "environment", "-sampled_at"])]

    def __str__(self) -> str:
        return f"{self.application_id} in {self.environment_id} at {self.sampled_at:%Y-%m-%d %H:%M}"


class MeteringGap(models.Model):
    """A metering run that could not read a cluster: unknown usage, which is not zero usage."""

    cluster = models.ForeignKey(Cluster, on_delete=models.PROTECT, related_name="+")
    sampled_at = models.DateTimeField()
    interval_seconds = models.PositiveIntegerField()
    reason = models.TextField()

    class Meta:
        ordering = ["-sampled_at"]
        indexes = [models.Index(fields=["sampled_at"])]

    def __str__(self) -> str:
        return f"gap in {self.cluster} at {self.sampled_at:%Y-%m-%d %H:%M}"


class CostRecord(models.Model):
    """Rated usage of one application in one environment on one day under one price book.

    A day whose prices changed has one record per price book in force; usage
    that no price book covers has ``price_book`` and ``amount`` empty.
    """

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="+")
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="+")
    application = models.ForeignKey(Application, on_delete=models.PROTECT, related_name="+")
    day = models.DateField()
    price_book = models.ForeignKey(PriceBook, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    currency = models.CharField(max_length=3, blank=True)
    samples = models.PositiveIntegerField()
    core_hours = models.DecimalField(**QUANTITY)
    gib_hours = models.DecimalField(**QUANTITY)
    ingress_hours = models.DecimalField(**QUANTITY)
    amount = models.DecimalField(**QUANTITY, null=True, blank=True, help_text="Empty when no price book was in force.")
    computed_at = models.DateTimeField()

    class Meta:
        ordering = ["-day", "project_id", "environment_id", "application_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["application", "environment", "day", "price_book"],
                condition=Q(price_book__isnull=False),
                name="costrecord_unique_priced",
            ),
            models.UniqueConstraint(
                fields=["application", "environment", "day"],
                condition=Q(price_book__isnull=True),
                name="costrecord_unique_unpriced",
            ),
            models.CheckConstraint(
                condition=Q(price_book__isnull=True, amount__isnull=True)
                | Q(price_book__isnull=False, amount__isnull=False),
                name="costrecord_amount_iff_priced",
            ),
        ]
        indexes = [models.Index(fields=["day", "project"])]

    def __str__(self) -> str:
        return f"cost of {self.application_id} in {self.environment_id} on {self.day}"


class Budget(models.Model):
    """What a project may spend in one month; alerts fire at 80 % and 100 %."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="budgets")
    month = models.DateField(help_text="The first day of the month.")
    amount = models.DecimalField(max_digits=14, decimal_places=2, validators=[MinValueValidator(0)])
    currency = models.CharField(max_length=3, validators=[validate_currency])
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-month", "project__slug"]
        constraints = [
            models.UniqueConstraint(fields=["project", "month"], name="budget_one_per_project_month"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="budget_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"budget of {self.project} for {self.month:%Y-%m}" if self.project_id and self.month else "budget"

    def clean(self) -> None:
        if self.month and self.month.day != 1:
            raise ValidationError({"month": "must be the first day of a month."})
        if self.amount is not None and self.amount <= 0:
            raise ValidationError({"amount": "must be greater than zero."})


class BudgetAlert(models.Model):
    """A budget threshold crossed; the unique constraint makes each fire once per month."""

    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="alerts")
    threshold = models.PositiveSmallIntegerField(choices=BudgetThreshold.choices)
    spent = models.DecimalField(**QUANTITY)
    budget_amount = models.DecimalField(max_digits=14, decimal_places=2)
    currency = models.CharField(max_length=3)
    created_at = models.DateTimeField(auto_now_add=True)
    notified_at = models.DateTimeField(null=True, blank=True, help_text="When the project's webhooks were told.")

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["budget", "threshold"], name="budgetalert_once_per_threshold")]

    def __str__(self) -> str:
        return f"{self.threshold}% of {self.budget}"

    @property
    def project_id(self) -> int:
        """Lets the audit trail file the alert under its project."""
        return self.budget.project_id
