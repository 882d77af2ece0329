"""Activity entries from other apps' writes, without touching their code:

- every committed reversion revision of a workflow (API, UI, admin, import, restore) is
  `created`, `edited` or `restored`, by the revision's user;
- an execution is `ran` when it is saved as running for the first time and `failed` when
  its status is saved as failed (the engine saves status with update_fields);
- a share (apps.sharing's `object_shared`) is `shared`, and the grantee is notified.
"""

from __future__ import annotations

from django.db.models.signals import post_save
from django.dispatch import receiver
from reversion.models import Version
from reversion.signals import post_revision_commit

from apps.executions.choices import ExecutionStatus
from apps.executions.models import Execution
from apps.sharing.signals import object_shared
from apps.workflows.models import Workflow

from .models import Activity
from .services import on_shared, record_activity


@receiver(object_shared)
def shared_activity(sender, obj, grantee, level, acting_user, **kwargs) -> None:
    on_shared(obj, grantee, level, acting_user=acting_user)


@receiver(post_revision_commit)
def workflow_revision_activity(sender, revision, versions, **kwargs) -> None:
    for version in versions:
        if version._model is not Workflow:
            continue
        workflow = Workflow.objects.filter(pk=version.object_id).first()
        if workflow is None:
            continue
        comment = revision.comment or ""
        if comment.startswith("Restored version"):
            verb = Activity.Verb.RESTORED
        elif (
            comment.startswith("Created")
            or not Activity.objects.filter(workflow=workflow).exists()
            and _is_first(version)
        ):
            verb = Activity.Verb.CREATED
        else:
            verb = Activity.Verb.EDITED
        record_activity(verb, workflow=workflow, actor=revision.user, target=f"version {version.pk}")


def _is_first(version) -> bool:
    return not Version.objects.filter(
        content_type_id=version.content_type_id, object_id=version.object_id, pk__lt=version.pk
    ).exists()


@receiver(post_save, sender=Execution)
def execution_activity(sender, instance: Execution, created: bool, update_fields=None, **kwargs) -> None:
    if kwargs.get("raw"):
        return
    status_saved = created or update_fields is None or "status" in update_fields
    if not status_saved or instance.parent_id:
        return
    target = f"execution {instance.pk}"
    if instance.status == ExecutionStatus.RUNNING:
        verb = Activity.Verb.RAN
    elif instance.status == ExecutionStatus.FAILED:
        verb = Activity.Verb.FAILED
    else:
        return
    # (a run just created has no activity yet: one query less when a run starts)
    if not created and Activity.objects.filter(workflow_id=instance.workflow_id, verb=verb, target=target).exists():
        return
    Activity.objects.create(verb=verb, workflow_id=instance.workflow_id, actor=instance.created_by, target=target)
