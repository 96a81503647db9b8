"""The web console's pages: what each role sees, that buttons go through the services, and bad input."""
import csv
import io
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import requests
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing import services as billing
from deployments import services as deployments
from deployments.manifests import ReleaseConfig
from deployments.models import Revision
from dns.models import Record, Zone
from tests.billing.factories import PriceBookFactory, UsageSampleFactory
from tests.conftest import SANDBOX_TOKEN
from tests.deployments.factories import (
    ApplicationFactory,
    EnvironmentFactory,
    MembershipFactory,
    ProjectFactory,
    UserFactory,
    deploy_spec,
)
from tests.deployments.test_sandbox import wait_for
from tests.workflows.factories import PINNED, file_release
from workflows import services
from workflows.choices import ReleaseState, StepStatus
from workflows.models import Release, StepRun

pytestmark = pytest.mark.django_db
IMAGE = "registry.example.com/team/app"


@pytest.fixture
def prod():
    return EnvironmentFactory(name="prod", required_approvals=2, rank=2)


@pytest.fixture
def app(project):
    return ApplicationFactory(project=project, name="api", image=IMAGE, replicas=2)


@pytest.fixture
def approver(project):
    return MembershipFactory(project=project, role="approver", user=UserFactory(username="approver1")).user


def last_message(response) -> str:
    """The message this request added (earlier ones wait in the session until a page shows them)."""
    return [str(message) for message in get_messages(response.wsgi_request)][-1]


def field_group(html: str, name: str) -> str:
    """The label, help, errors and input of one field, as Django renders a field group (up to the next field)."""
    start = html.index(f'for="id_{name}"')
    end = html.find('<div class="field">', start)
    return html[start:end if end > 0 else None]


def succeeded_release(app, env, version: str, number: int, replaced: Revision | None = None) -> Release:
    """A release that ran (made directly: these tests are about pages, not the pipeline)."""
    revision = Revision.objects.create(application=app, environment=env, number=number, image=f"{IMAGE}:{version}",
                                       replicas=2, manifests=[], manifests_digest=f"d{number}")
    return Release.objects.create(application=app, environment=env, version=version, image=f"{IMAGE}:{version}",
                                  config_hash="h", revision=revision, replaced=replaced, state=ReleaseState.SUCCEEDED)


# -- signing in -----------------------------------------------------------------------
PAGES = ["console:dashboard", "console:release-list", "console:release-new", "console:approvals", "console:costs"]


@pytest.mark.parametrize("name", PAGES)
def test_every_page_asks_anonymous_visitors_to_sign_in(client, name):
    response = client.get(reverse(name))

    assert response.status_code == 302 and response["Location"].startswith(reverse("console:login"))


def test_sign_in_and_out(client, developer):
    page = client.get(reverse("console:login"))
    assert page.status_code == 200 and 'name="username"' in page.content.decode()

    wrong = client.post(reverse("console:login"), {"username": "dev", "password": "nope"})
    assert wrong.status_code == 200 and "Please enter a correct username and password" in wrong.content.decode()

    signed_in = client.post(reverse("console:login"), {"username": "dev", "password": "correct horse battery staple"})
    assert signed_in.status_code == 302 and signed_in["Location"] == reverse("console:dashboard")
    assert client.get(reverse("console:logout")).status_code == 405  # signing out is a POST (CSRF-protected)
    assert client.post(reverse("console:logout")).status_code == 302
    assert client.get(reverse("console:dashboard")).status_code == 302


