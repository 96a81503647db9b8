"""Every change path writes an audit event: a walk over every admin and every write endpoint.

The walk is data-driven. The admins come from ``admin.site._registry`` (add, change and
delete, every action, every extra view of ``get_urls``, every inline) and the endpoints from
the OpenAPI schema (every POST/PUT/PATCH/DELETE). Each way to change something needs a case
below that makes a valid change through it and then finds the AuditEvent of that change;
a path added later without a case fails here, and so does a case whose change leaves no
event. The allow-lists name the few paths that change no governed state, and say why.
"""
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import models
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator

from billing.models import Budget
from deployments import services as deployments
from deployments.manifests import ReleaseConfig
from deployments.models import BaseImage, Environment, Revision
from dns import services as dns
from dns.models import Record
from tests.admin_forms import FormValues, form_errors, page_form, submit, with_changes
from tests.billing.factories import BudgetFactory, PriceBookFactory
from tests.deployments.factories import (
    ApplicationFactory,
    ClusterFactory,
    EnvironmentFactory,
    MembershipFactory,
    ProjectFactory,
    UserFactory,
    base_image,
    deploy_spec,
    middleware_instance,
)
from tests.dns.factories import EnvironmentZoneFactory, ZoneFactory
from tests.workflows.factories import PINNED, file_release
from workflows.choices import ReleaseState
from workflows.models import ApiToken, AuditEvent, CiToken, FreezeWindow, NotificationChannel, ProjectWebhook, Release
from workflows.services import ci_tokens, signin

pytestmark = pytest.mark.django_db
User = get_user_model()
PASSWORD = "walk-the-admin-7Qx!"


# -- the admin cases ---------------------------------------------------------------------
@dataclass
class AdminCase:
    """How to change one model through its admin: ``make`` a saved row, the form values that
    ``edit`` it (a change the row did not have), and those that add a ``new`` one."""

    make: Callable[[], models.Model]
    edit: Callable[[models.Model], dict[str, Any]]
    new: Callable[[], dict[str, Any]]


def freeze_window() -> FreezeWindow:
    return FreezeWindow.objects.create(environment=EnvironmentFactory(), kind="weekly", reason="quarter end",
                                       start_weekday=4, start_time="18:00", end_weekday=0, end_time="06:00")


def webhook() -> ProjectWebhook:
    return ProjectWebhook.objects.create(project=ProjectFactory(), url="https://hooks.example.com/a", secret="s1")


def ci_token(project=None) -> CiToken:
    project = project or ProjectFactory()
    owner = MembershipFactory(project=project, role="maintainer").user
    return ci_tokens.ci_token_create(actor=owner, project=project, name="ci")[0]


