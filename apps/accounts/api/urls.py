from django.urls import path
from rest_framework.routers import SimpleRouter

from .views import (
    APIKeyViewSet,
    JWTObtainView,
    JWTRefreshView,
    JWTRevokeView,
    ObtainTokenView,
    revoke_token,
    rotate_token,
)


class OptionalSlashRouter(SimpleRouter):
    """Routes that answer with or without the trailing slash (`.../revoke` and `.../revoke/`),
    so integrations need not guess and POSTs are never lost to an APPEND_SLASH redirect."""

    def __init__(self) -> None:
        super().__init__()
        self.trailing_slash = "/?"


router = OptionalSlashRouter()
router.register("api-keys", APIKeyViewSet, basename="api-key")

urlpatterns = [
    path("auth/token", ObtainTokenView.as_view(), name="auth-token"),
    path("auth/token/rotate", rotate_token, name="auth-token-rotate"),
    path("auth/token/revoke", revoke_token, name="auth-token-revoke"),
    path("auth/jwt", JWTObtainView.as_view(), name="auth-jwt"),
    path("auth/jwt/refresh", JWTRefreshView.as_view(), name="auth-jwt-refresh"),
    path("auth/jwt/revoke", JWTRevokeView.as_view(), name="auth-jwt-revoke"),
    *router.urls,
]