# -- the dashboard ----------------------------------------------------------------------
def test_dashboard_shows_each_application_per_environment(client, developer, app, prod):
    # given: 1.0 ran, 1.1 replaced it; DNS publishes its name; 1.2 waits for approval; the cluster is unreachable
    first = succeeded_release(app, prod, "1.0", 1)
    succeeded_release(app, prod, "1.1", 2, replaced=first.revision)
    zone = Zone.objects.create(name="apps.example.test.")
    Record.objects.create(zone=zone, name="api.shop.prod.apps.example.test.", type="A", content="10.0.0.1", ttl=60,
                          application=app, environment=prod)
    waiting = file_release(actor=developer, application=app, environment=prod, version="1.2")
    client.force_login(developer)

    html = client.get(reverse("console:dashboard")).content.decode()

    row = re.search(r'<th scope="row">prod</th>(.*?)</tr>', html, re.S).group(1)
    assert "1.1" in row and "revision #2" in row
    # replicas are the cluster's to tell, not the revision's 2: this one did not answer
    assert re.search(r'<td><span class="muted" title="[^"]+">cluster unreachable</span></td>', row)
    assert f"#{waiting.id} 1.2" in row and "requested" in row
    assert "api.shop.prod.apps.example.test" in row


def test_dashboard_query_count_does_not_grow_with_applications(client, developer, project, prod):
    client.force_login(developer)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(reverse("console:dashboard")).status_code == 200
        return len(captured)

    app = ApplicationFactory(project=project)
    succeeded_release(app, prod, "1.0", 1)
    one = queries()
    for _ in range(4):
        other = ApplicationFactory(project=project)
        succeeded_release(other, prod, "1.0", 1)
        file_release(actor=developer, application=other, environment=prod, version="2.0")
    assert queries() == one


def test_an_outsider_sees_no_application_and_a_helpful_empty_state(client, outsider, app):
    client.force_login(outsider)

    html = client.get(reverse("console:dashboard")).content.decode()

    assert "shop/api" not in html and "No applications here yet" in html
    assert client.get(reverse("console:application-detail", args=[app.id])).status_code == 404


def test_the_project_switcher_narrows_the_lists(client, developer, project, app):
    other = ProjectFactory(slug="bank")
    MembershipFactory(project=other, user=developer)
    ApplicationFactory(project=other, name="ledger")
    client.force_login(developer)

    client.post(reverse("console:project-switch"), {"project": "bank", "next": reverse("console:dashboard")})
    html = client.get(reverse("console:dashboard")).content.decode()
    assert "bank/ledger" in html and "shop/api" not in html

    refused = client.post(reverse("console:project-switch"), {"project": "secret", "next": "https://evil.example/"})
    assert refused["Location"] == reverse("console:dashboard")  # no open redirect
    assert "not a member" in last_message(refused)
    client.post(reverse("console:project-switch"), {"project": ""})
    assert "shop/api" in client.get(reverse("console:dashboard")).content.decode()


# -- the release form -------------------------------------------------------------------
def form_data(app, environment, **overrides) -> dict:
    data = {
        "application": app.id, "environment": environment.name, "version": "2.0", "image": "", "env": "LOG_LEVEL=debug\n",
        "description": "", "scheduled_at": "",
        "files-TOTAL_FORMS": "2", "files-INITIAL_FORMS": "0", "files-MIN_NUM_FORMS": "0", "files-MAX_NUM_FORMS": "20",
        "files-0-name": "app.properties", "files-0-content": "pool=10\n", "files-1-name": "", "files-1-content": "",
    }
    return {**data, **overrides}


def test_filing_a_release_through_the_form(client, developer, app, prod, registry):
    client.force_login(developer)
    assert "Prebuilt image" in client.get(reverse("console:release-new")).content.decode()
    app.image = f"{registry.host}/team/app"  # the tag the form defaults to is pinned at filing
    app.save()
    digest = registry.push_image("team/app", "2.0")

    response = client.post(reverse("console:release-new"), form_data(app, prod, scheduled_at="2030-01-02T03:04"))

    release = Release.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("console:release-detail", args=[release.id])
    assert (release.state, release.version, release.image) == ("requested", "2.0", f"{app.image}:2.0")
    assert release.image_digest == digest
    assert release.requested_via == "console" and release.requested_by == developer
    assert release.config == {"env": {"LOG_LEVEL": "debug"}, "files": {"app.properties": "pool=10\n"}}
    assert release.scheduled_at == datetime(2030, 1, 2, 3, 4, tzinfo=UTC)