ADMIN_CASES: dict[type[models.Model], AdminCase] = {
    ProjectFactory._meta.model: AdminCase(
        make=ProjectFactory, edit=lambda p: {"name": "Renamed"}, new=lambda: {"slug": "walked", "name": "Walked"}),
    MembershipFactory._meta.model: AdminCase(
        make=MembershipFactory, edit=lambda m: {"role": "maintainer"},
        new=lambda: {"project": ProjectFactory().pk, "user": UserFactory().pk, "role": "approver"}),
    ClusterFactory._meta.model: AdminCase(
        make=ClusterFactory, edit=lambda c: {"ingress_address": "10.9.9.9"},
        new=lambda: {"name": "walked", "api_server": "https://kube.example.com:6443", "auth_method": "token",
                     "token": "walked-token", "ingress_address": "10.0.0.1", "labels": "{}"}),
    Environment: AdminCase(
        make=EnvironmentFactory, edit=lambda e: {"required_approvals": 3},
        new=lambda: {"name": "walked", "cluster": ClusterFactory().pk, "required_approvals": 2}),
    BaseImage: AdminCase(
        make=lambda: base_image("walk-base"), edit=lambda b: {"display_name": "Renamed"},
        new=lambda: {"name": "walked", "display_name": "Walked", "image": "slipway/base/walked:1",
                     "app_path": "/app", "config_path": "/etc/app", "default_port": 8080}),
    ApplicationFactory._meta.model: AdminCase(
        make=ApplicationFactory, edit=lambda a: {"replicas": 3},
        new=lambda: {"project": ProjectFactory().pk, "name": "walked", "image": "registry.example.com/x/walked"}),
    User: AdminCase(
        make=UserFactory,
        edit=lambda u: {"is_superuser": "on", "is_staff": "on",
                        "groups": [Group.objects.get_or_create(name="finance")[0].pk]},
        new=lambda: {"username": "walked", "password1": PASSWORD, "password2": PASSWORD, "usable_password": "true"}),
    Group: AdminCase(
        make=lambda: Group.objects.create(name=f"walk-group-{Group.objects.count()}"),
        edit=lambda g: {"permissions": [Permission.objects.get(codename="view_release").pk]},
        new=lambda: {"name": "walked"}),
    FreezeWindow: AdminCase(
        make=freeze_window, edit=lambda w: {"reason": "changed"},
        new=lambda: {"environment": EnvironmentFactory().pk, "kind": "weekly", "start_weekday": 4,
                     "start_time": "18:00", "end_weekday": 0, "end_time": "06:00", "timezone": "UTC"}),
    ProjectWebhook: AdminCase(
        make=webhook, edit=lambda w: {"url": "https://hooks.example.com/b"},
        new=lambda: {"project": ProjectFactory().pk, "url": "https://hooks.example.com/c", "secret": "s2",
                     "active": "on"}),
    CiToken: AdminCase(  # nothing of a saved token is editable (its page has no fields): revoked by the action
        make=ci_token, edit=lambda t: {},
        new=lambda: {"project": ProjectFactory().pk, "name": "ci", "expires_in_days": 30}),
    ZoneFactory._meta.model: AdminCase(
        make=ZoneFactory, edit=lambda z: {"default_ttl": 120},
        new=lambda: {"name": "walked.example.", "provider": "local", "default_ttl": 60}),
    EnvironmentZoneFactory._meta.model: AdminCase(
        make=EnvironmentZoneFactory, edit=lambda z: {"name_pattern": "{application}.{environment}.{zone}"},
        new=lambda: {"environment": EnvironmentFactory().pk, "zone": ZoneFactory().pk,
                     "name_pattern": "{application}.{project}.{zone}"}),
    PriceBookFactory._meta.model: AdminCase(
        make=PriceBookFactory, edit=lambda b: {"cpu_core_hour": "0.05"},
        new=lambda: {"name": "walked", "environment": EnvironmentFactory().pk, "currency": "EUR",
                     "valid_from_0": "2026-01-01", "valid_from_1": "00:00:00", "cpu_core_hour": "0.04",
                     "memory_gib_hour": "0.005", "storage_gib_hour": "0", "ingress_hour": "0"}),
    Budget: AdminCase(
        make=lambda: BudgetFactory(project=ProjectFactory()), edit=lambda b: {"amount": "250.00"},
        new=lambda: {"project": ProjectFactory().pk, "month": "2026-04-01", "amount": "100.00", "currency": "EUR"}),
}


def release_requested() -> Release:
    project = ProjectFactory()
    developer = MembershipFactory(project=project, role="developer").user
    app = ApplicationFactory(project=project)
    return file_release(actor=developer, application=app, environment=EnvironmentFactory(required_approvals=1))


def release_failed() -> Release:
    release = release_requested()
    Release.objects.filter(id=release.id).update(state=ReleaseState.FAILED, failed_step="build",
                                                 approved_at=timezone.now(), started_at=timezone.now())
    return release


def record_out_of_date() -> Record:
    environment = EnvironmentFactory()
    EnvironmentZoneFactory(environment=environment, zone=ZoneFactory(name="walk.local."))
    app = ApplicationFactory(exposed=True)
    record = dns.dns_publish(application_id=app.id, environment_id=environment.id)
    Record.objects.filter(pk=record.pk).update(content="10.1.1.1")  # DNS drifted: publishing again repairs it
    return record


@dataclass
class ViewCase:
    """An admin action or extra view: ``make`` what it acts on, then post ``values`` (from the object)."""

    make: Callable[[], models.Model]
    values: Callable[[models.Model], dict[str, Any]] = lambda obj: {}
    form_id: str = ""  # when set, the view's own form is read first (as a browser would) and ``values`` overlay it
    target: str = ""  # the audited model, when it is not the one acted on


def failed_sign_ins() -> AccessAttempt:
    return AccessAttempt.objects.create(username="walk-locked", ip_address="10.0.0.9", user_agent="walk",
                                        path_info="/login/", failures_since_start=9, get_data="", post_data="",
                                        http_accept="*/*")


def api_token(user=None) -> ApiToken:
    return signin.api_token_issue(user=user or UserFactory(), name="laptop")[0]


