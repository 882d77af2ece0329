"""API keys and token login. Thin: validation in serializers, writes in apps.accounts.services."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle, ScopedRateThrottle
from rest_framework.views import APIView

from apps.accounts import services
from apps.accounts.models import APIKey, AuditLog

from .serializers import APIKeySerializer, NewAPIKeySerializer, TokenRequestSerializer, TokenSerializer

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
class APIKeyViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
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
        return APIKey.objects.filter(user=self.request.user)

    def create(self, request: Request, *args, **kwargs) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        api_key, key = services.create_api_key(
            request.user,
            serializer.validated_data["name"],
            expiry_date=serializer.validated_data.get("expiry_date"),
            request=request,
        )
        api_key.key = key  # for this one answer only
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
        services.revoke_api_key(api_key, acting_user=request.user, request=request)
        return Response(self.get_serializer(api_key).data)


class ObtainTokenView(APIView):
    """Exchange a username and password for the user's API token (created on first use)."""

    authentication_classes: list = []
    permission_classes: list = []
    # Password guessing is limited per client address (scope "auth", env API_THROTTLE_AUTH).
    throttle_classes = [AnonRateThrottle, ScopedRateThrottle]
    throttle_scope = "auth"

    @extend_schema(
        summary="Get an API token for a username and password",
        request=TokenRequestSerializer,
        responses={200: TokenSerializer},
        auth=[],
    )
    def post(self, request: Request) -> Response:
        serializer = AuthTokenSerializer(data=request.data, context={"request": request})
        # A failed attempt fires user_login_failed inside authenticate(): the audit handler records it.
        serializer.is_valid(raise_exception=True)
        user = serializer.validated_data["user"]
        token, _ = Token.objects.get_or_create(user=user)
        services.record_audit(AuditLog.Action.LOGIN, actor=user, request=request, detail={"via": "token"})
        return Response({"token": token.key})