def test_form_errors_are_shown_next_to_their_fields_and_nothing_is_saved(client, developer, app, prod):
    client.force_login(developer)

    response = client.post(reverse("console:release-new"), form_data(
        app, prod, version="not a version!", env="LOG_LEVEL=debug\nno equals sign\n", scheduled_at="tomorrow",
        **{"files-1-content": "orphan content"},
    ))

    assert response.status_code == 400 and not Release.objects.exists()
    html = response.content.decode()
    assert "The release was not filed" in html
    version = field_group(html, "version")
    assert "starting with a letter or digit" in version and 'aria-invalid="true"' in version
    assert "line 2: expected NAME=value." in field_group(html, "env")
    assert "Enter a valid date/time." in field_group(html, "scheduled_at")
    assert "A file with content needs a name." in field_group(html, "files-1-name")
    assert 'value="LOG_LEVEL=debug' in html or "LOG_LEVEL=debug\nno equals sign" in html  # input kept


@pytest.mark.parametrize("overrides, field, message", [
    ({"env": "1BAD=x"}, "env", "1BAD: name must be letters"),
    ({"files-0-name": "../escape"}, "files-0-name", "file name must be letters"),
    ({"image": "Not An Image"}, "image", "Not An Image"),
])
def test_service_validation_errors_land_next_to_the_field_they_name(client, developer, app, prod, overrides, field, message):
    client.force_login(developer)

    response = client.post(reverse("console:release-new"), form_data(app, prod, **overrides))

    assert response.status_code == 400 and not Release.objects.exists()
    assert message in field_group(response.content.decode(), field)


def test_finance_and_approvers_cannot_file_releases(client, finance_user, approver, app, prod):
    for user in (finance_user, approver):
        client.force_login(user)
        assert "may not file releases of any application" in client.get(reverse("console:release-new")).content.decode()
        response = client.post(reverse("console:release-new"), form_data(app, prod))
        assert response.status_code == 400 and "may not file releases" in response.content.decode()
    assert not Release.objects.exists()


# -- one release ------------------------------------------------------------------------
def test_release_page_shows_review_timeline_and_audit(client, developer, approver, app, prod):
    succeeded_release(app, prod, "1.0", 1)
    release = file_release(actor=developer, application=app, environment=prod, version="2.0",
                           config={"env": {"FEATURE": "on"}})
    client.force_login(approver)

    html = client.get(reverse("console:release-detail", args=[release.id])).content.decode()

    assert f"Release #{release.id}: shop/api 2.0 → prod" in html
    assert "Waiting for approval: 0 of 2 given." in html
    assert "<code>FEATURE</code>" in html and "added" in html  # the config diff
    assert f"{IMAGE}:1.0" in html  # what runs now
    assert "Release requested" in html  # the audit trail
    assert 'aria-live="polite"' in html and 'hx-trigger="every 2s"' in html
    assert ">Approve</button>" in html and ">Reject</button>" in html


def test_the_timeline_stops_polling_once_the_release_is_final(client, developer, app, prod):
    release = succeeded_release(app, prod, "1.0", 1)
    StepRun.objects.create(release=release, step="build", status=StepStatus.SUCCEEDED, log="image pinned\n",
                           finished_at=release.created_at + timedelta(seconds=2))
    StepRun.objects.create(release=release, step="deploy", status=StepStatus.RUNNING)
    client.force_login(developer)

    fragment = client.get(reverse("console:release-timeline", args=[release.id]), HTTP_HX_REQUEST="true")

    html = fragment.content.decode()
    assert fragment.status_code == 200 and "<html" not in html
    assert "hx-trigger" not in html and "image pinned" in html
    assert "running" in html and re.search(r"\d+\.\d s|\d+ min", html)
    assert "Roll back…" not in html  # nothing ran before 1.0: nothing to roll back to


def test_an_outsider_gets_404_for_release_pages_and_actions(client, outsider, developer, app, prod):
    release = file_release(actor=developer, application=app, environment=prod)
    client.force_login(outsider)

    for name in ("console:release-detail", "console:release-timeline", "console:release-review", "console:release-rollback"):
        assert client.get(reverse(name, args=[release.id])).status_code == 404
    for name in ("console:release-approve", "console:release-cancel", "console:release-retry"):
        assert client.post(reverse(name, args=[release.id])).status_code == 404
    assert Release.objects.get().state == "requested"