ACTION_CASES: dict[tuple[type[models.Model], str], ViewCase] = {
    (Record, "publish_again"): ViewCase(make=record_out_of_date),
    (CiToken, "revoke"): ViewCase(make=ci_token),
    (AccessAttempt, "unlock"): ViewCase(make=failed_sign_ins),
    (ApiToken, "revoke"): ViewCase(make=api_token),
}
# Actions that only read: they answer with a file and change nothing.
READ_ONLY_ACTIONS = {
    ("dns.zone", "download_zone_file"): "downloads the zone file",
    ("billing.costrecord", "export_csv"): "downloads cost records as CSV",
}
VIEW_CASES: dict[str, ViewCase] = {
    "auth_user_password_change": ViewCase(
        make=UserFactory, form_id="user_form",
        values=lambda user: {"password1": PASSWORD, "password2": PASSWORD, "set-password": "Change password"}),
    "workflows_release_approve": ViewCase(make=release_requested, values=lambda r: {"comment": "fine"}),
    "workflows_release_reject": ViewCase(make=release_requested, values=lambda r: {"comment": "no"}),
    "workflows_release_cancel": ViewCase(make=release_requested),
    "workflows_release_retry": ViewCase(make=release_failed),
}
STANDARD_VIEWS = ("changelist", "add", "history", "delete", "change")


def superuser_request(user) -> Any:
    request = RequestFactory().get("/admin/")
    request.user = user
    return request


def editable_fields(model_admin: admin.ModelAdmin, request, obj: models.Model) -> list[str]:
    """The fields a change page lets you edit (none: the page only shows the row)."""
    return list(model_admin.get_form(request, obj, change=True)(instance=obj).fields)


def new_events(mark: int, label: str, pk: Any = None) -> list[AuditEvent]:
    events = AuditEvent.objects.filter(id__gt=mark, target_type=label)
    return list(events.filter(target_id=str(pk)) if pk is not None else events)


def last_event_id() -> int:
    return AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


@pytest.fixture
def superuser_client(client):
    user = UserFactory(username="walker", is_staff=True, is_superuser=True)
    client.force_login(user)
    client.walker = user
    return client


@pytest.mark.parametrize("model", list(admin.site._registry), ids=lambda model: model._meta.label)
def test_every_change_through_the_admin_is_audited(model, superuser_client):
    walk_admin(superuser_client, admin.site._registry[model])


def walk_admin(client, model_admin: admin.ModelAdmin) -> None:
    """Change ``model_admin``'s model every way its admin allows; fail on the first change without an event."""
    model, request = model_admin.model, superuser_request(client.walker)
    opts, label = model._meta, model._meta.label_lower
    url = f"admin:{opts.app_label}_{opts.model_name}"
    form_id = f"{opts.model_name}_form"
    writes = [verb for verb, may in (("add", model_admin.has_add_permission(request)),
                                     ("change", model_admin.has_change_permission(request)),
                                     ("delete", model_admin.has_delete_permission(request))) if may]
    if writes:
        assert model in ADMIN_CASES, f"{opts.label}: its admin can {'/'.join(writes)}; add an AdminCase"
        case = ADMIN_CASES[model]

    if "add" in writes:
        mark = last_event_id()
        submit(client, reverse(f"{url}_add"), form_id, case.new())
        assert new_events(mark, label), f"adding a {opts.verbose_name} in the admin left no audit event"
    if "change" in writes and editable_fields(model_admin, request, case.make()):
        obj, mark = case.make(), last_event_id()
        submit(client, reverse(f"{url}_change", args=[obj.pk]), form_id, case.edit(obj))
        assert new_events(mark, label, obj.pk), f"changing a {opts.verbose_name} in the admin left no audit event"
    if "delete" in writes:
        obj, mark = case.make(), last_event_id()
        response = client.post(reverse(f"{url}_delete", args=[obj.pk]), {"post": "yes"})
        assert response.status_code == 302 and not model.objects.filter(pk=obj.pk).exists(), form_errors(response)
        assert new_events(mark, label, obj.pk), f"deleting a {opts.verbose_name} in the admin left no audit event"

    for name in model_admin.get_actions(request):
        if name == "delete_selected":
            obj, mark = case.make(), last_event_id()
            response = client.post(reverse(f"{url}_changelist"),
                                   {"action": name, "_selected_action": [obj.pk], "post": "yes"})
            assert response.status_code == 302 and not model.objects.filter(pk=obj.pk).exists(), form_errors(response)
            assert new_events(mark, label, obj.pk), f"'delete selected' on {opts.verbose_name_plural} left no event"
            continue
        if (label, name) in READ_ONLY_ACTIONS:
            continue
        assert (model, name) in ACTION_CASES, f"{opts.label}: action {name!r} has no case (or read-only entry)"
        action = ACTION_CASES[(model, name)]
        obj, mark = action.make(), last_event_id()
        response = client.post(reverse(f"{url}_changelist"), {"action": name, "_selected_action": [obj.pk]})
        assert response.status_code in (200, 302), form_errors(response)
        assert new_events(mark, action.target or label), f"{opts.label}: action {name!r} left no audit event"

    standard = {f"{opts.app_label}_{opts.model_name}_{view}" for view in STANDARD_VIEWS} | {None}
    for pattern in model_admin.get_urls():
        if pattern.name in standard:
            continue
        assert pattern.name in VIEW_CASES, f"{opts.label}: admin view {pattern.name!r} has no case"
        view = VIEW_CASES[pattern.name]
        obj = view.make()
        view_url = reverse(f"admin:{pattern.name}", args=[obj.pk])
        values = page_form(client, view_url, view.form_id) if view.form_id else {}
        mark = last_event_id()
        response = client.post(view_url, with_changes(values, view.values(obj)))
        assert response.status_code == 302, form_errors(response)
        assert new_events(mark, view.target or label, obj.pk), f"admin view {pattern.name!r} left no audit event"

    for inline in model_admin.get_inline_instances(request):
        formset = inline.get_formset(request)
        editable = [name for name in formset.form.base_fields if name not in (inline.fk_name or "",)]
        writable = (inline.has_add_permission(request, None)
                    or (inline.can_delete and inline.has_delete_permission(request))
                    or (inline.has_change_permission(request) and editable))
        assert not writable, (
            f"{opts.label}: inline {type(inline).__name__} can write {inline.model._meta.verbose_name_plural}, "
            "and inline saves are not audited: make it read-only (edits on the model's own admin page) "
            "or audit save_formset and add a case here"
        )


