from django.apps import AppConfig


class WorkflowsConfig(AppConfig):
    name = "workflows"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from deployments import changes

        from . import audit, password_changes
        from .services.signin import signin_logged_in

        changes.install(audit)  # the audit trail records configuration changes of deployments objects
        password_changes.install()  # a password change revokes the user's API tokens
        user_logged_in.connect(signin_logged_in, dispatch_uid="slipway-signin-audit")  # every sign-in audited
