"""The admin site: Django's, except that changing your own password there is audited.

``AdminSite.password_change`` saves the signed-in user's new password with no hook for the
audit trail, so this site records it (the event says the password changed, never what it
is or its hash) in the transaction of the save. Installed as the default admin site by
``SlipwayAdminConfig`` in ``INSTALLED_APPS``.
"""
from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.contrib.auth import get_user_model
from django.db import transaction


class SlipwayAdminSite(admin.AdminSite):
    def password_change(self, request, extra_context=None):
        from . import changes  # this module loads with the app registry, before any model may be imported

        with transaction.atomic():
            user_model = get_user_model()
            stored = user_model.objects.filter(pk=request.user.pk).values_list("password", flat=True).first()
            response = super().password_change(request, extra_context)
            user = user_model.objects.filter(pk=request.user.pk).first()
            if user is not None and user.password != stored:
                changes.recorder().password_changed(actor=request.user, user=user)
        return response


class SlipwayAdminConfig(AdminConfig):
    default_site = "deployments.admin_site.SlipwayAdminSite"