def test_finance_reads_releases_but_changes_nothing(client, finance_user, developer, app, prod):
    release = file_release(actor=developer, application=app, environment=prod)
    client.force_login(finance_user)

    html = client.get(reverse("console:release-detail", args=[release.id])).content.decode()
    assert "Cancel release" not in html and ">Approve</button>" not in html

    response = client.post(reverse("console:release-cancel", args=[release.id]))
    assert response.status_code == 302 and "Only a project developer or maintainer" in last_message(response)
    response = client.post(reverse("console:release-approve", args=[release.id]))
    assert "Only a project approver or maintainer" in last_message(response)
    assert Release.objects.get().state == "requested" and not release.approvals.exists()


def test_approving_and_cancelling_go_through_the_services(client, developer, approver, app, prod):
    release = file_release(actor=developer, application=app, environment=prod)

    client.force_login(developer)
    refused = client.post(reverse("console:release-approve", args=[release.id]))
    assert "Only a project approver or maintainer" in last_message(refused) and not release.approvals.exists()

    client.force_login(approver)
    approved = client.post(reverse("console:release-approve", args=[release.id]), {"comment": "fine by me"})
    assert approved["Location"] == reverse("console:release-detail", args=[release.id])
    assert "You approved release" in last_message(approved)
    assert release.approvals.get().comment == "fine by me"

    client.force_login(developer)
    cancelled = client.post(reverse("console:release-cancel", args=[release.id]))
    assert "cancelled" in last_message(cancelled)
    release.refresh_from_db()
    assert release.state == "cancelled"
    assert client.post(reverse("console:release-cancel", args=[release.id])).status_code == 302
    assert Release.objects.get().state == "cancelled"


def test_rollback_asks_for_confirmation_then_files_a_rollback_release(client, developer, app, prod):
    first = succeeded_release(app, prod, "1.0", 1)
    second = succeeded_release(app, prod, "2.0", 2, replaced=first.revision)
    client.force_login(developer)
    assert "Roll back…" in client.get(reverse("console:release-detail", args=[second.id])).content.decode()

    confirm = client.get(reverse("console:release-rollback", args=[second.id]))
    assert confirm.status_code == 200 and "Yes, roll back" in confirm.content.decode()
    assert Release.objects.count() == 2  # asking changes nothing

    done = client.post(reverse("console:release-rollback", args=[second.id]), {"description": "2.0 breaks checkout"})

    rollback = Release.objects.get(rollback_of=second)
    assert done["Location"] == reverse("console:release-detail", args=[rollback.id])
    assert (rollback.state, rollback.version, rollback.description) == ("requested", "1.0", "2.0 breaks checkout")
    refused = client.post(reverse("console:release-rollback", args=[first.id]))
    assert "no earlier revision" in last_message(refused) and Release.objects.count() == 3


# -- the approver queue -----------------------------------------------------------------
def test_the_queue_lists_what_awaits_me_with_cost_and_diff(client, developer, approver, app, prod):
    mine = file_release(actor=developer, application=app, environment=prod, version="2.0", config={"env": {"X": "1"}})
    decided = file_release(actor=developer, application=ApplicationFactory(project=app.project), environment=prod)
    services.approval_grant(release_id=decided.id, actor=approver)
    client.force_login(approver)

    html = client.get(reverse("console:approvals")).content.decode()

    assert f"#{mine.id} shop/api 2.0 → prod" in html and f"#{decided.id} " not in html
    assert 'hx-trigger="toggle once"' in html
    review = client.get(reverse("console:release-review", args=[mine.id])).content.decode()
    assert "<code>X</code>" in review and "nothing runs here yet" in review

    client.force_login(developer)
    assert "Nothing awaits your decision" in client.get(reverse("console:approvals")).content.decode()


