"""LDAP / Active Directory sign-in: django-auth-ldap's bind + search, over TLS, with Slipway's group mapping.

The user is searched with the service account (``SLIPWAY_LDAP_BIND_DN``), then bound as with their password;
``SLIPWAY_LDAP_DISABLED_FILTER`` is part of the search, so a disabled account is not found at all. An existing
Slipway user is signed in only if this directory made them (a local account is never taken over).
"""
import logging

import ldap
from django_auth_ldap.backend import LDAPBackend, _LDAPUser

from ..choices import SignInMethod
from ..services import directory

logger = logging.getLogger(__name__)


class DirectoryUnreachable(Exception):
    """The directory could not be asked (down, TLS refused, service account refused)."""


class DirectoryLDAPBackend(LDAPBackend):
    def get_or_build_user(self, username, ldap_user):
        user, built = super().get_or_build_user(username, ldap_user)
        if not built:
            try:
                directory.directory_account_check(user=user, source=SignInMethod.LDAP)
            except directory.AccountNotLinked as exc:
                logger.warning("LDAP sign-in refused: %s", exc.message)
                raise ldap_user.AuthenticationFailed(exc.message) from None
        ldap_user.slipway_built = built
        return user, built

    def authenticate_ldap_user(self, ldap_user, password):
        user = super().authenticate_ldap_user(ldap_user, password)
        return self._mapped(user, ldap_user)

    def get_user(self, user_id):
        user = super().get_user(user_id)
        return user if user is not None and user.is_active else None  # a disabled account's session ends

    def directory_lookup(self, username: str):
        """Ask the directory for ``username`` again (no password): the user with the mapping re-applied, or
        ``None`` when the directory does not find them (disabled, deleted). ``DirectoryUnreachable`` otherwise."""
        ldap_user = _LDAPUser(self, username=username)
        try:
            ldap_user.connection.whoami_s()  # binds as the service account: raises if the directory is unreachable
            # The searches run here first, where an error (a timeout, a base gone) is the directory failing:
            # django-auth-ldap swallows it and answers "no such user", which would disable the account.
            if not self.settings.USER_SEARCH.execute(ldap_user.connection, {"user": username}):
                return None
            ldap_user.group_names  # noqa: B018 (loads and caches the groups)
        except ldap.LDAPError as exc:
            raise DirectoryUnreachable(type(exc).__name__) from None
        return self._mapped(ldap_user.populate_user(), ldap_user)

    def _mapped(self, user, ldap_user):
        if user is None:
            return None
        try:
            directory.directory_sign_in(user=user, source=SignInMethod.LDAP, subject=ldap_user.dn,
                                        groups=list(ldap_user.group_names),
                                        created=getattr(ldap_user, "slipway_built", False))
        except directory.AccountNotLinked as exc:
            logger.warning("LDAP sign-in refused: %s", exc.message)
            return None
        user.refresh_from_db()
        return user if user.is_active else None


def directory_still_enabled(user) -> bool:
    """Whether ``user`` may go on (API token, session): an LDAP account whose last check is older than
    ``SLIPWAY_DIRECTORY_RECHECK_SECONDS`` is looked up again; one the directory no longer finds is
    deactivated and its tokens revoked. A directory that cannot be reached changes nothing."""
    account = directory.directory_recheck_due(user)
    if account is None:
        return user.is_active
    try:
        found = DirectoryLDAPBackend().directory_lookup(user.get_username())
    except DirectoryUnreachable as exc:
        logger.warning("LDAP re-check of %s skipped, the directory cannot be reached (%s)", user, exc)
        return user.is_active
    if found is None:
        directory.directory_account_disable(user=user, source=account.source)
        return False
    return found.is_active
