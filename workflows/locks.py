"""The release-side helpers of the lock order that ``deployments/locks.py`` states (lane, release, claims, …,
audit head last). Every service of ``workflows`` locks through here or through ``deployments.locks``."""
from deployments.locks import lane_lock, row_lock

from .models import Release

__all__ = ["lane_lock", "release_lock"]


def release_lock(release_id: int) -> Release:
    """Lock a release after its lane (the application row), keeping the order. Call inside ``atomic``.

    Only the release row: locking the joined rows too would lock the shared
    environment, cluster and project, serializing every release of the
    environment and deadlocking with a filing whose foreign-key check waits
    for the environment row while it holds the audit chain head.
    """
    lane_lock(Release.objects.values_list("application_id", flat=True).get(id=release_id))
    return row_lock(
        Release.objects.select_related("application__project", "application__base_image", "environment__cluster"),
        release_id,
    )