def test_deciding_from_the_queue_returns_to_it(client, developer, approver, app, prod):
    release = file_release(actor=developer, application=app, environment=prod)
    client.force_login(approver)

    response = client.post(reverse("console:release-reject", args=[release.id]), {"comment": "no", "next": "queue"})

    assert response["Location"] == reverse("console:approvals")
    release.refresh_from_db()
    assert release.state == "rejected"


def test_queue_query_count_does_not_grow(client, developer, approver, project, prod):
    client.force_login(approver)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            client.get(reverse("console:approvals"))
        return len(captured)

    file_release(actor=developer, application=ApplicationFactory(project=project), environment=prod)
    one = queries()
    for _ in range(4):
        file_release(actor=developer, application=ApplicationFactory(project=project), environment=prod)
    assert queries() == one


def test_release_list_filters_paginates_and_keeps_its_query_count(client, developer, project, prod):
    client.force_login(developer)
    apps = [ApplicationFactory(project=project) for _ in range(25)]
    for application in apps:
        file_release(actor=developer, application=application, environment=prod)
    Release.objects.filter(application=apps[0]).update(state=ReleaseState.CANCELLED)

    with CaptureQueriesContext(connection) as first:
        page1 = client.get(reverse("console:release-list")).content.decode()
    with CaptureQueriesContext(connection) as second:
        page2 = client.get(reverse("console:release-list"), {"page": 2}).content.decode()

    assert len(first) == len(second)
    assert "Page 1 of 2" in page1 and page1.count('<tr>') - 1 == 20 and page2.count("<tr>") - 1 == 5
    cancelled = client.get(reverse("console:release-list"), {"state": "cancelled"}).content.decode()
    assert cancelled.count("<tr>") - 1 == 1


# -- running applications ---------------------------------------------------------------
@pytest.fixture
def running(project, sandbox_cluster):
    env = EnvironmentFactory(name="dev", cluster=sandbox_cluster, rollout_deadline_seconds=5, required_approvals=0)
    app = ApplicationFactory(project=project, name="web", replicas=2)
    revision = deployments.deployment_apply(application_id=app.id, environment_id=env.id, image=PINNED.format(version="1"),
                                           config=ReleaseConfig(env={}, files={}), release="1",
                                           spec=deploy_spec(app, env))
    deployments.deployment_verify(revision_id=revision.id, poll_interval=0.05)
    return app, env


def test_application_page_lists_pods_with_links_to_their_logs(client, developer, running):
    app, env = running
    client.force_login(developer)

    html = client.get(reverse("console:application-detail", args=[app.id])).content.decode()

    pods = re.findall(r"<td><code>(web-[^<]+)</code></td><td>Running", html)
    assert len(pods) == 2
    logs = client.get(reverse("console:pod-logs", args=[app.id]), {"environment": "dev", "pod": pods[0], "tail": 5})
    assert logs.status_code == 200 and '<pre class="log tall"' in logs.content.decode()
    other = client.get(reverse("console:pod-logs", args=[app.id]), {"environment": "dev", "pod": "not-mine"})
    assert other.status_code == 404
    bad = client.get(reverse("console:pod-logs", args=[app.id]), {"environment": "nowhere", "pod": pods[0], "tail": 0})
    assert bad.status_code == 400 and "Select a valid choice" in bad.content.decode()


def test_scaling_from_the_console(client, developer, approver, running):
    app, env = running
    client.force_login(developer)

    response = client.post(reverse("console:application-scale", args=[app.id]), {"environment": "dev", "replicas": 3})

    assert last_message(response) == "web in dev scaled from 2 to 3 replicas."
    assert deployments.cluster_client(env.cluster).read("Deployment", "web", "shop-dev")["spec"]["replicas"] == 3
    client.force_login(approver)
    refused = client.post(reverse("console:application-scale", args=[app.id]), {"environment": "dev", "replicas": 1})
    assert "Only a project developer or maintainer" in last_message(refused)
    bad = client.post(reverse("console:application-scale", args=[app.id]), {"environment": "dev", "replicas": -1})
    assert "replicas" in last_message(bad)
    assert deployments.cluster_client(env.cluster).read("Deployment", "web", "shop-dev")["spec"]["replicas"] == 3


