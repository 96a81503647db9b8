from datetime import UTC, datetime
from decimal import Decimal

import factory

from billing.models import Budget, PriceBook, UsageSample
from tests.deployments.factories import ApplicationFactory, EnvironmentFactory


class PriceBookFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PriceBook

    name = factory.Sequence(lambda n: f"prices {n}")
    environment = factory.SubFactory(EnvironmentFactory)
    cluster = None
    valid_from = datetime(2026, 1, 1, tzinfo=UTC)
    valid_until = None
    currency = "EUR"
    cpu_core_hour = Decimal("0.040000")
    memory_gib_hour = Decimal("0.005000")
    ingress_hour = Decimal("0")


class UsageSampleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = UsageSample

    application = factory.SubFactory(ApplicationFactory)
    project = factory.LazyAttribute(lambda s: s.application.project)
    environment = factory.SubFactory(EnvironmentFactory)
    cluster = factory.LazyAttribute(lambda s: s.environment.cluster)
    sampled_at = datetime(2026, 3, 10, 0, 0, tzinfo=UTC)
    interval_seconds = 3600
    replicas = 1
    cpu_cores = Decimal("0.5")
    memory_gib = Decimal("1")
    exposed = False


class BudgetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Budget

    month = datetime(2026, 3, 1).date()
    amount = Decimal("100.00")
    currency = "EUR"
