"""Sign-in settings from the environment: a bad value stops the start, naming the variable and the reason."""
import pytest
from django.core.exceptions import ImproperlyConfigured

from paas_site.signin_config import ldap_settings, oidc_settings

LDAP = {"SLIPWAY_LDAP_URI": "ldaps://ldap.example.com", "SLIPWAY_LDAP_USER_BASE": "ou=people,dc=example,dc=com",
        "SLIPWAY_LDAP_GROUP_BASE": "ou=groups,dc=example,dc=com"}
OIDC = {"SLIPWAY_OIDC_ISSUER": "https://sso.example.com/realms/staff", "SLIPWAY_OIDC_CLIENT_ID": "slipway",
        "SLIPWAY_OIDC_CLIENT_SECRET": "secret"}


@pytest.mark.parametrize(("changes", "message"), [
    ({"SLIPWAY_LDAP_URI": "http://ldap.example.com"}, "SLIPWAY_LDAP_URI: use ldaps://"),
    ({"SLIPWAY_LDAP_USER_BASE": ""}, "SLIPWAY_LDAP_USER_BASE is required"),
    ({"SLIPWAY_LDAP_USER_FILTER": "(uid=someone)"}, "SLIPWAY_LDAP_USER_FILTER must contain %\\(user\\)s"),
    ({"SLIPWAY_LDAP_DISABLED_FILTER": "employeeType=disabled"}, "SLIPWAY_LDAP_DISABLED_FILTER: an LDAP filter"),
    ({"SLIPWAY_LDAP_GROUP_TYPE": "roles"}, "SLIPWAY_LDAP_GROUP_TYPE: one of"),
])
def test_bad_ldap_settings_name_the_variable(changes, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        ldap_settings({**LDAP, **changes})


def test_a_disabled_filter_becomes_part_of_the_user_search():
    search = ldap_settings({**LDAP, "SLIPWAY_LDAP_DISABLED_FILTER": "(employeeType=disabled)"})["AUTH_LDAP_USER_SEARCH"]
    assert search.filterstr == "(&(uid=%(user)s)(!(employeeType=disabled)))"


@pytest.mark.parametrize(("changes", "message"), [
    ({"SLIPWAY_OIDC_ISSUER": "http://sso.example.com"}, "an https:// URL"),
    ({"SLIPWAY_OIDC_CLIENT_SECRET": ""}, "SLIPWAY_OIDC_CLIENT_SECRET is required"),
    ({"SLIPWAY_OIDC_SCOPES": "email profile"}, "must include openid"),
])
def test_bad_oidc_settings_name_the_variable(changes, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        oidc_settings({**OIDC, **changes})


def test_nothing_configured_turns_nothing_on():
    assert ldap_settings({}) == {} and oidc_settings({}) == {}
    assert oidc_settings({**OIDC, "SLIPWAY_OIDC_ISSUER": "http://127.0.0.1:9000"})["OIDC_USE_PKCE"] is True
