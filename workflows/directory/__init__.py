"""Company sign-in: LDAP / Active Directory (django-auth-ldap) and OpenID Connect (mozilla-django-oidc).

Both backends hand what the directory says (who, which groups) to ``workflows.services.directory``,
which links the account and applies the group mapping; ``tokens`` and ``middleware`` re-check an LDAP
account once ``SLIPWAY_DIRECTORY_RECHECK_SECONDS`` have passed. Settings: ``paas_site.signin_config``.
"""
