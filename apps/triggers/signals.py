"""Schedules follow their workflow: deactivating a workflow disables its periodic tasks."""

from django.db.models.signals import post_save
from django.dispatch import receiver

from apps.workflows.models import Workflow

from .services import sync_workflow_schedules


@receiver(post_save, sender=Workflow, dispatch_uid="triggers-follow-workflow")
def follow_workflow(sender, instance: Workflow, created: bool, **kwargs) -> None:
    if created:
        return

    sync_workflow_schedules(instance)
