from django.urls import path
from rest_framework.routers import SimpleRouter

from . import views


class OptionalSlashRouter(SimpleRouter):
    def __init__(self) -> None:
        super().__init__()
        self.trailing_slash = "/?"


router = OptionalSlashRouter()
router.register("credentials", views.CredentialViewSet, basename="credential")

urlpatterns = [
    path("ai/capabilities", views.capabilities, name="ai-capabilities"),
    path("ai/validate", views.validate_definition, name="ai-validate"),
    path("ai/test", views.test_definition, name="ai-test"),
    path("ai/interpret", views.interpret, name="ai-interpret"),
    path("ai/usage", views.usage, name="ai-usage"),
    *router.urls,
]
