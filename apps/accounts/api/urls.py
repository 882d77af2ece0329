from django.urls import path
from rest_framework.routers import SimpleRouter

from .views import APIKeyViewSet, ObtainTokenView


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
    *router.urls,
]
