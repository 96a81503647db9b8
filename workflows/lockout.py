"""Sign-in lockout (django-axes): three rules, each with its own limit, and one clear answer when locked.

Failed sign-ins at the console (``/login/``), the admin and ``POST /api/v1/auth/token/`` are counted by
``AXES_LOCKOUT_PARAMETERS``, in this order:

1. the account at one address — ``SLIPWAY_LOGIN_FAILURE_LIMIT`` (10): guessing one user's password;
2. the address, whatever the accounts — ``SLIPWAY_LOGIN_ADDRESS_FAILURE_LIMIT`` (30): spraying many users;
3. the account, from any address — ``SLIPWAY_LOGIN_ACCOUNT_FAILURE_LIMIT`` (100): a distributed guess.

The third limit is high on purpose: reaching it locks the real user out too, so one attacker at one address
cannot do that (rules 1 and 2 stop them first). A rule holds for ``SLIPWAY_LOGIN_COOLOFF_SECONDS`` after the
latest failure or until an admin unlocks it (admin → Sign-in lockouts). The moment a rule locks is audited.
"""
from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username, get_cool_off
from django.conf import settings
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

RULES = ("account at this address", "address", "account")


def rule_limits() -> tuple[int, int, int]:
    return (settings.SLIPWAY_LOGIN_FAILURE_LIMIT, settings.SLIPWAY_LOGIN_ADDRESS_FAILURE_LIMIT,
            settings.SLIPWAY_LOGIN_ACCOUNT_FAILURE_LIMIT)


class LockoutHandler(AxesDatabaseHandler):
    """Axes' database handler with a limit per rule (axes itself has one limit for all)."""

    def rule_failures(self, request: HttpRequest, credentials: dict | None) -> list[int]:
        return [attempts.aggregate(n=Sum("failures_since_start"))["n"] or 0
                for attempts in self.get_user_attempts(request, credentials)]

    def get_failures(self, request: HttpRequest, credentials: dict | None = None) -> int:
        """Axes compares this with ``AXES_FAILURE_LIMIT``: that limit once any rule reached its own."""
        failures = self.rule_failures(request, credentials)
        limit = settings.AXES_FAILURE_LIMIT
        if any(count >= own for count, own in zip(failures, rule_limits(), strict=True)):
            return limit
        return min(max(failures, default=0), limit - 1)

    def user_login_failed(self, sender, credentials: dict, request=None, **kwargs) -> None:
        super().user_login_failed(sender, credentials, request, **kwargs)
        if request is None or not getattr(request, "axes_locked_out", False):
            return
        failures = self.rule_failures(request, credentials)
        began = [rule for rule, count, own in zip(RULES, failures, rule_limits(), strict=True) if count == own]
        if began:
            from .services.signin import signin_lockout_record

            signin_lockout_record(username=get_client_username(request, credentials),
                                  ip_address=request.axes_ip_address, rules=began, failures=max(failures))


def lockout_message() -> str:
    cool_off = get_cool_off()
    minutes = int(cool_off.total_seconds() // 60) if cool_off else 0
    return (f"Too many failed sign-ins: signing in is locked for {minutes} minutes from the last attempt, "
            "or until an administrator unlocks it.")


def lockout_response(request: HttpRequest, original_response=None, credentials: dict | None = None) -> HttpResponse:
    """``AXES_LOCKOUT_CALLABLE``: 429, JSON ``{"message", "code", "extra"}`` under ``/api/``, else a page."""
    cool_off = get_cool_off(request)
    retry_after = int(cool_off.total_seconds()) if cool_off else None
    if request.path_info.startswith("/api/"):
        response: HttpResponse = JsonResponse(
            {"message": lockout_message(), "code": "locked_out", "extra": {"retry_after_seconds": retry_after}},
            status=429)
    else:
        response = render(request, "console/locked_out.html", {"message": lockout_message()}, status=429)
    if retry_after:
        response["Retry-After"] = str(retry_after)
    return response
