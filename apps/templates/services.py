"""Writes to templates go through these functions; views, API, admin and commands call them."""

from __future__ import annotations

from typing import Any

import reversion
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import Http404
from guardian.shortcuts import get_objects_for_user

from apps.accounts import roles
from apps.accounts.services import record_audit
from apps.sharing.services import has_workflow_perm
from apps.sharing.shares import grant_owner, has_level
from apps.workflows import services as workflow_services
from apps.workflows.models import Workflow

from .models import TemplateUsage, WorkflowTemplate

TEMPLATE_FIELDS = ("name", "slug", "category", "description", "tags", "definition", "sample_input", "is_public")
CREATE_ONLY_FIELDS = ("source_workflow",)


def unique_template_slug(base: str, *, exclude_pk: int | None = None) -> str:
    from apps.workflows.services import unique_slug

    return unique_slug(base, exclude_pk=exclude_pk, queryset=WorkflowTemplate.objects.all(), fallback="template")


def visible_templates(user: AbstractBaseUser) -> QuerySet[WorkflowTemplate]:
    """Public templates, the user's own, and those shared with them or their teams."""
    if not user.is_authenticated:
        return WorkflowTemplate.objects.none()
    if user.is_superuser:
        return WorkflowTemplate.objects.all()
    shared = get_objects_for_user(
        user, "workflow_templates.view_workflowtemplate", klass=WorkflowTemplate, accept_global_perms=False
    ).values("pk")
    return WorkflowTemplate.objects.filter(Q(is_public=True) | Q(owner=user) | Q(pk__in=shared))


def access_template(user: AbstractBaseUser, pk: Any, level: str = "view") -> WorkflowTemplate:
    """The template if user holds `level` on it; 404 when they may not see it, 403 when they
    may see but not do `level`."""
    try:
        template = visible_templates(user).select_related("owner").get(pk=pk)
    except (WorkflowTemplate.DoesNotExist, ValueError, TypeError):
        raise Http404("No such template.") from None
    if level != "view" and not has_level(user, template, level):
        raise PermissionDenied(f"You need the '{level}' permission on this template.")
    return template


def check_can_publish(user: AbstractBaseUser, source_workflow: Workflow | None) -> None:
    """Raise PermissionDenied unless `user` may make public a template saved from
    `source_workflow`: that needs admin rights on the workflow (a viewer of a workflow must not
    expose its definition to everyone)."""
    if source_workflow is not None and not has_workflow_perm(user, source_workflow, "admin"):
        raise PermissionDenied("Publishing a template needs the admin permission on the workflow it was saved from.")


def _record_published(template: WorkflowTemplate, user: AbstractBaseUser) -> None:
    record_audit(
        "template_published", actor=user, target=f"template {template.pk}",
        detail={"template": template.slug, "source_workflow": template.source_workflow_id},
    )


@transaction.atomic
def create_template(*, owner: AbstractBaseUser, name: str, definition: dict, comment: str = "Created", **fields: Any) -> WorkflowTemplate:
    with reversion.create_revision(atomic=False):
        template = WorkflowTemplate(owner=owner, name=name, definition=definition)
        for key, value in fields.items():
            if key in TEMPLATE_FIELDS + CREATE_ONLY_FIELDS and value is not None:
                setattr(template, key, value)
        if not template.slug:
            template.slug = unique_template_slug(name)
        template.save()
        reversion.set_user(owner)
        reversion.set_comment(comment)
    grant_owner(template)
    if template.is_public:
        _record_published(template, owner)
    return template


@transaction.atomic
def update_template(template: WorkflowTemplate, *, acting_user: AbstractBaseUser, comment: str = "", **changes: Any) -> WorkflowTemplate:
    """Apply `changes`; making it public needs admin on its source workflow (PermissionDenied)."""
    publishing = changes.get("is_public") is True and not template.is_public
    if publishing:
        check_can_publish(acting_user, template.source_workflow)
    with reversion.create_revision(atomic=False):
        for key, value in changes.items():
            if key not in TEMPLATE_FIELDS:
                raise ValueError(f"{key} cannot be changed")
            setattr(template, key, value)
        template.save()
        reversion.set_user(acting_user)
        reversion.set_comment(comment or ("Updated " + ", ".join(sorted(changes)) if changes else "Saved"))
    if publishing:
        _record_published(template, acting_user)
    return template


def delete_template(template: WorkflowTemplate, *, acting_user: AbstractBaseUser) -> None:
    template.delete()


@transaction.atomic
def instantiate_template(template: WorkflowTemplate, *, user: AbstractBaseUser, name: str | None = None) -> Workflow:
    """Make a workflow owned by `user` from the template and record the usage (PermissionDenied
    when the user's role may not create workflows)."""
    roles.require_capability(user, roles.CREATE_WORKFLOWS)
    workflow = workflow_services.create_workflow(
        owner=user,
        acting_user=user,
        name=name or template.name,
        description=template.description,
        tags=list(template.tags),
        definition=template.definition,
        comment=f"Created from template {template.slug}",
    )
    TemplateUsage.objects.create(template=template, workflow=workflow, created_by=user)
    return workflow


@transaction.atomic
def save_workflow_as_template(workflow: Workflow, *, user: AbstractBaseUser, name: str | None = None, **fields: Any) -> WorkflowTemplate:
    """A template owned by `user` holding the workflow's current definition (private unless
    `is_public`, which needs admin rights on the workflow: PermissionDenied otherwise)."""
    if fields.get("is_public"):
        check_can_publish(user, workflow)
    fields["source_workflow"] = workflow
    fields.setdefault("description", workflow.description)
    fields.setdefault("tags", list(workflow.tags))
    return create_template(
        owner=user,
        name=name or workflow.name,
        definition=workflow.definition,
        comment=f"Saved from workflow {workflow.slug}",
        **fields,
    )
