"""The sign-in page: the methods that are configured — "Sign in with <provider>" for OpenID Connect, and the
username/password form for the company directory (LDAP) and local accounts, unless both are off."""
from django.conf import settings
from django.contrib.auth import views as auth_views


class SignInView(auth_views.LoginView):
    template_name = "console/login.html"
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        ldap = settings.SLIPWAY_LDAP_ENABLED
        context.update(
            oidc_name=settings.SLIPWAY_OIDC_NAME if settings.SLIPWAY_OIDC_ENABLED else "",
            ldap_name=settings.SLIPWAY_LDAP_NAME if ldap else "",
            local_login=settings.SLIPWAY_LOCAL_LOGIN,
            password_form=ldap or settings.SLIPWAY_LOCAL_LOGIN,
        )
        return context
