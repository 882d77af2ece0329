from django.urls import path

from . import views

urlpatterns = [
    path("metrics/summary", views.summary, name="metrics-summary"),
    path("metrics/timeseries", views.timeseries, name="metrics-timeseries"),
    path("metrics/slowest-steps", views.slowest_steps, name="metrics-slowest-steps"),
    path("metrics/failures", views.failures, name="metrics-failures"),
    path("metrics/anomalies", views.anomalies, name="metrics-anomalies"),
    path("metrics/export.csv", views.export_csv, name="metrics-export"),
]
