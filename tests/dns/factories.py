import factory

from dns.models import EnvironmentZone, Record, Zone
from tests.deployments.factories import ApplicationFactory, EnvironmentFactory


class ZoneFactory(factory.django.DjangoModelFactory):
    """A local zone; pass provider="powerdns", api_url and api_key for a PowerDNS one."""

    class Meta:
        model = Zone

    name = factory.Sequence(lambda n: f"zone{n}.example.")
    provider = "local"
    default_ttl = 60


class EnvironmentZoneFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EnvironmentZone

    environment = factory.SubFactory(EnvironmentFactory)
    zone = factory.SubFactory(ZoneFactory)


class RecordFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Record

    zone = factory.SubFactory(ZoneFactory)
    application = factory.SubFactory(ApplicationFactory)
    environment = factory.SubFactory(EnvironmentFactory)
    name = factory.LazyAttribute(lambda r: f"{r.application.name}.{r.application.project.slug}.{r.zone.name}")
    type = "A"
    content = "10.0.0.10"
    ttl = 60
    status = "synced"
