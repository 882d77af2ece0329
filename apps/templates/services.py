"""Writes to templates go through these functions; views, API, admin and commands call them."""

from __future__ import annotations

from typing import Any

import reversion
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import Http404
from guardian.shortcuts import get_objects_for_user
from reversion.models import Version

from apps.accounts import roles
from apps.accounts.services import record_audit
from apps.accounts.types import AnyUser
from apps.sharing.services import has_workflow_perm
from apps.sharing.shares import grant_owner, has_level
from apps.versions.services import _field_changes, diff_definitions
from apps.workflows import services as workflow_services
from apps.workflows.models import Workflow
from apps.workflows.services import unique_slug

from .models import TemplateReview, TemplateUsage, WorkflowTemplate, WorkflowTemplateQuerySet

TEMPLATE_FIELDS = ("name", "slug", "category", "description", "tags", "definition", "sample_input", "is_public")
CREATE_ONLY_FIELDS = ("source_workflow",)


def unique_template_slug(base: str, *, exclude_pk: int | None = None) -> str:
    return unique_slug(base, exclude_pk=exclude_pk, queryset=WorkflowTemplate.objects.all(), fallback="template")


def visible_templates(user: AnyUser) -> WorkflowTemplateQuerySet:
    """Public templates, the user's own, and those shared with them or their teams."""
    if not user.is_authenticated:
        return WorkflowTemplate.objects.none()
    if user.is_superuser:
        return WorkflowTemplate.objects.all()
    shared = get_objects_for_user(
        user, "workflow_templates.view_workflowtemplate", klass=WorkflowTemplate, accept_global_perms=False
    ).values("pk")
    return WorkflowTemplate.objects.filter(Q(is_public=True) | Q(owner=user) | Q(pk__in=shared))


def access_template(user: User, pk: Any, level: str = "view") -> WorkflowTemplate:
    """The template if user holds `level` on it; 404 when they may not see it, 403 when they
    may see but not do `level`."""
    try:
        template = visible_templates(user).select_related("owner").get(pk=pk)
    except (WorkflowTemplate.DoesNotExist, ValueError, TypeError):
        raise Http404("No such template.") from None
    if level != "view" and not has_level(user, template, level):
        raise PermissionDenied(f"You need the '{level}' permission on this template.")
    return template


def check_can_publish(user: User, source_workflow: Workflow | None) -> None:
    """Raise PermissionDenied unless `user` may make public a template saved from
    `source_workflow`: that needs admin rights on the workflow (a viewer of a workflow must not
    expose its definition to everyone)."""
    if source_workflow is not None and not has_workflow_perm(user, source_workflow, "admin"):
        raise PermissionDenied("Publishing a template needs the admin permission on the workflow it was saved from.")


def _record_published(template: WorkflowTemplate, user: User) -> None:
    record_audit(
        "template_published",
        actor=user,
        target=f"template {template.pk}",
        detail={"template": template.slug, "source_workflow": template.source_workflow_id},
    )


@transaction.atomic
def create_template(
    *, owner: User, name: str, definition: dict, comment: str = "Created", **fields: Any
) -> WorkflowTemplate:
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
def update_template(
    template: WorkflowTemplate, *, acting_user: User, comment: str = "", **changes: Any
) -> WorkflowTemplate:
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


def delete_template(template: WorkflowTemplate, *, acting_user: User) -> None:
    template.delete()


@transaction.atomic
def instantiate_template(template: WorkflowTemplate, *, user: User, name: str | None = None) -> Workflow:
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
def save_workflow_as_template(
    workflow: Workflow, *, user: User, name: str | None = None, **fields: Any
) -> WorkflowTemplate:
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


#
# History: versions, diff, restore
#


def template_versions(template: WorkflowTemplate) -> QuerySet[Version]:
    """The template's versions (reversion), newest first, with author, time and note."""
    return Version.objects.get_for_object(template).select_related("revision", "revision__user").order_by("-pk")


def get_template_version(template: WorkflowTemplate, version_id: Any) -> Version:
    try:
        return template_versions(template).get(pk=version_id)
    except (Version.DoesNotExist, ValueError, TypeError):
        raise Http404("No such version of this template.") from None


def template_version_fields(version: Version) -> dict[str, Any]:
    data = version.field_dict
    return {key: data.get(key) for key in TEMPLATE_FIELDS}


def diff_template_versions(old: Version, new: Version) -> dict[str, Any]:
    """The definition diff (nodes, edges, top-level fields) plus the template's other fields."""
    a, b = template_version_fields(old), template_version_fields(new)
    result = diff_definitions(a.get("definition"), b.get("definition"))
    result["fields"] = [
        c.as_dict()
        for key in TEMPLATE_FIELDS
        if key != "definition"
        for c in _field_changes(a.get(key), b.get(key), key)
    ]
    result["from"], result["to"] = old.pk, new.pk
    return result


@transaction.atomic
def restore_template_version(template: WorkflowTemplate, version: Version, *, acting_user: User) -> WorkflowTemplate:
    """Bring the template back to `version`'s content as a new version "Restored version N".

    Takes the template's row lock. The slug is restored unless another template took it meanwhile.
    """
    template = WorkflowTemplate.objects.select_for_update().get(pk=template.pk)
    data = template_version_fields(version)
    number = template_versions(template).filter(pk__lte=version.pk).count()
    changes = {
        key: data[key] for key in TEMPLATE_FIELDS if key in version.field_dict and getattr(template, key) != data[key]
    }
    if "slug" in changes and WorkflowTemplate.objects.filter(slug=changes["slug"]).exclude(pk=template.pk).exists():
        changes.pop("slug")
    return update_template(template, acting_user=acting_user, comment=f"Restored version {number}", **changes)


#
# Ratings and reviews
#


def has_used(template: WorkflowTemplate, user: AnyUser) -> bool:
    """Whether `user` made a workflow from the template (only they may review it)."""
    return user.is_authenticated and TemplateUsage.objects.filter(template=template, created_by=user).exists()


def check_review(rating: Any, text: Any) -> dict[str, str]:
    """Problems with a review, by field; empty when it is fine."""
    problems: dict[str, str] = {}
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
        problems["rating"] = "Give a whole number of stars from 1 to 5."
    if not isinstance(text, str):
        problems["text"] = "The review must be text."
    elif len(text.strip()) > 500:
        problems["text"] = f"Keep the review to 500 characters (it has {len(text.strip())})."
    return problems


@transaction.atomic
def review_template(template: WorkflowTemplate, *, user: User, rating: Any, text: str = "") -> TemplateReview:
    """Create or replace `user`'s review of the template.

    Raises PermissionDenied when the user never used the template, ValidationError (by field)
    for a bad rating or text.
    """
    if not has_used(template, user):
        raise PermissionDenied("Only people who made a workflow from this template can review it.")
    problems = check_review(rating, text)
    if problems:
        raise ValidationError(problems)
    review, _ = TemplateReview.objects.update_or_create(
        template=template, user=user, defaults={"rating": rating, "text": text.strip()}
    )
    return review


def delete_review(template: WorkflowTemplate, *, user: User) -> bool:
    """Remove `user`'s review of the template; return whether there was one."""
    return TemplateReview.objects.filter(template=template, user=user).delete()[0] > 0
