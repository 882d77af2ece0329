from django.urls import path
from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.trailing_slash = "/?"
router.register(r"workflows/(?P<workflow_pk>\d+)/schedules", views.ScheduleViewSet, basename="workflow-schedule")
router.register(
    r"workflows/(?P<workflow_pk>\d+)/event-triggers", views.EventTriggerViewSet, basename="workflow-event-trigger"
)
router.register(r"workflows/(?P<workflow_pk>\d+)/webhooks", views.WebhookViewSet, basename="workflow-webhook")

urlpatterns = [
    path("events", views.events, name="events"),
    path("hooks/<str:token>", views.InboundWebhookView.as_view(), name="inbound-webhook"),
    *router.urls,
]
