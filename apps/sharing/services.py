"""Object permissions on workflows (django-guardian), and the fetch helper every
view, endpoint and consumer uses.

Levels map onto guardian permissions:

    view   -> view_workflow
    change -> view_workflow, change_workflow         ("edit" in the UI)
    admin  -> view, change, delete, admin_workflow  (may share)

Sharing sits below the workflows app (docs/architecture.md): it names the Workflow model by its app
label through Django's app registry, as guardian's "workflows.view_workflow" strings already do,
and never imports apps.workflows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.apps import apps as app_registry
from django.contrib.auth.models import Group, User
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404
from guardian.shortcuts import assign_perm, get_objects_for_user, get_perms, remove_perm

from apps.accounts import roles
from apps.accounts.services import record_audit
from apps.accounts.types import AnyUser

if TYPE_CHECKING:
    from apps.workflows.models import Workflow

LEVELS: dict[str, list[str]] = {
    "view": ["view_workflow"],
    "change": ["view_workflow", "change_workflow"],
    "admin": ["view_workflow", "change_workflow", "delete_workflow", "admin_workflow"],
}
LEVEL_ALIASES = {"edit": "change", "read": "view"}
PERM_CODENAMES = {
    "view": "view_workflow",
    "change": "change_workflow",
    "delete": "delete_workflow",
    "admin": "admin_workflow",
}


class PermissionDeniedToShare(Exception):
    pass


def normalize_level(level: str) -> str:
    level = LEVEL_ALIASES.get(level, level)
    if level not in LEVELS:
        raise ValueError(f"unknown share level {level!r}; use one of: view, edit, admin")
    return level


def grant_owner_permissions(workflow: Workflow) -> None:
    for codename in LEVELS["admin"]:
        assign_perm(f"workflows.{codename}", workflow.owner, workflow)


def _workflow_model() -> type[Workflow]:
    return app_registry.get_model("workflows", "Workflow")


def visible_workflows(user: AnyUser, perm: str = "view") -> QuerySet[Workflow]:
    """Workflows the user may see (owned, shared with them or with one of their teams)."""
    Workflow = _workflow_model()
    if not user.is_authenticated:
        return Workflow.objects.none()
    return get_objects_for_user(user, f"workflows.{PERM_CODENAMES[perm]}", klass=Workflow, accept_global_perms=True)


def has_workflow_perm(user: AnyUser, workflow: Workflow, perm: str = "view") -> bool:
    if not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser:
        return True
    return user.has_perm(f"workflows.{PERM_CODENAMES[perm]}", workflow) or user.has_perm(
        f"workflows.{PERM_CODENAMES[perm]}"
    )


def access_workflow(user: AnyUser, pk: int | str, perm: str = "view", *, lock: bool = False) -> Workflow:
    """Return the workflow if `user` holds `perm` on it.

    Raises Http404 when the user may not even view it (so strangers learn nothing),
    and PermissionDenied when they may view but not do `perm`. With lock=True the
    row is locked FOR UPDATE (call inside a transaction).
    """
    Workflow = _workflow_model()
    qs = Workflow.objects.select_related("owner", "team")
    if lock:
        qs = qs.select_for_update(of=("self",))
    try:
        workflow = qs.get(pk=pk)
    except (Workflow.DoesNotExist, ValueError, TypeError):
        raise Http404("No such workflow.") from None
    if not has_workflow_perm(user, workflow, "view"):
        raise Http404("No such workflow.")
    if perm != "view" and not has_workflow_perm(user, workflow, perm):
        raise PermissionDenied(f"You need the '{perm}' permission on this workflow.")
    return workflow


def run_initiator(execution) -> User | None:
    """Whose rights a run acts with: the user who started it (for trigger and schedule runs,
    the user who set the trigger or schedule up), or its workflow's owner when the run
    records no one (started from code, or by a trigger nobody owns)."""
    return execution.created_by if execution.created_by_id else execution.workflow.owner


def can_start_child(initiator: User | None, child_workflow: Workflow) -> str | None:
    """Why a run acting as `initiator` may not start `child_workflow` as a child (None: it may).

    The rule is the one for starting it by hand: an active user holding the run ("change")
    permission on an active workflow. A child the initiator may not even view reads as not
    found, so a run learns nothing about workflows its initiator cannot see.
    """
    who = initiator.get_username() if initiator is not None else "nobody"
    if initiator is None or not has_workflow_perm(initiator, child_workflow, "view"):
        return f"no workflow with slug {child_workflow.slug!r} that {who} (who started this run) may run"
    if not has_workflow_perm(initiator, child_workflow, "change"):
        return f"{who} (who started this run) may view workflow {child_workflow.slug!r} but not run it"
    if not roles.has_capability(initiator, roles.RUN_WORKFLOWS):
        return f"{who} (who started this run) has no role that may start runs"
    if not child_workflow.is_active:
        return f"workflow {child_workflow.slug!r} is inactive: it starts no runs"
    return None


def can_run_as(initiator: User | None, workflow: Workflow) -> str | None:
    """Why a schedule or webhook set up by `initiator` may not start `workflow` now (None: it
    may): its creator must still be an active user with the run permission and a role that
    starts runs, so revoking a share or a role also stops what they left running."""
    if initiator is None or not initiator.is_active:
        return "the user who set this up is gone or inactive"
    if not has_workflow_perm(initiator, workflow, "change"):
        return f"{initiator.get_username()}, who set this up, may no longer run this workflow"
    if not roles.has_capability(initiator, roles.RUN_WORKFLOWS):
        return f"{initiator.get_username()}, who set this up, has no role that may start runs"
    return None


def share_workflow(workflow: Workflow, grantee: User | Group, level: str, *, acting_user) -> None:
    """Give `grantee` exactly `level` on the workflow (replacing what they had).

    The caller has checked that acting_user holds admin on the workflow.
    """
    level = normalize_level(level)
    for codename in LEVELS["admin"]:
        remove_perm(f"workflows.{codename}", grantee, workflow)
    for codename in LEVELS[level]:
        assign_perm(f"workflows.{codename}", grantee, workflow)
    record_audit(
        "share_granted",
        actor=acting_user,
        target=f"workflow {workflow.pk}",
        detail={
            "grantee": str(grantee),
            "grantee_type": "group" if isinstance(grantee, Group) else "user",
            "level": level,
        },
    )


def unshare_workflow(workflow: Workflow, grantee: User | Group, *, acting_user) -> None:
    for codename in LEVELS["admin"]:
        remove_perm(f"workflows.{codename}", grantee, workflow)
    record_audit(
        "share_revoked",
        actor=acting_user,
        target=f"workflow {workflow.pk}",
        detail={"grantee": str(grantee), "grantee_type": "group" if isinstance(grantee, Group) else "user"},
    )


def level_of(perms: list[str] | set[str]) -> str | None:
    perms = set(perms)
    if "admin_workflow" in perms:
        return "admin"
    if "change_workflow" in perms:
        return "change"
    if "view_workflow" in perms:
        return "view"
    return None


def user_level(user: User, workflow: Workflow) -> str | None:
    if user.is_superuser:
        return "admin"
    return level_of(get_perms(user, workflow))
