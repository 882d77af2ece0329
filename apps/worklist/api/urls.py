from django.urls import re_path
from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.trailing_slash = "/?"
router.register("work-items", views.WorkItemViewSet, basename="work-item")

urlpatterns = [re_path(r"^work-profile/?$", views.work_profile, name="work-profile"), *router.urls]
