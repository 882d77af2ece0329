"""API keys and token login. Thin: validation in serializers, writes in apps.accounts.services."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth import authenticate, get_user_model
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.authentication import BaseAuthentication
from rest_framework.decorators import action, api_view
from rest_framework.exceptions import AuthenticationFailed, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView
from rest_framework_simplejwt import views as jwt_views
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import RefreshToken

from apps.accounts import services
from apps.accounts.models import APIKey, APIToken, AuditLog
from apps.accounts.throttling import AnonRateThrottle, ScopedRateThrottle
from apps.accounts.types import account_of

from .serializers import APIKeySerializer, NewAPIKeySerializer, TokenRequestSerializer, TokenSerializer

if TYPE_CHECKING:
    from rest_framework.permissions import _PermissionClass

PREFIX_PARAMETER = OpenApiParameter(
    "prefix", str, OpenApiParameter.PATH, description="The key's prefix (the part before the dot)."
)


@extend_schema_view(
    list=extend_schema(summary="List your API keys (never the keys themselves)"),
    retrieve=extend_schema(summary="Get one of your API keys", parameters=[PREFIX_PARAMETER]),
    create=extend_schema(
        summary="Create an API key; the answer holds the full key, shown only this once",
        responses={201: NewAPIKeySerializer},
    ),
)
class APIKeyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    """Your own API keys. Other users' keys answer 404."""

    serializer_class = APIKeySerializer
    queryset = APIKey.objects.none()  # for the schema generator; see get_queryset
    lookup_field = "prefix"
    lookup_value_regex = r"[A-Za-z0-9]+"
    filterset_fields = ["revoked"]
    search_fields = ["name", "prefix"]
    ordering_fields = ["created", "name", "last_used_at"]
    ordering = ["-created"]

    def get_queryset(self) -> QuerySet[APIKey]:
        if getattr(self, "swagger_fake_view", False):
            return APIKey.objects.none()
        return APIKey.objects.filter(user=account_of(self.request))

    def create(self, request: Request, *args, **kwargs) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        api_key, key = services.create_api_key(
            account_of(request),
            serializer.validated_data["name"],
            expiry_date=serializer.validated_data.get("expiry_date"),
            request=request,
        )
        api_key.key = key  # type: ignore[attr-defined]  # for this one answer only (NewAPIKeySerializer.key)
        body = NewAPIKeySerializer(api_key, context=self.get_serializer_context()).data
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Revoke an API key (cannot be undone; revoking twice is harmless)",
        request=None,
        responses={200: APIKeySerializer},
        parameters=[PREFIX_PARAMETER],
    )
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, prefix: str | None = None) -> Response:
        api_key = self.get_object()
        services.revoke_api_key(api_key, acting_user=account_of(request), request=request)
        return Response(self.get_serializer(api_key).data)


LOCKED_OUT = (
    "Too many failed logins for this username from your address: try again in {minutes} minutes, "
    "or ask an administrator to unlock it."
)


def _locked_out_response(request: Request) -> Response | None:
    """The 429 answer when django-axes locked this username + address out during authenticate()."""
    if getattr(request, "axes_locked_out", False) or getattr(request._request, "axes_locked_out", False):
        minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60) if settings.AXES_COOLOFF_TIME else 0
        return Response(
            {"detail": LOCKED_OUT.format(minutes=minutes), "code": "locked_out"},
            status=status.HTTP_429_TOO_MANY_REQUESTS,
        )
    return None


class PasswordLoginThrottles:
    authentication_classes: Sequence[type[BaseAuthentication]] = ()
    permission_classes: Sequence[_PermissionClass] = ()
    # Password guessing is limited per client address (scope "auth", env API_THROTTLE_AUTH) and
    # locked out per username + address by django-axes (WB_LOGIN_FAILURE_LIMIT).
    throttle_classes: Sequence[type[BaseThrottle]] = [AnonRateThrottle, ScopedRateThrottle]
    throttle_scope = "auth"