def test_the_console_shows_the_replicas_the_autoscaler_set(client, developer, project, sandbox, sandbox_cluster):
    # given an autoscaled application (1 to 3 replicas at 50 % CPU), deployed with one replica
    env = EnvironmentFactory(name="dev", cluster=sandbox_cluster, rollout_deadline_seconds=5, required_approvals=0)
    app = ApplicationFactory(project=project, name="web", replicas=1, autoscaling_min=1, autoscaling_max=3,
                             autoscaling_target_cpu=50)
    revision = deployments.deployment_apply(application_id=app.id, environment_id=env.id, image=PINNED.format(version="1"),
                                           config=ReleaseConfig(env={}, files={}), release="1",
                                           spec=deploy_spec(app, env))
    deployments.deployment_verify(revision_id=revision.id, poll_interval=0.05)
    client.force_login(developer)
    assert re.search(r'<span class="replicas">1 replica \(1 ready; the autoscaler wants 1\)',
                     client.get(reverse("console:application-detail", args=[app.id])).content.decode())

    # when its pods run at 100 % CPU (the sandbox's simulated metric) and the HPA scales it to its maximum
    deployment = deployments.cluster_client(env.cluster).read("Deployment", "web", "shop-dev")
    annotated = {"metadata": {"annotations": {"sandbox.slipway.dev/cpu-utilization": "100"}}}
    response = requests.patch(f"{sandbox.url}/apis/apps/v1/namespaces/shop-dev/deployments/web", json=annotated,
                              headers={"Authorization": f"Bearer {SANDBOX_TOKEN}",
                                       "Content-Type": "application/merge-patch+json"}, timeout=5)
    assert response.status_code == 200 and deployment["spec"]["replicas"] == 1
    wait_for(lambda: deployments.cluster_client(env.cluster).read("HorizontalPodAutoscaler", "web", "shop-dev")
             .get("status", {}).get("currentReplicas") == 3 and deployments.cluster_client(env.cluster).rollout_status(
                 "shop-dev", "web").done, timeout=10)

    # then the console shows the cluster's 3, not the application's 1
    detail = client.get(reverse("console:application-detail", args=[app.id])).content.decode()
    assert re.search(r'<span class="replicas">3 replicas \(3 ready; the autoscaler wants 3\)', detail)
    assert 'name="replicas" min="0" max="100" value="3"' in detail
    dashboard = client.get(reverse("console:dashboard")).content.decode()
    row = re.search(r'<th scope="row">dev</th>(.*?)</tr>', dashboard, re.S).group(1)
    assert '<span class="replicas">3 <span class="muted">(autoscaled)</span></span>' in row
    # and so does the approvers' review of the next release, under "Running now"
    env.required_approvals = 1
    env.save()
    waiting = file_release(actor=developer, application=app, environment=env, version="2")
    review = client.get(reverse("console:release-detail", args=[waiting.id])).content.decode()
    replicas_row = re.search(r'<th scope="row">Replicas</th><td>(.*?)</td>', review, re.S).group(1)
    assert replicas_row == '<span class="replicas">3 <span class="muted">(autoscaled)</span></span>'


def test_an_unreachable_cluster_is_reported_on_the_page_not_a_500(client, developer, running):
    app, env = running
    env.cluster.api_server = "http://127.0.0.1:9"
    env.cluster.save()
    client.force_login(developer)

    response = client.get(reverse("console:application-detail", args=[app.id]))

    html = response.content.decode()
    assert response.status_code == 200 and "The cluster did not answer" in html
    assert "replicas unknown: the cluster did not answer" in html


def test_a_hanging_cluster_does_not_hold_the_dashboard_for_its_whole_timeout(client, developer, running, sandbox):
    # given a cluster that takes 10 s to answer the next request, then answers it (the read timeout is 30 s)
    sandbox.inject_fault("slow", count=1, hang_seconds=10, method="GET")
    client.force_login(developer)

    # then the dashboard gives up on it after its own short wait, and says so
    dashboard = client.get(reverse("console:dashboard")).content.decode()
    row = re.search(r'<th scope="row">dev</th>(.*?)</tr>', dashboard, re.S).group(1)
    assert "cluster unreachable" in row


