"""The one answer to "may this actor do X in this project": every door (API, console, admin, commands) and
every service asks here, so they cannot disagree.

- Platform admins (superusers) may do everything.
- Finance (the global ``finance`` group) reads every project and manages budgets; it changes nothing else
  and reads no pod logs (a log is the project's data, not a figure).
- Project members act by role: see ``RULES``. A role in one project grants nothing in another.
- A ``SystemActor`` holds no user rights: components act through services that need no permission.
- Anything else (a str above all) is a ``TypeError``.

Release-level rules (self-approval, the requester cancelling) build on this in ``workflows.permissions``.
"""
from enum import StrEnum

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from paas_site.actors import Actor, SystemActor, actor_check
from paas_site.errors import NotAllowed

from .choices import FINANCE_GROUP, Role
from .models import Project, ProjectMembership

User = AbstractBaseUser | AnonymousUser


class Action(StrEnum):
    VIEW = "view"
    FILE_RELEASE = "file releases"
    CHANGE_RELEASE = "change releases"
    DECIDE = "decide on releases"
    CANCEL = "cancel releases"
    RETRY = "retry releases"
    ROLLBACK = "roll back releases"
    SCALE = "scale applications"
    DECOMMISSION = "decommission applications"
    POD_LIST = "list pods"
    POD_LOGS = "read pod logs"
    EDIT_APPLICATION = "create and change applications"
    DELETE_APPLICATION = "delete applications"
    UPLOAD_PACKAGE = "upload packages"
    MANAGE_MIDDLEWARE = "manage middleware instances"
    MANAGE_MEMBERSHIPS = "manage memberships"
    MANAGE_WEBHOOKS = "manage webhooks"
    MANAGE_CI_TOKENS = "manage CI tokens"
    CHANGE_PROJECT = "change the project"
    MANAGE_BUDGETS = "manage budgets"
    MANAGE_PRICES = "manage price books"
    READ_PACKAGES = "read packages"


MEMBERS = frozenset({Role.DEVELOPER, Role.APPROVER, Role.MAINTAINER})
EDITORS = frozenset({Role.DEVELOPER, Role.MAINTAINER})
APPROVERS = frozenset({Role.APPROVER, Role.MAINTAINER})
MAINTAINERS = frozenset({Role.MAINTAINER})
NOBODY: frozenset[str] = frozenset()

# action → (project roles that may, whether finance may)
RULES: dict[Action, tuple[frozenset[str], bool]] = {
    Action.VIEW: (MEMBERS, True),
    Action.FILE_RELEASE: (EDITORS, False),
    Action.CHANGE_RELEASE: (EDITORS, False),
    Action.DECIDE: (APPROVERS, False),
    Action.CANCEL: (EDITORS, False),
    Action.RETRY: (EDITORS, False),
    Action.ROLLBACK: (EDITORS, False),
    Action.SCALE: (EDITORS, False),
    Action.DECOMMISSION: (MAINTAINERS, False),
    Action.POD_LIST: (MEMBERS, True),
    Action.POD_LOGS: (MEMBERS, False),
    Action.EDIT_APPLICATION: (EDITORS, False),
    Action.DELETE_APPLICATION: (MAINTAINERS, False),
    Action.UPLOAD_PACKAGE: (EDITORS, False),
    Action.MANAGE_MIDDLEWARE: (EDITORS, False),
    Action.MANAGE_MEMBERSHIPS: (MAINTAINERS, False),
    Action.MANAGE_WEBHOOKS: (MAINTAINERS, False),
    Action.MANAGE_CI_TOKENS: (MAINTAINERS, False),
    Action.CHANGE_PROJECT: (MAINTAINERS, False),
    Action.MANAGE_BUDGETS: (NOBODY, True),
    Action.MANAGE_PRICES: (NOBODY, True),
    Action.READ_PACKAGES: (MEMBERS, False),  # a package is the project's code, not a figure
}


# -- who the user is: cached on the user object for one request --------------------------
def user_is_finance(user: User) -> bool:
    if not user.is_authenticated:
        return False
    if not hasattr(user, "_slipway_is_finance"):
        user._slipway_is_finance = user.groups.filter(name=FINANCE_GROUP).exists()
    return user._slipway_is_finance


def user_is_platform_admin(user: User) -> bool:
    return user.is_authenticated and user.is_superuser


def user_reads_all_projects(user: User) -> bool:
    return user.is_authenticated and (user_is_platform_admin(user) or user_is_finance(user))


def project_roles(user: User) -> dict[int, str]:
    """Project id → the user's role there; cached on the user for one request."""
    if not user.is_authenticated:
        return {}
    if not hasattr(user, "_slipway_project_roles"):
        user._slipway_project_roles = dict(
            ProjectMembership.objects.filter(user=user).values_list("project_id", "role")
        )
    return user._slipway_project_roles


def project_may(actor: Actor | AnonymousUser, action: Action, project: Project | int) -> bool:
    """Whether ``actor`` may ``action`` in ``project`` (a row or its id)."""
    if isinstance(actor, AnonymousUser):
        return False
    if isinstance(actor_check(actor), SystemActor) or not actor.is_active:
        return False
    if user_is_platform_admin(actor):
        return True
    roles, finance = RULES[action]
    if finance and user_is_finance(actor):
        return True
    project_id = project if isinstance(project, int) else project.id
    return project_roles(actor).get(project_id) in roles


def platform_require(actor: Actor | AnonymousUser, action: Action) -> None:
    """For what belongs to no project (price books): only who may ``action`` in every project."""
    if projects_where(actor, action) is not None:
        raise NotAllowed(refusal(action, None))


def project_require(actor: Actor | AnonymousUser, action: Action, project: Project) -> None:
    """Raise ``NotAllowed`` (403) naming who may, unless ``project_may``."""
    if not project_may(actor, action, project):
        raise NotAllowed(refusal(action, project))


def project_require_each(actor: Actor | AnonymousUser, action: Action, projects: "list[Project | None]") -> None:
    """The rule for an object that names a project: the actor must be allowed in the project it leaves
    and in the one it ends up in (``None``s, e.g. no project before a create, are skipped)."""
    seen: set[int] = set()
    for project in projects:
        if project is not None and project.id not in seen:
            seen.add(project.id)
            project_require(actor, action, project)


def projects_where(actor: Actor | AnonymousUser, action: Action) -> list[int] | None:
    """Ids of the projects where ``actor`` may ``action``; ``None`` means every project."""
    if isinstance(actor, AnonymousUser) or isinstance(actor_check(actor), SystemActor) or not actor.is_active:
        return []
    roles, finance = RULES[action]
    if user_is_platform_admin(actor) or (finance and user_is_finance(actor)):
        return None
    return [project for project, role in project_roles(actor).items() if role in roles]


def refusal(action: Action, project: Project | None) -> str:
    """Why ``action`` was refused in ``project``: who may do it there."""
    roles, finance = RULES[action]
    if not roles or project is None:
        return f"Only {'finance or ' if finance else ''}platform admins may {action}."
    return f"Only a project {' or '.join(sorted(roles))} of {project.slug!r} may {action}."


def application_actions(user: Actor | AnonymousUser, application) -> dict[str, bool]:
    """The buttons and panels an application's page shows (the services check again)."""
    project = application.project_id
    return {
        "can_file": project_may(user, Action.FILE_RELEASE, project),
        "can_scale": project_may(user, Action.SCALE, project),
        "can_decommission": project_may(user, Action.DECOMMISSION, project),
        "can_list_pods": project_may(user, Action.POD_LIST, project),
        "can_read_logs": project_may(user, Action.POD_LOGS, project),
    }