# The admin site's own views (not a model's): which change something, and which only read.
SITE_VIEW_CASES = {
    "password_change": {"old_password": "correct horse battery staple", "new_password1": PASSWORD,
                        "new_password2": PASSWORD},
}
READ_ONLY_SITE_VIEWS = {
    "index": "lists the models", "app_list": "lists an app's models", "jsi18n": "serves translations",
    "autocomplete": "searches rows for a select box", "view_on_site": "redirects to an object's page",
    "password_change_done": "says the password was changed",
    "login": "starts a session: sessions are not governed state (failed sign-ins are the lockout's to record)",
    "logout": "ends a session",
}


def test_every_change_through_the_admin_site_itself_is_audited(superuser_client):
    for pattern in admin.site.get_urls():
        name = getattr(pattern, "name", None)
        if name is None or name in READ_ONLY_SITE_VIEWS:
            continue
        assert name in SITE_VIEW_CASES, f"admin site view {name!r} has no case (or read-only entry)"
        mark = last_event_id()
        response = superuser_client.post(reverse(f"admin:{name}"), SITE_VIEW_CASES[name])
        assert response.status_code == 302, form_errors(response)
        assert new_events(mark, "auth.user", superuser_client.walker.pk), f"admin site view {name!r} left no event"


@pytest.mark.urls("tests.workflows.unaudited_admin_urls")
def test_the_walk_fails_an_admin_that_changes_without_an_event(superuser_client):
    from tests.workflows.unaudited_admin_urls import site

    with pytest.raises(AssertionError, match="adding a zone in the admin left no audit event"):
        walk_admin(superuser_client, site._registry[ZoneFactory._meta.model])