# -- costs ------------------------------------------------------------------------------
@pytest.fixture
def costs(project):
    env = EnvironmentFactory(name="dev")
    PriceBookFactory(environment=env, cpu_core_hour=Decimal("0.04"), memory_gib_hour=Decimal("0.005"))
    bank = ProjectFactory(slug="bank", cost_center="CC-1")
    for app, hours in ((ApplicationFactory(project=project, name="api"), 10), (ApplicationFactory(project=bank), 2)):
        for hour in range(hours):
            UsageSampleFactory(application=app, environment=env,
                               sampled_at=datetime(2026, 3, 10, tzinfo=UTC) + timedelta(hours=hour))
    billing.cost_records_compute(day=date(2026, 3, 10))


def test_finance_sees_every_project_with_charts_and_downloads_csv(client, finance_user, costs):
    client.force_login(finance_user)

    html = client.get(reverse("console:costs"), {"month": "2026-03"}).content.decode()

    assert "Total March 2026: <strong>0.30 EUR</strong>" in html
    assert html.count('<svg class="chart" role="img"') == 2
    assert "<title>shop: 0.25 EUR</title>" in html and "<title>10: 0.30 EUR</title>" in html
    csv_response = client.get(reverse("console:costs-csv"), {"month": "2026-03"})
    assert csv_response["Content-Disposition"] == 'attachment; filename="slipway-costs-2026-03.csv"'
    rows = list(csv.DictReader(io.StringIO(csv_response.content.decode())))
    assert [(r["project"], r["amount"]) for r in rows] == [("bank", "0.05"), ("shop", "0.25"), ("TOTAL", "0.30")]


def test_costs_filtered_to_one_project(client, finance_user, costs):
    client.force_login(finance_user)

    html = client.get(reverse("console:costs"), {"month": "2026-03", "project": "bank"}).content.decode()
    rows = list(csv.reader(io.StringIO(client.get(reverse("console:costs-csv"),
                                                  {"month": "2026-03", "project": "bank"}).content.decode())))

    assert "Total March 2026: <strong>0.05 EUR</strong>" in html and "<title>shop" not in html
    assert [row[2] for row in rows[1:]] == ["bank", "TOTAL"] and rows[-1][8] == "0.05"
    client.post(reverse("console:project-switch"), {"project": "bank"})  # the switcher's project is the default
    assert "<strong>0.05 EUR</strong>" in client.get(reverse("console:costs"), {"month": "2026-03"}).content.decode()


def test_a_member_sees_only_their_projects_costs(client, developer, costs):
    client.force_login(developer)

    html = client.get(reverse("console:costs"), {"month": "2026-03"}).content.decode()

    assert "<strong>0.25 EUR</strong>" in html and "bank" not in html
    assert client.get(reverse("console:costs"), {"month": "2026-03", "project": "bank"}).status_code == 400


@pytest.mark.parametrize("month", ["2026-13", "march"])
def test_a_bad_month_is_a_400_next_to_the_field(client, finance_user, month):
    client.force_login(finance_user)

    for name in ("console:costs", "console:costs-csv"):
        response = client.get(reverse(name), {"month": month})
        assert response.status_code == 400 and "Enter a month as YYYY-MM." in field_group(response.content.decode(), "month")


def test_usage_without_prices_is_explained_not_a_500(client, finance_user, project):
    UsageSampleFactory(application=ApplicationFactory(project=project), environment=EnvironmentFactory(name="prod"))
    billing.cost_records_compute(day=date(2026, 3, 10))
    client.force_login(finance_user)

    response = client.get(reverse("console:costs"), {"month": "2026-03"})

    assert response.status_code == 400 and "No price book was in force" in response.content.decode()


def test_the_current_month_is_the_default_and_an_empty_month_says_so(client, finance_user):
    client.force_login(finance_user)

    html = client.get(reverse("console:costs")).content.decode()

    assert "No costs to chart." in html and "<strong>0.00" in html
