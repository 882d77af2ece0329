from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.trailing_slash = "/?"
router.register("work-items", views.WorkItemViewSet, basename="work-item")

urlpatterns = router.urls