# -- the API cases -----------------------------------------------------------------------
def schema_write_operations() -> list[tuple[str, str, str]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return [(method.upper(), path, op["operationId"]) for path, ops in schema["paths"].items()
            for method, op in ops.items() if method in ("post", "put", "patch", "delete")]


# Operations that change no governed state (none today: even signing in issues an audited API token).
READ_ONLY_OPERATIONS: dict[str, str] = {}


@dataclass
class World:
    shop: Any
    roles: dict[str, Any]
    dev: Environment
    app: Any
    registry: Any
    headers: dict[str, str] = field(default_factory=dict)  # what a case's prepare() says to send


@dataclass
class ApiCase:
    """``prepare(world)`` makes what the call acts on and returns (path, body); ``role`` makes the call."""

    role: str
    prepare: Callable[[World], tuple[str, Any]]
    target: str  # the audited model
    multipart: bool = False


def running(world: World) -> Any:
    """An application deployed and rolled out in dev, on the sandbox cluster."""
    app = ApplicationFactory(project=world.shop, name="runner", replicas=1)
    revision = deployments.deployment_apply(application_id=app.id, environment_id=world.dev.id, image=PINNED.format(
        version="1.0"), config=ReleaseConfig(env={}, files={}), release="1", spec=deploy_spec(app, world.dev))
    deployments.deployment_verify(revision_id=revision.id, poll_interval=0.05)
    return app


def filed(world: World, **fields) -> Release:
    return file_release(actor=world.roles["developer"], application=world.app, environment=world.dev, **fields)


def succeeded_with_predecessor(world: World) -> Release:
    """A succeeded release that replaced a live revision (what a rollback returns to)."""
    before = Revision.objects.create(application=world.app, environment=world.dev, number=1,
                                     image=PINNED.format(version="0.9"), manifests=[], manifests_digest="a" * 64)
    release = filed(world)
    after = Revision.objects.create(application=world.app, environment=world.dev, number=2, release=str(release.id),
                                    image=release.image, manifests=[], manifests_digest="b" * 64)
    Release.objects.filter(id=release.id).update(state=ReleaseState.SUCCEEDED, revision=after, replaced=before)
    return release


def failed(world: World) -> Release:
    release = filed(world)
    Release.objects.filter(id=release.id).update(state=ReleaseState.FAILED, failed_step="build",
                                                 approved_at=timezone.now(), started_at=timezone.now())
    return release


def get_body(world: World, as_role: str, path: str, **changes) -> dict[str, Any]:
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(world.roles[as_role])
    response = client.get(path)
    assert response.status_code == 200, response.content
    return {**response.json(), **changes}


def app_path(world):
    return f"/api/v1/applications/{ApplicationFactory(project=world.shop).id}/"


def cluster_body(name: str) -> dict[str, Any]:
    return {"name": name, "api_server": "https://kube.example.com:6443", "auth_method": "token",
            "token": "walk-token", "ingress_address": "10.0.0.1"}


def budget(world):
    return f"/api/v1/billing/budgets/{BudgetFactory(project=world.shop).id}/"


def price_book(world):
    return f"/api/v1/billing/price-books/{PriceBookFactory().id}/"


def membership(world):
    return f"/api/v1/memberships/{MembershipFactory(project=world.shop).id}/"


def redis_catalog_entry(world: World) -> None:
    """Releases pin image tags to digests when filed: the catalog's image is in a real registry."""
    redis = base_image("redis")
    redis.image = f"{world.registry.host}/base/redis:7.4"
    redis.save()
    world.registry.push_image("base/redis", "7.4")


def middleware_new(world: World) -> tuple[str, Any]:
    redis_catalog_entry(world)
    return "/api/v1/projects/shop/middleware/", {
        "template": "redis", "name": "cache", "environment": "dev", "variables": {"maxmemory_mb": 128}}


def middleware_again(world: World) -> tuple[str, Any]:
    redis_catalog_entry(world)
    instance = middleware_instance(world.shop, name="cache")
    type(instance.application).objects.filter(pk=instance.application_id).update(
        image=f"{world.registry.host}/base/redis")
    return f"/api/v1/projects/shop/middleware/{instance.application.name}/release/", {"environment": "dev"}


def channel(world: World) -> str:
    robot = NotificationChannel.objects.create(project=world.shop, name="walk-robot", kind="slack", events=["failed"],
                                               url="https://hooks.slack.example/services/walk")
    return f"/api/v1/projects/shop/notification-channels/{robot.id}/"


def ci_hook(world: World) -> tuple[str, Any]:
    _, token = ci_tokens.ci_token_create(actor=world.roles["maintainer"], project=world.shop, name="ci")
    world.headers["Authorization"] = f"Bearer {token}"
    return "/api/v1/hooks/ci/shop/", {"application": world.app.name, "environment": "dev", "version": "1.0",
                                      "image": PINNED.format(version="1.0")}


API_CASES: dict[str, ApiCase] = {
    "v1_applications_create": ApiCase("developer", lambda w: ("/api/v1/applications/", {
        "project": "shop", "name": "walked", "image": "registry.example.com/shop/walked"}), "deployments.application"),
    "v1_applications_update": ApiCase("developer", lambda w: (
        p := app_path(w), get_body(w, "developer", p, replicas=2, allowed_callers=[], uses_middleware=[])),
        "deployments.application"),
    "v1_applications_partial_update": ApiCase("developer", lambda w: (app_path(w), {"replicas": 2}),
                                              "deployments.application"),
    "v1_applications_destroy": ApiCase("maintainer", lambda w: (app_path(w), None), "deployments.application"),
    "v1_applications_decommission_create": ApiCase("maintainer", lambda w: (
        f"/api/v1/applications/{running(w).id}/decommission/", {"environment": "dev"}), "deployments.application"),
    "v1_applications_scale_create": ApiCase("developer", lambda w: (
        f"/api/v1/applications/{running(w).id}/scale/", {"environment": "dev", "replicas": 2}),
        "deployments.application"),
    "v1_base_images_create": ApiCase("admin", lambda w: ("/api/v1/base-images/", {
        "name": "walked", "display_name": "Walked", "image": "slipway/base/walked:1", "app_path": "/app",
        "config_path": "/etc/app", "default_port": 8080}), "deployments.baseimage"),
    "v1_base_images_update": ApiCase("admin", lambda w: (
        p := f"/api/v1/base-images/{base_image('walk-base').name}/", get_body(w, "admin", p, display_name="Renamed")),
        "deployments.baseimage"),
    "v1_base_images_partial_update": ApiCase("admin", lambda w: (
        f"/api/v1/base-images/{base_image('walk-base').name}/", {"display_name": "Renamed"}), "deployments.baseimage"),
    "v1_base_images_destroy": ApiCase("admin", lambda w: (f"/api/v1/base-images/{base_image('walk-base').name}/",
                                                          None), "deployments.baseimage"),
    "v1_billing_budgets_create": ApiCase("finance", lambda w: ("/api/v1/billing/budgets/", {
        "project": "shop", "month": "2026-04", "amount": "100.00", "currency": "EUR"}), "billing.budget"),
    "v1_billing_budgets_update": ApiCase("finance", lambda w: (
        p := budget(w), get_body(w, "finance", p, amount="250.00")), "billing.budget"),
    "v1_billing_budgets_partial_update": ApiCase("finance", lambda w: (budget(w), {"amount": "250.00"}),
                                                 "billing.budget"),
    "v1_billing_budgets_destroy": ApiCase("finance", lambda w: (budget(w), None), "billing.budget"),
    "v1_billing_price_books_create": ApiCase("finance", lambda w: ("/api/v1/billing/price-books/", {
        "name": "walked", "environment": "dev", "valid_from": "2026-01-01T00:00:00Z", "currency": "EUR",
        "cpu_core_hour": "0.04", "memory_gib_hour": "0.005"}), "billing.pricebook"),
    "v1_billing_price_books_update": ApiCase("finance", lambda w: (
        p := price_book(w), get_body(w, "finance", p, cpu_core_hour="0.05")), "billing.pricebook"),
    "v1_billing_price_books_partial_update": ApiCase("finance", lambda w: (price_book(w), {"cpu_core_hour": "0.05"}),
                                                     "billing.pricebook"),
    "v1_billing_price_books_destroy": ApiCase("finance", lambda w: (price_book(w), None), "billing.pricebook"),
    "v1_clusters_create": ApiCase("admin", lambda w: ("/api/v1/clusters/", cluster_body("walked")),
                                  "deployments.cluster"),
    "v1_clusters_update": ApiCase("admin", lambda w: (
        f"/api/v1/clusters/{ClusterFactory(name='walk-c').name}/", cluster_body("walk-c")), "deployments.cluster"),
    "v1_clusters_partial_update": ApiCase("admin", lambda w: (
        f"/api/v1/clusters/{ClusterFactory(name='walk-c').name}/", {"ingress_address": "10.9.9.9"}),
        "deployments.cluster"),
    "v1_clusters_destroy": ApiCase("admin", lambda w: (f"/api/v1/clusters/{ClusterFactory(name='walk-c').name}/",
                                                       None), "deployments.cluster"),
    "v1_dns_zones_create": ApiCase("admin", lambda w: ("/api/v1/dns/zones/", {
        "name": "walked.example.", "provider": "local", "default_ttl": 60}), "dns.zone"),
    "v1_dns_zones_update": ApiCase("admin", lambda w: (
        p := f"/api/v1/dns/zones/{ZoneFactory(name='walk.example.').name}/",
        get_body(w, "admin", p, default_ttl=120)), "dns.zone"),
    "v1_dns_zones_partial_update": ApiCase("admin", lambda w: (
        f"/api/v1/dns/zones/{ZoneFactory(name='walk.example.').name}/", {"default_ttl": 120}), "dns.zone"),
    "v1_dns_zones_destroy": ApiCase("admin", lambda w: (f"/api/v1/dns/zones/{ZoneFactory(name='walk.example.').name}/",
                                                        None), "dns.zone"),
    "v1_environments_create": ApiCase("admin", lambda w: ("/api/v1/environments/", {
        "name": "walked", "cluster": w.dev.cluster.name}), "deployments.environment"),
    "v1_environments_update": ApiCase("admin", lambda w: (
        p := f"/api/v1/environments/{EnvironmentFactory(name='walk-e').name}/",
        get_body(w, "admin", p, required_approvals=3)), "deployments.environment"),
    "v1_environments_partial_update": ApiCase("admin", lambda w: (
        f"/api/v1/environments/{EnvironmentFactory(name='walk-e').name}/", {"required_approvals": 3}),
        "deployments.environment"),
    "v1_environments_destroy": ApiCase("admin", lambda w: (
        f"/api/v1/environments/{EnvironmentFactory(name='walk-e').name}/", None), "deployments.environment"),
    "v1_hooks_ci_create": ApiCase("anonymous", ci_hook, "workflows.release"),
    "v1_auth_token_create": ApiCase("anonymous", lambda w: ("/api/v1/auth/token/", {
        "username": "walk-developer", "password": "correct horse battery staple", "name": "cli"}), "workflows.apitoken"),
    "v1_auth_tokens_create": ApiCase("developer", lambda w: ("/api/v1/auth/tokens/", {"name": "laptop"}),
                                     "workflows.apitoken"),
    "v1_auth_tokens_destroy": ApiCase("developer", lambda w: (
        f"/api/v1/auth/tokens/{api_token(w.roles['developer']).id}/", None), "workflows.apitoken"),
    "v1_projects_ci_tokens_create": ApiCase("maintainer", lambda w: (
        "/api/v1/projects/shop/ci-tokens/", {"name": "jenkins", "expires_in_days": 30}), "workflows.citoken"),
    "v1_projects_ci_tokens_revoke_create": ApiCase("maintainer", lambda w: (
        f"/api/v1/projects/shop/ci-tokens/{ci_token(w.shop).id}/revoke/", {}), "workflows.citoken"),
    "v1_projects_notification_channels_create": ApiCase("maintainer", lambda w: (
        "/api/v1/projects/shop/notification-channels/", {"name": "ops", "kind": "feishu", "secret": "s3cret",
                                                         "url": "https://open.feishu.example/hook/x",
                                                         "events": ["failed"]}), "workflows.notificationchannel"),
    "v1_projects_notification_channels_update": ApiCase("maintainer", lambda w: (channel(w), {
        "name": "walk-robot", "kind": "slack", "events": ["failed", "succeeded"], "active": True}),
        "workflows.notificationchannel"),
    "v1_projects_notification_channels_partial_update": ApiCase("maintainer", lambda w: (
        channel(w), {"events": ["succeeded"]}), "workflows.notificationchannel"),
    "v1_projects_notification_channels_destroy": ApiCase("maintainer", lambda w: (channel(w), None),
                                                         "workflows.notificationchannel"),
    "v1_notifications_preferences_update": ApiCase("developer", lambda w: (
        "/api/v1/notifications/preferences/", {"preferences": {"succeeded": ["email"]}, "slack_id": "U1"}),
        "workflows.notificationprofile"),
    "v1_memberships_create": ApiCase("maintainer", lambda w: ("/api/v1/memberships/", {
        "project": "shop", "user": UserFactory().username, "role": "developer"}), "deployments.projectmembership"),
    "v1_memberships_update": ApiCase("maintainer", lambda w: (
        p := membership(w), get_body(w, "maintainer", p, role="approver")), "deployments.projectmembership"),
    "v1_memberships_partial_update": ApiCase("maintainer", lambda w: (membership(w), {"role": "approver"}),
                                             "deployments.projectmembership"),
    "v1_memberships_destroy": ApiCase("maintainer", lambda w: (membership(w), None), "deployments.projectmembership"),
    "v1_packages_create": ApiCase("developer", lambda w: ("/api/v1/packages/", {
        "project": "shop", "file": SimpleUploadedFile("app.war", b"walk")}), "deployments.package", multipart=True),
    "v1_projects_create": ApiCase("admin", lambda w: ("/api/v1/projects/", {"slug": "walked", "name": "Walked"}),
                                  "deployments.project"),
    "v1_projects_update": ApiCase("maintainer", lambda w: (
        "/api/v1/projects/shop/", get_body(w, "maintainer", "/api/v1/projects/shop/", name="Renamed")),
        "deployments.project"),
    "v1_projects_partial_update": ApiCase("maintainer", lambda w: ("/api/v1/projects/shop/", {"name": "Renamed"}),
                                          "deployments.project"),
    "v1_projects_destroy": ApiCase("admin", lambda w: (f"/api/v1/projects/{ProjectFactory().slug}/", None),
                                   "deployments.project"),
    "v1_projects_middleware_create": ApiCase("developer", middleware_new, "workflows.release"),
    "v1_projects_middleware_release_create": ApiCase("developer", middleware_again, "workflows.release"),
    "v1_releases_create": ApiCase("developer", lambda w: ("/api/v1/releases/", {
        "application": w.app.id, "environment": "dev", "version": "1.0", "image": PINNED.format(version="1.0")}),
        "workflows.release"),
    "v1_releases_approve_create": ApiCase("approver", lambda w: (f"/api/v1/releases/{filed(w).id}/approve/", {}),
                                          "workflows.release"),
    "v1_releases_reject_create": ApiCase("approver", lambda w: (f"/api/v1/releases/{filed(w).id}/reject/", {}),
                                         "workflows.release"),
    "v1_releases_cancel_create": ApiCase("developer", lambda w: (f"/api/v1/releases/{filed(w).id}/cancel/", None),
                                         "workflows.release"),
    "v1_releases_retry_create": ApiCase("developer", lambda w: (f"/api/v1/releases/{failed(w).id}/retry/", None),
                                        "workflows.release"),
    "v1_releases_rollback_create": ApiCase("developer", lambda w: (
        f"/api/v1/releases/{succeeded_with_predecessor(w).id}/rollback/", {}), "workflows.release"),
}
OPERATIONS = schema_write_operations()


@pytest.fixture
def world(sandbox_cluster, registry, settings, tmp_path) -> World:
    settings.SLIPWAY_MEDIA_ROOT = str(tmp_path)
    shop = ProjectFactory(slug="shop")
    roles = {role: MembershipFactory(project=shop, role=role, user=UserFactory(username=f"walk-{role}")).user
             for role in ("developer", "approver", "maintainer")}
    roles |= {"finance": UserFactory(username="walk-finance", finance=True),
              "admin": UserFactory(username="walk-admin", is_staff=True, is_superuser=True)}
    dev = EnvironmentFactory(name="dev", cluster=sandbox_cluster, required_approvals=1, rollout_deadline_seconds=5)
    app = ApplicationFactory(project=shop, name="web", image="registry.example.com/shop/web")
    return World(shop=shop, roles=roles, dev=dev, app=app, registry=registry)


def test_every_write_operation_of_the_schema_has_a_case():
    missing = [f"{method} {path} ({op_id})" for method, path, op_id in OPERATIONS
               if op_id not in API_CASES and op_id not in READ_ONLY_OPERATIONS]
    stale = sorted(set(API_CASES) - {op_id for _, _, op_id in OPERATIONS})
    assert not missing, f"write operations without an audit case: {missing}"
    assert not stale, f"cases for operations the schema no longer has: {stale}"


@pytest.mark.parametrize(("method", "path", "op_id"),
                         [op for op in OPERATIONS if op[2] not in READ_ONLY_OPERATIONS], ids=lambda v: str(v))
def test_every_write_operation_of_the_api_is_audited(method, path, op_id, world, api):
    if op_id not in API_CASES:
        pytest.fail(f"{method} {path} ({op_id}) has no audit case")
    case = API_CASES[op_id]
    url, body = case.prepare(world)
    client = api if case.role == "anonymous" else api.as_user(world.roles[case.role])
    mark = last_event_id()

    call = getattr(client, method.lower())
    kwargs = {"format": "multipart" if case.multipart else "json", **{f"HTTP_{k.upper()}": v for k, v in
                                                                      world.headers.items()}}
    response = call(url, body, **kwargs) if body is not None else call(url, **kwargs)

    assert response.status_code < 300, f"{method} {url} as {case.role} → {response.status_code}: {response.content!r}"
    assert new_events(mark, case.target), f"{method} {path} ({op_id}) changed something and left no audit event"


def test_the_walk_submits_what_a_browser_would():
    # If the walk misread forms, the admin cases would post nonsense and fail for the wrong reason.
    parser = FormValues("x_form")
    parser.feed('<form id="x_form"><input name="a" value="1"><input type="checkbox" name="b">'
                '<input type="checkbox" name="c" checked><select name="d"><option value="1">'
                '<option value="2" selected></select><select name="g"><option value="7"></select>'
                '<textarea name="e">\nhi</textarea><input type="submit" name="s" value="go"></form>'
                '<form id="other"><input name="f" value="no"></form>')
    assert parser.values == {"a": ["1"], "c": ["on"], "d": ["2"], "g": ["7"], "e": ["hi"]}
