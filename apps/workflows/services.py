"""Writes to workflows go through these functions (views, API, admin and commands call them)."""

from __future__ import annotations

from typing import Any

import reversion
from django.db import transaction
from django.utils.text import slugify

from apps.sharing.services import grant_owner_permissions

from .models import Workflow

UPDATABLE_FIELDS = ("name", "slug", "description", "tags", "definition", "is_active", "team")


def unique_slug(base: str, *, exclude_pk: int | None = None, queryset=None, fallback: str = "workflow") -> str:
    """A slug from `base` not yet used in `queryset` (default: workflows), made unique with -2, -3 …"""
    root = slugify(base)[:180] or fallback
    slug, n = root, 2
    qs = Workflow.objects.all() if queryset is None else queryset
    if exclude_pk:
        qs = qs.exclude(pk=exclude_pk)
    while qs.filter(slug=slug).exists():
        slug = f"{root}-{n}"
        n += 1
    return slug


@transaction.atomic
def create_workflow(*, owner, name: str, acting_user=None, comment: str = "Created", **fields: Any) -> Workflow:
    """Create a workflow owned by `owner`, grant them every permission, record version 1."""
    with reversion.create_revision(atomic=False):
        workflow = Workflow(owner=owner, name=name)
        for key, value in fields.items():
            if key in UPDATABLE_FIELDS and value is not None:
                setattr(workflow, key, value)
        if not workflow.slug:
            workflow.slug = unique_slug(name)
        workflow.save()
        reversion.set_user(acting_user or owner)
        reversion.set_comment(comment)
    grant_owner_permissions(workflow)
    return workflow


@transaction.atomic
def update_workflow(workflow: Workflow, *, acting_user, comment: str = "", **changes: Any) -> Workflow:
    """Apply `changes` and record a version authored by `acting_user`."""
    with reversion.create_revision(atomic=False):
        for key, value in changes.items():
            if key not in UPDATABLE_FIELDS:
                raise ValueError(f"{key} cannot be changed")
            setattr(workflow, key, value)
        workflow.save()
        reversion.set_user(acting_user)
        reversion.set_comment(comment or "Updated " + ", ".join(sorted(changes)) if changes else "Saved")
    return workflow


def delete_workflow(workflow: Workflow, *, acting_user) -> None:
    workflow.delete()
