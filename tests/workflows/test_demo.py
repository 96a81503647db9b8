"""The demo's share of issue #17: a sample release built from a package, and a month of demo usage."""
import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from billing.models import CostRecord, UsageSample
from billing.selectors import monthly_report
from billing.services import usage_demo_backfill
from deployments.models import Application, Cluster, Environment
from paas_site.errors import ApplicationError
from tests.deployments.factories import UserFactory, base_image
from workflows.models import Release


def seed(sandbox_url: str = "http://127.0.0.1:6443", token: str = "sandbox-token") -> None:
    base_image("nginx"), base_image("tomcat")
    call_command("seed_demo", password="demo-password", sandbox_url=sandbox_url, sandbox_token=token,
                 stdout=io.StringIO())


def lanes() -> list:
    return [(application, environment) for application in Application.objects.filter(project__slug="shop")
            for environment in Environment.objects.filter(name__in=["dev", "prod"])]


@pytest.mark.django_db
def test_a_month_of_demo_usage_is_rated_and_reported_as_demo_data(settings):
    settings.DEBUG = True
    seed()
    now = timezone.now()
    real = UsageSample.objects.create(  # metered for real: kept by a second backfill
        cluster=Cluster.objects.get(name="sandbox"), project_id=Application.objects.get(name="web").project_id,
        environment=Environment.objects.get(name="dev"), application=Application.objects.get(name="web"),
        sampled_at=now - timedelta(days=1, minutes=7), interval_seconds=300, replicas=1, cpu_cores=1, memory_gib=1)
    # when the demo backfills 30 days for 3 applications in 2 environments
    made = usage_demo_backfill(lanes=lanes(), days=30, now=now)
    # then there is a sample per lane and hour, more replicas in business hours, rated into costs per day
    assert made == 3 * 2 * 30 * 24 == UsageSample.objects.filter(demo=True).count()
    replicas = {s.sampled_at.hour: s.replicas for s in UsageSample.objects.filter(demo=True, application__name="web",
                                                                                environment__name="dev")}
    assert max(replicas.values()) > min(replicas.values()) >= 1
    days = set(CostRecord.objects.values_list("day", flat=True))
    assert len(days) >= 30 and CostRecord.objects.filter(amount__gt=0).exists()
    finance = UserFactory(username="money", finance=True)
    report = monthly_report(user=finance, month=(now - timedelta(days=15)).date())
    assert report.demo_data and report.amount > 0
    # and the costs page says so
    client = Client()
    client.force_login(finance)
    page = client.get(f"/costs/?month={(now - timedelta(days=15)):%Y-%m}")
    assert page.status_code == 200 and b'id="demo-data"' in page.content
    # a second run makes the same month again, and keeps the real sample
    assert usage_demo_backfill(lanes=lanes(), days=30, now=now) == made
    assert UsageSample.objects.filter(demo=True).count() == made
    assert UsageSample.objects.filter(id=real.id, demo=False).exists()


@pytest.mark.django_db
def test_metered_usage_alone_is_not_called_demo_data(settings, project, finance_user):
    assert not monthly_report(user=finance_user, month=timezone.localdate()).demo_data


@pytest.mark.django_db
def test_demo_usage_is_made_up_only_with_debug(settings):
    settings.DEBUG = False
    with pytest.raises(ApplicationError, match="DEBUG"):
        usage_demo_backfill(lanes=[], days=1)
    assert not UsageSample.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.integration
@pytest.mark.usefixtures("quick_pipeline")
def test_the_sample_release_is_built_from_a_package_when_a_registry_runs(settings, registry, sandbox, worker):
    from tests.conftest import SANDBOX_TOKEN

    settings.DEBUG = True
    sandbox.reset()
    seed(sandbox_url=sandbox.url, token=SANDBOX_TOKEN)
    settings.SLIPWAY_REGISTRY = registry.host
    call_command("base_images_seed", registry=registry.host, stdout=io.StringIO())
    out = io.StringIO()
    call_command("release_sample", sandbox_url=sandbox.url, timeout=40, stdout=out)
    release = Release.objects.get()
    assert release.state == "succeeded", out.getvalue()
    assert (release.application.name, release.package.filename) == ("web", "index.html")
    assert release.image_digest and release.revision.image.startswith(f"{registry.host}/shop/web@sha256:")
    assert "built onto base image nginx" in out.getvalue() and "Release #" in out.getvalue()
