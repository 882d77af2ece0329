import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workflowsite.settings")

app = Celery("workflowsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
