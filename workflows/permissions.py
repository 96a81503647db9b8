"""May this actor do X to this release: ``deployments.permissions`` plus the two rules a release adds.

- Whoever filed a release may cancel it while they can still see its project.
- Nobody decides on a release they authored where the environment does not allow self-approval: they filed
  it (a release filed by a CI token records the token's owner as its requester, so this holds for CI) or
  changed it after filing (a maintainer who swaps a colleague's image is an author of what would run).

The services call ``release_require``; the console and admin show a button only where ``release_actions``
says the user may act now (permission and state), so no door shows what another refuses.
"""
from django.contrib.auth.models import AnonymousUser

from deployments.permissions import Action, project_may, refusal
from paas_site.actors import Actor, actor_user
from paas_site.errors import NotAllowed

from .choices import CANCELLABLE, AuditAction, ReleaseState
from .models import AuditEvent, Release


def release_may(actor: Actor | AnonymousUser, action: Action, release: Release) -> bool:
    return _refusal(actor, action, release) is None


def release_require(actor: Actor | AnonymousUser, action: Action, release: Release) -> None:
    """Raise ``NotAllowed`` (403) unless ``release_may``; the self-approval refusal has its own code."""
    refusal = _refusal(actor, action, release)
    if refusal is not None:
        message, code = refusal
        raise NotAllowed(message, code=code)


def release_actions(user: Actor | AnonymousUser, release: Release) -> dict[str, bool]:
    """The buttons a page shows for ``release``: allowed for ``user`` and possible in its state."""
    return {
        "can_decide": release.state == ReleaseState.REQUESTED and release_may(user, Action.DECIDE, release),
        "can_cancel": release.state in CANCELLABLE and release_may(user, Action.CANCEL, release),
        "can_retry": release.state == ReleaseState.FAILED and release_may(user, Action.RETRY, release),
        "can_rollback": release.state == ReleaseState.SUCCEEDED and release.replaced_id is not None
        and release_may(user, Action.ROLLBACK, release),
    }


def _refusal(actor: Actor | AnonymousUser, action: Action, release: Release) -> tuple[str, str] | None:
    project = release.application.project
    user = None if isinstance(actor, AnonymousUser) else actor_user(actor)
    requester = user is not None and release.requested_by_id == user.pk
    if action == Action.CANCEL and requester and project_may(actor, Action.VIEW, project):
        return None
    if not project_may(actor, action, project):
        return refusal(action, project), "permission_denied"
    if action == Action.DECIDE and not release.environment.allow_self_approval:
        if requester:
            return (f"You filed release #{release.id}; {release.environment.name} does not allow approving your "
                    "own release.", "self_approval")
        if user is not None and _changed_by(release, user.pk):
            return (f"You changed release #{release.id} after it was filed; {release.environment.name} does not "
                    "allow approving your own changes.", "self_approval")
    return None


def _changed_by(release: Release, user_id: int) -> bool:
    """Whether the user edited the release: the audit trail is the record of who changed it."""
    return AuditEvent.objects.filter(release_id=release.id, action=AuditAction.RELEASE_CHANGED,
                                     actor_user_id=user_id).exists()
