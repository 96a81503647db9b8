"""The console in a real browser (Chromium via Playwright) against a live server, a real Celery worker and the sandbox cluster.

A developer files a release to prod, which needs two approvals; approver 1
signs off in the console and approver 2 in the admin; the timeline follows
the release to ``succeeded``; the developer rolls it back; finance downloads
the month's costs as CSV.
"""
import csv
import io

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone
from playwright.sync_api import expect

from billing import services as billing
from deployments.models import Environment
from tests.billing.factories import PriceBookFactory
from tests.deployments.factories import ApplicationFactory, MembershipFactory, UserFactory
from tests.workflows.factories import PINNED, file_release, wait_final
from workflows import services
from workflows.models import Release

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration, pytest.mark.usefixtures("quick_pipeline")]
PASSWORD = "correct horse battery staple"  # the UserFactory's
FINISHED = 60_000  # ms: how long the browser may wait for the pipeline to finish


@pytest.fixture
def world(project, sandbox_cluster, worker, developer, settings):
    approvers = [MembershipFactory(project=project, role="approver", user=UserFactory(username=f"approver{n}")).user
                 for n in (1, 2)]
    approvers[1].is_staff = True  # signs off in the admin
    approvers[1].save()
    approvers[1].user_permissions.add(Permission.objects.get(codename="view_release", content_type__app_label="workflows"))
    finance = UserFactory(username="finance", finance=True)
    prod = Environment.objects.create(name="prod", cluster=sandbox_cluster, required_approvals=2, rollout_deadline_seconds=10)
    app = ApplicationFactory(project=project, name="api", image="registry.example.com/shop/api", replicas=1)
    # 1.0 already runs in prod, so 2.0 can be rolled back to it
    first = file_release(actor=developer, application=app, environment=prod, version="1.0")
    for approver in approvers:
        services.approval_grant(release_id=first.id, actor=approver)
    assert wait_final(first, timeout=60).state == "succeeded", first.failure_reason
    # what runs, metered from the cluster (one sample standing for a day, so the report shows cents)
    PriceBookFactory(environment=prod, valid_from=timezone.now() - timezone.timedelta(days=40))
    settings.SLIPWAY_METERING_INTERVAL_SECONDS = 24 * 3600
    billing.usage_meter()
    billing.cost_records_compute(day=timezone.localdate())
    return approvers, finance, prod, app


def sign_in(page, base: str, username: str) -> None:
    page.goto(f"{base}/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text(f"Signed in as {username}")).to_be_visible()


def test_file_approve_watch_roll_back_and_download_costs(live_server, browser_pages, world, developer):
    approvers, finance, prod, app = world
    base = live_server.url

    # a developer files 2.0 to prod through the form
    dev_page = browser_pages()
    sign_in(dev_page, base, "dev")
    dev_page.get_by_role("link", name="New release").first.click()
    dev_page.get_by_label("Application").select_option(label="shop/api (prebuilt image)")
    expect(dev_page.locator("#artifact-hint")).to_contain_text("shop/api runs a prebuilt image")  # htmx re-read it
    dev_page.get_by_label("Environment:", exact=True).select_option("prod")
    dev_page.get_by_label("Version").fill("2.0")
    dev_page.get_by_label("Prebuilt image").fill(PINNED.format(version="2.0"))
    dev_page.get_by_label("Environment variables").fill("FEATURE_X=on")
    dev_page.get_by_role("button", name="File release").click()
    expect(dev_page.get_by_role("heading", level=1)).to_contain_text("shop/api 2.0 → prod")
    status = dev_page.locator(".release-status")
    expect(status).to_contain_text("requested")
    expect(status).to_contain_text("Waiting for approval: 0 of 2 given.")
    release = Release.objects.get(version="2.0")

    # approver 1 signs off in the console's queue, after looking at the diff
    first_approver = browser_pages()
    sign_in(first_approver, base, "approver1")
    first_approver.get_by_role("link", name="Approvals").click()
    entry = first_approver.get_by_role("article").filter(has_text="shop/api 2.0 → prod")
    entry.get_by_text("What changes").click()
    expect(entry.locator(".config-changes")).to_contain_text("FEATURE_X")
    # one replica of 100m and 128Mi runs and will run: 730 h × (0.1 × 0.04 + 0.125 × 0.005) EUR
    expect(entry).to_contain_text("Monthly cost 3.38 → 3.38 EUR (change 0.00)")
    entry.get_by_label("Comment").fill("diff looks right")
    entry.get_by_role("button", name="Approve").click()
    expect(first_approver.get_by_role("status")).to_contain_text(f"You approved release #{release.id}")
    expect(first_approver.get_by_text("Nothing awaits your decision")).to_be_visible()

    # approver 2 signs off in the admin
    second_approver = browser_pages()
    second_approver.goto(f"{base}/admin/workflows/release/{release.id}/change/")
    second_approver.get_by_label("Username").fill("approver2")
    second_approver.get_by_label("Password").fill(PASSWORD)
    second_approver.get_by_role("button", name="Log in").click()
    second_approver.get_by_role("button", name="Approve").click()
    expect(second_approver.locator(".messagelist")).to_contain_text("Approval recorded")

    # the developer's page follows the release to succeeded without a reload
    expect(status).to_contain_text("succeeded", timeout=FINISHED)
    steps = dev_page.locator(".steps")
    for step in ("Build", "Deploy", "Verify"):
        expect(steps).to_contain_text(step)
    expect(dev_page.locator(".audit")).to_contain_text("user:approver1")

    # and rolls it back, after confirming
    dev_page.get_by_role("link", name="Roll back…").click()
    expect(dev_page.get_by_role("heading", level=1)).to_have_text(f"Roll back release #{release.id}?")
    dev_page.get_by_label("Description").fill("2.0 breaks checkout")
    dev_page.get_by_role("button", name="Yes, roll back").click()
    expect(dev_page.get_by_role("status").first).to_contain_text("Rollback filed as release")
    rollback = Release.objects.get(rollback_of=release)
    for approver in approvers:
        services.approval_grant(release_id=rollback.id, actor=approver)
    expect(dev_page.locator(".release-status")).to_contain_text("succeeded", timeout=FINISHED)
    dev_page.get_by_role("link", name="Applications").click()
    expect(dev_page.locator("tr", has_text="revision #3")).to_contain_text("1.0")

    # finance downloads the month's costs
    finance_page = browser_pages()
    sign_in(finance_page, base, "finance")
    finance_page.get_by_role("link", name="Costs").click()
    expect(finance_page.get_by_role("img", name="Cost per project")).to_be_visible()
    with finance_page.expect_download() as download:
        finance_page.get_by_role("link", name="Download CSV").click()
    rows = list(csv.DictReader(io.StringIO(download.value.path().read_text())))
    assert download.value.suggested_filename == f"slipway-costs-{timezone.localdate():%Y-%m}.csv"
    assert [row["project"] for row in rows] == ["shop", "TOTAL"] and rows[0]["application"] == "api"
    assert rows[0]["amount"] == rows[1]["amount"] != "0.00"