class ObtainTokenView(PasswordLoginThrottles, APIView):
    """Exchange a username and password for a new API token (hashed at rest, expiring)."""

    @extend_schema(
        summary="Get a new API token for a username and password (expires after WB_API_TOKEN_DAYS)",
        request=TokenRequestSerializer,
        responses={
            200: TokenSerializer,
            400: OpenApiResponse(description="Wrong username or password"),
            429: OpenApiResponse(description="Locked out after repeated failures"),
        },
        auth=[],
    )
    def post(self, request: Request) -> Response:
        serializer = TokenRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        # A failed attempt fires user_login_failed inside authenticate(): the audit handler and axes record it.
        user = authenticate(
            request=request,
            username=serializer.validated_data["username"],
            password=serializer.validated_data["password"],
        )
        if user is None or not user.is_active:
            locked = _locked_out_response(request)
            if locked is not None:
                return locked
            return Response(
                {"non_field_errors": ["Unable to log in with provided credentials."]},
                status=status.HTTP_400_BAD_REQUEST,
            )
        token, key = services.issue_token(user, request=request)
        services.record_audit(AuditLog.Action.LOGIN, actor=user, request=request, detail={"via": "token"})
        return Response({"token": key, "expires_at": token.expires_at})


def _current_token(request: Request) -> APIToken:
    if not isinstance(request.auth, APIToken):
        raise ValidationError(
            {"detail": "Authenticate with the token itself (Authorization: Token <key>) to rotate or revoke it."}
        )
    return request.auth


@extend_schema(
    summary="Rotate the token you are authenticated with: a new one is returned and the old one stops working",
    request=None,
    responses={200: TokenSerializer},
)
@api_view(["POST"])
def rotate_token(request: Request) -> Response:
    token, key = services.rotate_token(_current_token(request), request=request)
    return Response({"token": key, "expires_at": token.expires_at})


@extend_schema(
    summary="Revoke the token you are authenticated with (log out an integration)", request=None, responses={204: None}
)
@api_view(["POST"])
def revoke_token(request: Request) -> Response:
    services.revoke_token(_current_token(request), acting_user=account_of(request), request=request)
    return Response(status=status.HTTP_204_NO_CONTENT)


#
# JWT (djangorestframework-simplejwt): access + refresh, refresh rotation, blacklist
#


class JWTObtainView(PasswordLoginThrottles, jwt_views.TokenObtainPairView):
    """Username and password for an access token (short-lived) and a refresh token."""

    @extend_schema(
        summary="Get a JWT access and refresh token pair for a username and password",
        responses={
            200: OpenApiResponse(description="{access, refresh}"),
            401: OpenApiResponse(description="Wrong username or password"),
            429: OpenApiResponse(description="Locked out"),
        },
        auth=[],
    )
    def post(self, request: Request, *args, **kwargs) -> Response:
        try:
            response = super().post(request, *args, **kwargs)
        except AuthenticationFailed:
            locked = _locked_out_response(request)
            if locked is not None:
                return locked
            raise
        if response.status_code == 200:
            user = authenticate_from_refresh(response.data["refresh"])
            services.record_audit(AuditLog.Action.LOGIN, actor=user, request=request, detail={"via": "jwt"})
        return response


def authenticate_from_refresh(raw: str):
    """The user a refresh token we just issued belongs to (for the audit row)."""
    token = RefreshToken(raw)  # type: ignore[arg-type]  # simplejwt annotates the encoded token as a Token
    return get_user_model().objects.filter(pk=token[jwt_settings.USER_ID_CLAIM]).first()


class JWTRefreshView(jwt_views.TokenRefreshView):
    """A refresh token for a new access token and a new refresh token (the old refresh token is
    blacklisted: each one works once)."""

    throttle_classes = [AnonRateThrottle, ScopedRateThrottle]
    throttle_scope = "auth"

    @extend_schema(summary="Exchange a refresh token for a new access token and a new refresh token", auth=[])
    def post(self, request: Request, *args, **kwargs) -> Response:
        return super().post(request, *args, **kwargs)


class JWTRevokeView(jwt_views.TokenBlacklistView):
    """Blacklist a refresh token (log out): it and its access tokens' renewals stop working."""

    @extend_schema(summary="Revoke (blacklist) a refresh token", auth=[])
    def post(self, request: Request, *args, **kwargs) -> Response:
        return super().post(request, *args, **kwargs)
