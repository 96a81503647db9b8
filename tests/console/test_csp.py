"""The Content-Security-Policy: sent on console and admin pages, and the console still works under it in Chromium.

Chromium reports every refused script, style or connection in the page's console ("Refused to ... because
it violates the following Content Security Policy directive"); none may appear while htmx polls a release
timeline, re-reads the release form, and the admin is used.
"""
import re

import pytest
from django.contrib.auth.models import Permission
from playwright.sync_api import expect

from deployments.models import Environment
from tests.deployments.factories import ApplicationFactory, ClusterFactory, MembershipFactory, UserFactory
from tests.workflows.factories import file_release

PASSWORD = "correct horse battery staple"
INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>")


@pytest.fixture
def release(project, developer):
    prod = Environment.objects.create(name="prod", cluster=ClusterFactory(), required_approvals=1)
    app = ApplicationFactory(project=project, name="api", image="registry.example.com/shop/api")
    return file_release(actor=developer, application=app, environment=prod)


@pytest.mark.django_db
def test_console_and_admin_pages_send_a_strict_policy_and_hold_no_inline_script(client, release, staff):
    client.force_login(staff)
    for url in ("/", "/releases/", f"/releases/{release.id}/", "/releases/new/", "/costs/", "/tokens/",
                "/notifications/", "/notifications/preferences/", "/projects/shop/notifications/",
                "/admin/", f"/admin/workflows/release/{release.id}/change/", "/admin/axes/accessattempt/",
                "/admin/workflows/apitoken/"):
        response = client.get(url)
        assert response.status_code == 200, url
        policy = response["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "unsafe-eval" not in policy, url
        assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
        assert not INLINE_SCRIPT.search(response.content), f"{url} holds an inline script"
        assert b' style="' not in response.content, f"{url} holds an inline style"
    login = client.get("/login/")
    assert "Content-Security-Policy" in login


@pytest.mark.django_db(transaction=True)
@pytest.mark.integration
def test_the_console_works_under_the_policy_in_chromium(live_server, browser_pages, release, developer):
    approver = MembershipFactory(project=release.application.project, role="approver",
                                 user=UserFactory(username="approver", is_staff=True)).user
    approver.user_permissions.add(Permission.objects.get(codename="view_release", content_type__app_label="workflows"))
    violations: list[str] = []

    def watch(page):
        page.on("console", lambda message: violations.append(f"{page.url}: {message.text}")
                if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text else None)
        return page

    base = live_server.url
    page = watch(browser_pages())
    page.goto(f"{base}/login/")
    page.get_by_label("Username").fill("dev")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("Signed in as dev")).to_be_visible()

    # htmx polls the timeline of a release in flight
    with page.expect_response(lambda response: "/timeline/" in response.url, timeout=15_000):
        page.goto(f"{base}/releases/{release.id}/")
    # and re-reads the release form when the application changes
    page.goto(f"{base}/releases/new/")
    page.get_by_label("Application").select_option(label="shop/api (prebuilt image)")
    expect(page.locator("#artifact-hint")).to_contain_text("shop/api runs a prebuilt image")
    page.goto(f"{base}/tokens/")
    page.get_by_label("Name").fill("from the browser")
    page.get_by_role("button", name="Create token").click()
    expect(page.locator("#issued-token")).to_be_visible()

    # an approver opens the review in the queue (htmx on toggle) and the release in the admin
    reviewer = watch(browser_pages())
    reviewer.goto(f"{base}/admin/workflows/release/{release.id}/change/")
    reviewer.get_by_label("Username").fill("approver")
    reviewer.get_by_label("Password").fill(PASSWORD)
    reviewer.get_by_role("button", name="Log in").click()
    expect(reviewer.get_by_role("button", name="Approve")).to_be_visible()
    reviewer.goto(f"{base}/approvals/")  # the admin's sign-in is the console's too
    entry = reviewer.get_by_role("article").filter(has_text="shop/api 1.0 → prod")
    entry.get_by_text("What changes").click()
    expect(entry.locator(".review-slot")).not_to_be_empty()

    assert violations == []
