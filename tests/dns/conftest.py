import pytest

from tests.deployments.factories import ApplicationFactory, ClusterFactory, EnvironmentFactory
from tests.dns.factories import EnvironmentZoneFactory, ZoneFactory


@pytest.fixture
def pdns_zone(pdns):
    """The session's PowerDNS server, its zone emptied and the server running."""
    if pdns.process is None or pdns.process.poll() is not None:
        pdns.start()
    pdns.reset()
    return pdns


@pytest.fixture
def zone(db, pdns_zone):
    """A Zone row for the real PowerDNS zone ``internal.test.``."""
    return ZoneFactory(
        name=pdns_zone.zone, provider="powerdns", api_url=pdns_zone.api_url, api_key=pdns_zone.api_key, default_ttl=60
    )


@pytest.fixture
def prod(db):
    """The ``prod`` environment, on a cluster whose ingress is 10.0.0.10."""
    return EnvironmentFactory(name="prod", cluster=ClusterFactory(name="prod-cluster", ingress_address="10.0.0.10"))


@pytest.fixture
def published_in(prod):
    """``published_in(zone)`` attaches ``zone`` to prod with the default pattern."""
    def attach(zone, pattern: str = "{application}.{project}.{zone}"):
        return EnvironmentZoneFactory(environment=prod, zone=zone, name_pattern=pattern)

    return attach


@pytest.fixture
def api_app(project):
    """``shop/api``: its name in internal.test. is api.shop.internal.test."""
    return ApplicationFactory(project=project, name="api")
