"""Company sign-in configured from the environment: LDAP/Active Directory and OpenID Connect.

Pure: reads a mapping of variables, returns Django settings (``AUTH_LDAP_*``, ``OIDC_*``) or raises
``ImproperlyConfigured`` naming the variable and the reason. The rules it keeps:

- a directory is spoken to over TLS only: ``ldaps://``, or ``ldap://`` with ``SLIPWAY_LDAP_START_TLS``;
  a plain-only configuration stops the start (passwords would cross the network in clear);
- the certificate is always verified (``SLIPWAY_LDAP_CA_FILE`` for a private CA);
- an OpenID issuer is ``https://`` (``http://`` only on loopback, for tests and a laptop);
- disabled directory accounts are excluded by ``SLIPWAY_LDAP_DISABLED_FILTER`` in the user search itself,
  so they cannot sign in and a re-check does not find them.
"""
import ipaddress
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

TRUE = {"1", "true", "yes", "on"}
GROUP_TYPES = {
    "groupOfNames": ("GroupOfNamesType", "(objectClass=groupOfNames)"),
    "groupOfUniqueNames": ("GroupOfUniqueNamesType", "(objectClass=groupOfUniqueNames)"),
    "posixGroup": ("PosixGroupType", "(objectClass=posixGroup)"),
    "activeDirectory": ("NestedActiveDirectoryGroupType", "(objectClass=group)"),
}


def _flag(env: Mapping[str, str], name: str, default: bool = False) -> bool:
    value = env.get(name, "").strip().lower()
    return default if value == "" else value in TRUE


def _loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def _filter(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, default).strip()
    if value and not (value.startswith("(") and value.endswith(")")):
        raise ImproperlyConfigured(f"{name}: an LDAP filter is written in parentheses, e.g. (uid=%(user)s).")
    return value


def ldap_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """``AUTH_LDAP_*`` settings, or ``{}`` when ``SLIPWAY_LDAP_URI`` is not set."""
    uri = env.get("SLIPWAY_LDAP_URI", "").strip()
    if not uri:
        return {}
    import ldap
    from django_auth_ldap import config

    start_tls = _flag(env, "SLIPWAY_LDAP_START_TLS")
    schemes = {urlsplit(part).scheme for part in uri.split()}
    if not schemes <= {"ldap", "ldaps"}:
        raise ImproperlyConfigured("SLIPWAY_LDAP_URI: use ldaps://host or ldap://host (with SLIPWAY_LDAP_START_TLS).")
    if "ldap" in schemes and not start_tls:
        raise ImproperlyConfigured("SLIPWAY_LDAP_URI: ldap:// sends passwords in clear; use ldaps:// or set "
                                   "SLIPWAY_LDAP_START_TLS=true.")
    user_base = env.get("SLIPWAY_LDAP_USER_BASE", "").strip()
    group_base = env.get("SLIPWAY_LDAP_GROUP_BASE", "").strip()
    for name, value in (("SLIPWAY_LDAP_USER_BASE", user_base), ("SLIPWAY_LDAP_GROUP_BASE", group_base)):
        if not value:
            raise ImproperlyConfigured(f"{name} is required with SLIPWAY_LDAP_URI (e.g. ou=people,dc=example,dc=com).")
    user_filter = _filter(env, "SLIPWAY_LDAP_USER_FILTER", "(uid=%(user)s)")
    if "%(user)s" not in user_filter:
        raise ImproperlyConfigured("SLIPWAY_LDAP_USER_FILTER must contain %(user)s, where the username goes.")
    disabled = _filter(env, "SLIPWAY_LDAP_DISABLED_FILTER", "")
    if disabled:
        user_filter = f"(&{user_filter}(!{disabled}))"
    group_type_name = env.get("SLIPWAY_LDAP_GROUP_TYPE", "groupOfNames").strip()
    if group_type_name not in GROUP_TYPES:
        raise ImproperlyConfigured(f"SLIPWAY_LDAP_GROUP_TYPE: one of {', '.join(GROUP_TYPES)}.")
    group_class, group_filter = GROUP_TYPES[group_type_name]
    group_filter = _filter(env, "SLIPWAY_LDAP_GROUP_FILTER", group_filter)
    try:
        timeout = float(env.get("SLIPWAY_LDAP_TIMEOUT_SECONDS", "5"))
    except ValueError:
        raise ImproperlyConfigured("SLIPWAY_LDAP_TIMEOUT_SECONDS: a number of seconds.") from None
    options: dict[int, Any] = {
        ldap.OPT_REFERRALS: 0,  # Active Directory's referrals would be followed without credentials
        ldap.OPT_NETWORK_TIMEOUT: timeout,
        ldap.OPT_TIMEOUT: timeout,
        ldap.OPT_X_TLS_REQUIRE_CERT: ldap.OPT_X_TLS_DEMAND,
    }
    ca_file = env.get("SLIPWAY_LDAP_CA_FILE", "").strip()
    if ca_file:
        options[ldap.OPT_X_TLS_CACERTFILE] = ca_file
    options[ldap.OPT_X_TLS_NEWCTX] = 0  # last: applies the TLS options above to this connection
    return {
        "AUTH_LDAP_SERVER_URI": uri,
        "AUTH_LDAP_START_TLS": start_tls,
        "AUTH_LDAP_CONNECTION_OPTIONS": options,
        "AUTH_LDAP_BIND_DN": env.get("SLIPWAY_LDAP_BIND_DN", ""),
        "AUTH_LDAP_BIND_PASSWORD": env.get("SLIPWAY_LDAP_BIND_PASSWORD", ""),
        "AUTH_LDAP_USER_SEARCH": config.LDAPSearch(user_base, ldap.SCOPE_SUBTREE, user_filter),
        "AUTH_LDAP_GROUP_SEARCH": config.LDAPSearch(group_base, ldap.SCOPE_SUBTREE, group_filter),
        "AUTH_LDAP_GROUP_TYPE": getattr(config, group_class)(),
        "AUTH_LDAP_USER_ATTR_MAP": {"first_name": "givenName", "last_name": "sn", "email": "mail"},
        "AUTH_LDAP_ALWAYS_UPDATE_USER": True,
        "AUTH_LDAP_FIND_GROUP_PERMS": False,  # roles come from Slipway's group mapping, not Django permissions
        "AUTH_LDAP_CACHE_TIMEOUT": 0,  # group changes count at the next sign-in
        "SLIPWAY_LDAP_NAME": env.get("SLIPWAY_LDAP_NAME", "").strip() or "company account",
    }


