"""Writes to workflows go through these functions (views, API, admin and commands call them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import reversion
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils.text import slugify

from apps.accounts.services import record_audit
from apps.sharing.services import grant_owner_permissions

from .models import Workflow

UPDATABLE_FIELDS = ("name", "slug", "description", "tags", "definition", "is_active", "team")

#
# Who may save what into a definition
#

# (acting user, new definition, previous definition or None) -> problems. Feature apps add
# theirs in AppConfig.ready() (connectors: the credentials a definition names).
DefinitionCheck = Callable[[Any, Any, Any], list[str]]
_definition_checks: list[DefinitionCheck] = []


def register_definition_check(check: DefinitionCheck) -> DefinitionCheck:
    if check not in _definition_checks:
        _definition_checks.append(check)
    return check


class DefinitionNotPermitted(PermissionDenied):
    """The acting user may not put something the definition names into it (e.g. a credential)."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


def check_definition_permitted(acting_user, definition: Any, previous: Any = None) -> list[str]:
    """Why `acting_user` may not save `definition` over `previous` (empty list: they may)."""
    if acting_user is None:
        return []  # code paths with no user (seeding, migrations) are trusted
    problems: list[str] = []
    for check in _definition_checks:
        problems.extend(check(acting_user, definition, previous))
    return problems


def _require_definition_permitted(acting_user, definition: Any, previous: Any) -> None:
    problems = check_definition_permitted(acting_user, definition, previous)
    if problems:
        raise DefinitionNotPermitted(problems)


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
    """Create a workflow owned by `owner`, grant them every permission, record version 1.

    Raises DefinitionNotPermitted when the definition names something acting_user may not use.
    """
    if "definition" in fields:
        _require_definition_permitted(acting_user or owner, fields["definition"], None)
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
    """Apply `changes` and record a version authored by `acting_user`; a changed definition
    is recorded in the audit log too.

    Raises DefinitionNotPermitted when the new definition names something acting_user may not use.
    """
    previous = workflow.definition
    definition_changed = "definition" in changes and changes["definition"] != previous
    if definition_changed:
        _require_definition_permitted(acting_user, changes["definition"], previous)
    with reversion.create_revision(atomic=False):
        for key, value in changes.items():
            if key not in UPDATABLE_FIELDS:
                raise ValueError(f"{key} cannot be changed")
            setattr(workflow, key, value)
        workflow.save()
        reversion.set_user(acting_user)
        reversion.set_comment(comment or "Updated " + ", ".join(sorted(changes)) if changes else "Saved")
    if definition_changed:
        record_audit(
            "definition_edited",
            actor=acting_user,
            target=f"workflow {workflow.pk}",
            detail={"workflow": workflow.slug, "comment": comment[:200]},
        )
    return workflow


@transaction.atomic
def delete_workflow(workflow: Workflow, *, acting_user, request=None) -> None:
    """Delete the workflow (its runs go with it) and record who did it in the audit log."""
    record_audit(
        "workflow_deleted",
        actor=acting_user,
        request=request,
        target=f"workflow {workflow.pk}",
        detail={"workflow": workflow.slug, "name": workflow.name, "owner": workflow.owner.get_username()},
    )
    workflow.delete()
