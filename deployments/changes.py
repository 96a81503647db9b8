"""Where configuration changes of deployments objects are recorded.

``deployments`` must not import ``workflows`` (dependencies point one way), yet
every change to clusters, environments and applications belongs in the audit
trail that ``workflows`` owns. So ``workflows`` installs its audit writer here
when the app registry is ready, and the API and admin call these functions
inside the transaction of the change.
"""
from typing import Any, Protocol

from django.core.exceptions import ImproperlyConfigured
from django.db import models


class ChangeRecorder(Protocol):
    def snapshot(self, obj: models.Model) -> dict[str, Any]: ...
    def object_created(self, *, actor: Any, obj: models.Model) -> Any: ...
    def object_changed(self, *, actor: Any, obj: models.Model, before: dict[str, Any]) -> Any: ...
    def object_deleted(self, *, actor: Any, obj: models.Model, before: dict[str, Any]) -> Any: ...
    def password_changed(self, *, actor: Any, user: Any) -> Any: ...


_recorder: ChangeRecorder | None = None


def install(recorder: ChangeRecorder) -> None:
    global _recorder
    _recorder = recorder


def recorder() -> ChangeRecorder:
    if _recorder is None:
        raise ImproperlyConfigured("No change recorder installed: is the workflows app in INSTALLED_APPS?")
    return _recorder