def oidc_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """``OIDC_*`` settings for mozilla-django-oidc, or ``{}`` when ``SLIPWAY_OIDC_ISSUER`` is not set.

    The endpoints come from the issuer's discovery document when first needed (``workflows.directory.oidc``).
    """
    issuer = env.get("SLIPWAY_OIDC_ISSUER", "").strip().rstrip("/")
    if not issuer:
        return {}
    parts = urlsplit(issuer)
    if parts.scheme != "https" and not (parts.scheme == "http" and _loopback(parts.hostname)):
        raise ImproperlyConfigured("SLIPWAY_OIDC_ISSUER: an https:// URL (http:// only on loopback).")
    for name in ("SLIPWAY_OIDC_CLIENT_ID", "SLIPWAY_OIDC_CLIENT_SECRET"):
        if not env.get(name, "").strip():
            raise ImproperlyConfigured(f"{name} is required with SLIPWAY_OIDC_ISSUER.")
    scopes = env.get("SLIPWAY_OIDC_SCOPES", "openid email profile").split()
    if "openid" not in scopes:
        raise ImproperlyConfigured("SLIPWAY_OIDC_SCOPES must include openid.")
    ca_file = env.get("SLIPWAY_OIDC_CA_FILE", "").strip()
    return {
        "SLIPWAY_OIDC_ISSUER": issuer,
        "SLIPWAY_OIDC_NAME": env.get("SLIPWAY_OIDC_NAME", "").strip() or "single sign-on",
        "SLIPWAY_OIDC_GROUPS_CLAIM": env.get("SLIPWAY_OIDC_GROUPS_CLAIM", "groups").strip() or "groups",
        "SLIPWAY_OIDC_USERNAME_CLAIM": env.get("SLIPWAY_OIDC_USERNAME_CLAIM", "preferred_username").strip(),
        "OIDC_RP_CLIENT_ID": env["SLIPWAY_OIDC_CLIENT_ID"].strip(),
        "OIDC_RP_CLIENT_SECRET": env["SLIPWAY_OIDC_CLIENT_SECRET"].strip(),
        "OIDC_RP_SIGN_ALGO": env.get("SLIPWAY_OIDC_SIGN_ALGO", "RS256").strip(),
        "OIDC_RP_SCOPES": " ".join(scopes),
        "OIDC_USE_PKCE": True,
        "OIDC_PKCE_CODE_CHALLENGE_METHOD": "S256",
        "OIDC_USE_NONCE": True,
        "OIDC_VERIFY_SSL": ca_file or True,
        "OIDC_TIMEOUT": 10,
        "OIDC_AUTHENTICATION_CALLBACK_URL": "oidc-callback",
    }


def authentication_backends(*, local: bool, ldap: bool, oidc: bool) -> list[str]:
    """Axes first (it refuses a locked-out client before any password is checked), then each method that is on.

    The directory before local accounts: Django hashes a password even for a user without one (so timing does
    not tell who exists), which would add a full password hash to every directory sign-in (bench/signin.py).
    """
    return [
        "axes.backends.AxesStandaloneBackend",
        *(["workflows.directory.ldap.DirectoryLDAPBackend"] if ldap else []),
        *(["django.contrib.auth.backends.ModelBackend"] if local else []),
        *(["workflows.directory.oidc.DirectoryOIDCBackend"] if oidc else []),
    ]
