"""Running applications in the console: the dashboard, one application's lanes and pods, scaling, pod logs."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from deployments import services as deployments
from deployments.kube import ReplicaFigures
from deployments.models import Application, Environment
from deployments.permissions import application_actions
from deployments.selectors import application_list
from paas_site.errors import ExternalError, NotAllowed, NotFound

from ... import services
from ...selectors import lane_overview, release_list
from ..forms import LogForm, ScaleForm
from .common import page, paginate, perform, projects_and_current

APPLICATIONS_PER_PAGE = 10


def visible_application(request: HttpRequest, application_id: int) -> Application:
    application = application_list(user=request.user).filter(id=application_id).first()
    if application is None:
        raise Http404(f"No application #{application_id} visible to you.")
    return application


def lanes_by_application(applications: list[Application], environments: list[Environment]) -> list[dict]:
    """Per application, one row per environment: what runs there, its replicas as the cluster says, the latest release.

    ``replicas`` is the cluster's ``ReplicaFigures`` (None when nothing runs);
    ``replicas_error`` why the cluster did not say.
    """
    lanes = lane_overview(applications=applications)
    running = [(application, environment) for application in applications for environment in environments
               if (status := lanes.get((application.id, environment.id))) and status.revision]
    figures = deployments.replica_figures(lanes=running)

    def lane(application: Application, environment: Environment) -> dict:
        live = figures.get((application.id, environment.id))
        return {"environment": environment, "status": lanes.get((application.id, environment.id)),
                "replicas": live if isinstance(live, ReplicaFigures) else None,
                "replicas_error": live if isinstance(live, str) else ""}

    return [{"application": application, "lanes": [lane(application, environment) for environment in environments]}
            for application in applications]


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    _, project = projects_and_current(request)
    applications = application_list(user=request.user).order_by("project__slug", "name")
    if project is not None:
        applications = applications.filter(project=project)
    page_obj = paginate(request, applications, APPLICATIONS_PER_PAGE)
    environments = list(Environment.objects.select_related("cluster").order_by("rank", "name"))
    return page(request, "console/dashboard.html", {
        "page_obj": page_obj, "environments": environments,
        "rows": lanes_by_application(list(page_obj.object_list), environments),
    })


@login_required
def application_detail(request: HttpRequest, application_id: int) -> HttpResponse:
    application = visible_application(request, application_id)
    environments = list(Environment.objects.select_related("cluster").order_by("rank", "name"))
    rows = lanes_by_application([application], environments)[0]["lanes"]
    abilities = application_actions(request.user, application)
    for row in rows:
        if row["status"] and row["status"].revision:
            replicas = row["replicas"].desired if row["replicas"] else row["status"].revision.replicas
            row["scale_form"] = ScaleForm(initial={"environment": row["environment"].name, "replicas": replicas})
            if abilities["can_list_pods"]:
                row["pods"], row["pods_error"] = pods_of(request, application, row["environment"])
    releases = release_list(user=request.user).filter(application=application)[:10]
    return page(request, "console/application_detail.html", {
        "application": application, "rows": rows, "releases": releases, **abilities,
    })


def pods_of(request: HttpRequest, application: Application, environment: Environment) -> tuple[list, str]:
    """The application's pods from the cluster, or the reason the cluster did not answer."""
    try:
        return deployments.application_pods(
            actor=request.user, application_id=application.id, environment_id=environment.id
        ), ""
    except ExternalError as exc:
        return [], exc.message


@login_required
@require_POST
def application_scale(request: HttpRequest, application_id: int) -> HttpResponse:
    application = visible_application(request, application_id)
    form = ScaleForm(request.POST)
    if not form.is_valid():
        for field, errors in form.errors.items():
            messages.error(request, f"{field}: {' '.join(errors)}")
        return redirect("console:application-detail", application.id)
    environment, replicas = form.cleaned_data["environment"], form.cleaned_data["replicas"]
    perform(
        request,
        lambda: services.application_scale(application=application, environment=environment, replicas=replicas,
                                           actor=request.user),
        lambda before: f"{application.name} in {environment.name} scaled from {before} to {replicas} replicas.",
    )
    return redirect("console:application-detail", application.id)


@login_required
def pod_logs(request: HttpRequest, application_id: int) -> HttpResponse:
    application = visible_application(request, application_id)
    form = LogForm(request.GET)
    if not form.is_valid():
        return page(request, "console/pod_logs.html", {"application": application, "form": form}, status=400)
    environment, pod = form.cleaned_data["environment"], form.cleaned_data["pod"]
    tail = form.cleaned_data["tail"] or LogForm.base_fields["tail"].initial
    try:
        log = deployments.pod_logs(actor=request.user, application_id=application.id,
                                   environment_id=environment.id, pod=pod, tail=tail)
        error = ""
    except NotAllowed as exc:
        raise PermissionDenied(exc.message) from None
    except NotFound as exc:
        raise Http404(exc.message) from None
    except ExternalError as exc:
        log, error = "", exc.message
    return page(request, "console/pod_logs.html", {
        "application": application, "form": form, "environment": environment, "pod": pod, "log": log, "error": error,
    })
