"""The "API tokens" page: a user's own tokens, issued here (shown once, on the answer) and revoked here."""
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from paas_site.errors import ApplicationError

from ...models import ApiToken
from ...services import signin
from ..forms import ApiTokenForm
from .common import page


def _page(request: HttpRequest, form: ApiTokenForm, issued: str = "", status: int = 200) -> HttpResponse:
    tokens = ApiToken.objects.filter(user=request.user).order_by("-created", "-id")
    return page(request, "console/api_tokens.html", {
        "form": form, "tokens": tokens, "issued": issued,
        "max_days": settings.SLIPWAY_API_TOKEN_MAX_SECONDS // 86400,
    }, status=status)


@login_required
def api_tokens(request: HttpRequest) -> HttpResponse:
    """GET lists; POST issues one and shows its value on this answer only (never stored, never redirected)."""
    if request.method != "POST":
        return _page(request, ApiTokenForm())
    form = ApiTokenForm(request.POST)
    if form.is_valid():
        try:
            days = form.cleaned_data["expires_in_days"]
            _, value = signin.api_token_issue(user=request.user, name=form.cleaned_data["name"],
                                              expires_in=days * 86400 if days else None)
        except ApplicationError as error:
            form.add_error("expires_in_days" if "expires_in" in error.extra.get("fields", {}) else None,
                           error.message)
        else:
            response = _page(request, ApiTokenForm(), issued=value)
            response["Cache-Control"] = "no-store"
            return response
    return _page(request, form, status=400)


@login_required
@require_POST
def api_token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    try:
        token = signin.api_token_revoke(actor=request.user, token_id=token_id)
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"API token {token.name!r} revoked: it no longer works.")
    return redirect("console:api-tokens")
