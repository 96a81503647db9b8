"""API tokens: issued for a password at ``POST /auth/token/`` (lockout applies), listed and revoked by their owner.

The token value is in the one answer that issues it; lists show names and expiry only. A token cannot mint
another token (that would let a stolen one outlive its revocation): ``POST /auth/tokens/`` needs a session.
"""
from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from paas_site.errors import ApplicationError, NotAllowed

from ..lockout import lockout_response
from ..models import ApiToken
from ..services import signin

MAX_EXPIRES_IN = 10 * 365 * 24 * 3600  # past this it is not a lifetime but an overflow; the setting caps lower


class ApiTokenSerializer(serializers.ModelSerializer):
    current = serializers.SerializerMethodField(help_text="Whether this request was made with this token.")

    class Meta:
        model = ApiToken
        fields = ["id", "name", "created", "expiry", "current"]

    def get_current(self, token: ApiToken) -> bool:
        request = self.context.get("request")
        return isinstance(getattr(request, "auth", None), ApiToken) and request.auth.id == token.id


class IssuedTokenSerializer(ApiTokenSerializer):
    token = serializers.CharField(help_text="The token: send `Authorization: Token <token>`. Shown only here.")

    class Meta(ApiTokenSerializer.Meta):
        fields = ["token", *ApiTokenSerializer.Meta.fields]


class TokenInput(serializers.Serializer):
    name = serializers.CharField(max_length=100, default="api", help_text="To tell your tokens apart.")
    expires_in = serializers.IntegerField(
        required=False, min_value=60, max_value=MAX_EXPIRES_IN,
        help_text="Lifetime in seconds (default SLIPWAY_API_TOKEN_SECONDS, at most SLIPWAY_API_TOKEN_MAX_SECONDS).")


class SignInInput(TokenInput):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, trim_whitespace=False, style={"input_type": "password"})


def issued(request, token: ApiToken, value: str, status_code: int) -> Response:
    token.token = value
    return Response(IssuedTokenSerializer(token, context={"request": request}).data, status=status_code)


class TokenSignInView(APIView):
    """Sign in with a password and get a new API token (failed attempts count towards the lockout)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(request=SignInInput, responses={200: IssuedTokenSerializer}, auth=[])
    def post(self, request):
        data = SignInInput(data=request.data)
        data.is_valid(raise_exception=True)
        credentials = data.validated_data
        user = authenticate(request=request._request, username=credentials["username"],
                            password=credentials["password"])
        if user is None:
            if getattr(request._request, "axes_locked_out", False):
                return lockout_response(request._request)
            raise ApplicationError("Unable to log in with the username and password given.")
        signin.signin_record(user=user)
        token, value = signin.api_token_issue(user=user, name=credentials["name"],
                                              expires_in=credentials.get("expires_in"))
        return issued(request, token, value, status.HTTP_200_OK)


class ApiTokenViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin,
                      viewsets.GenericViewSet):
    """Your own API tokens: list, issue (with a session), revoke."""

    serializer_class = ApiTokenSerializer
    lookup_value_regex = "[0-9]+"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ApiToken.objects.none()
        return ApiToken.objects.filter(user=self.request.user).select_related("user").order_by("-created", "-id")

    @extend_schema(request=TokenInput, responses={201: IssuedTokenSerializer})
    def create(self, request):
        if isinstance(request.auth, ApiToken):
            raise NotAllowed("A token cannot make tokens: sign in with your password at POST /api/v1/auth/token/.")
        data = TokenInput(data=request.data)
        data.is_valid(raise_exception=True)
        token, value = signin.api_token_issue(user=request.user, name=data.validated_data["name"],
                                              expires_in=data.validated_data.get("expires_in"))
        return issued(request, token, value, status.HTTP_201_CREATED)

    def destroy(self, request, pk=None):
        signin.api_token_revoke(actor=request.user, token_id=self.get_object().id)
        return Response(status=status.HTTP_204_NO_CONTENT)
