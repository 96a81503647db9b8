from django.apps import AppConfig


class WorkflowsConfig(AppConfig):
    name = "workflows"

    def ready(self) -> None:
        from deployments import changes

        from . import audit, password_changes

        changes.install(audit)  # the audit trail records configuration changes of deployments objects
        password_changes.install()  # a password change revokes the user's API tokens
