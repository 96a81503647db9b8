"""Where configuration changes of deployments objects are recorded.

``deployments`` must not import ``workflows`` (dependencies point one way), yet
every change to clusters, environments and applications belongs in the audit
trail that ``workflows`` owns. So ``workflows`` installs its audit writer here
when the app registry is ready, and the API and admin call these functions
inside the transaction of the change.
"""
from typing import Any, Protocol

from django.core.exceptions import ImproperlyConfigured
from django.db import models, router
from django.db.models.deletion import Collector

from paas_site.actors import Actor


class ChangeRecorder(Protocol):
    def snapshot(self, obj: models.Model) -> dict[str, Any]: ...
    def object_created(self, *, actor: Actor, obj: models.Model) -> Any: ...
    def object_changed(self, *, actor: Actor, obj: models.Model, before: dict[str, Any]) -> Any: ...
    def object_deleted(self, *, actor: Actor, obj: models.Model, before: dict[str, Any]) -> Any: ...
    def password_changed(self, *, actor: Actor, user: Any) -> Any: ...


_recorder: ChangeRecorder | None = None


def install(recorder: ChangeRecorder) -> None:
    global _recorder
    _recorder = recorder


def recorder() -> ChangeRecorder:
    if _recorder is None:
        raise ImproperlyConfigured("No change recorder installed: is the workflows app in INSTALLED_APPS?")
    return _recorder


def deletion_record(*, actor: Actor, obj: models.Model) -> None:
    """Record the deletion of ``obj`` and of every row the deletion cascades to, one event each.

    Call it just before deleting, in the same transaction: deleting a project also deletes
    its memberships, CI tokens, webhooks and budgets, and each of those leaves its own event.
    Rows of many-to-many tables are left out: the parent's snapshot lists them.
    """
    collector = Collector(using=router.db_for_write(type(obj)))
    collector.collect([obj])
    rows = [row for instances in collector.data.values() for row in instances]
    rows += [row for queryset in collector.fast_deletes for row in queryset]
    cascaded = [row for row in rows if row != obj and not row._meta.auto_created]
    for row in [obj, *sorted(cascaded, key=lambda row: (row._meta.label_lower, row.pk))]:
        recorder().object_deleted(actor=actor, obj=row, before=recorder().snapshot(row))
