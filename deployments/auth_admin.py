"""Users and groups in the admin, audited like every other change.

Making someone a superuser, adding them to ``finance`` or changing their password
changes who may do what, so the stock ``UserAdmin``/``GroupAdmin`` are replaced by
subclasses that record each save (flags, groups and permissions included: the
snapshot is taken after the form's many-to-many fields are saved) and each password
change (the event says a password changed, never what it is or its hash).

DRF's token admin is removed: it let an admin mint a working API token for any user,
unaudited, and listed every user's token in clear. Users get their token by signing
in (``POST /api/v1/auth/token/``).
"""
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.db import transaction
from rest_framework.authtoken.models import TokenProxy

from . import changes
from .admin import AuditedAdmin

User = get_user_model()


class AuditedUserAdmin(AuditedAdmin, UserAdmin):
    def user_change_password(self, request, id, form_url=""):
        with transaction.atomic():
            stored = User.objects.filter(pk=id).values_list("password", flat=True).first()
            response = super().user_change_password(request, id, form_url)
            user = User.objects.filter(pk=id).first()
            if user is not None and user.password != stored:
                changes.recorder().password_changed(actor=request.user, user=user)
        return response


class AuditedGroupAdmin(AuditedAdmin, GroupAdmin):
    pass


for model, model_admin in ((User, AuditedUserAdmin), (Group, AuditedGroupAdmin)):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(model, model_admin)
if admin.site.is_registered(TokenProxy):
    admin.site.unregister(TokenProxy)
