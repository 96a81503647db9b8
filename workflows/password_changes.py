"""A password change signs the user out everywhere, whichever path changed it (admin, command, shell).

Sessions end by themselves (Django keys each to the password hash); API tokens do not, so they are
revoked here, audited, in the transaction of the save. A hash upgrade at sign-in is not a change.
"""
from django.contrib.auth import get_user_model
from django.db.models.signals import post_save, pre_save


def _note_password_change(sender, instance, update_fields=None, **kwargs) -> None:
    if instance.pk is None:
        return
    changed = getattr(instance, "_password", None) is not None  # set_password() was called
    if not changed and update_fields is None:
        stored = sender.objects.filter(pk=instance.pk).values_list("password", flat=True).first()
        changed = stored is not None and stored != instance.password
    instance._slipway_password_changed = changed


def _sign_out_everywhere(sender, instance, created: bool, **kwargs) -> None:
    if created or not getattr(instance, "_slipway_password_changed", False):
        return
    instance._slipway_password_changed = False
    from .services.signin import user_password_changed

    user_password_changed(user=instance)


def install() -> None:
    user_model = get_user_model()
    pre_save.connect(_note_password_change, sender=user_model, dispatch_uid="slipway-password-change")
    post_save.connect(_sign_out_everywhere, sender=user_model, dispatch_uid="slipway-password-sign-out")
