"""Permission-checked fetch of executions, used by every view, endpoint and consumer.

A user may see a run when they may view its workflow. Acting on it (cancel, pause, signal,
pin: perm "change") needs the workflow's change permission for runs they started (or that
nobody started), its admin permission for runs others started, or else the operator role,
which acts on any run it can see. Retrying (perm "run") starts a run: it needs that and a
role that may start runs (apps/accounts/roles.py).
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404

from apps.accounts import roles
from apps.sharing.services import has_workflow_perm, visible_workflows

from .models import Execution


def visible_executions(user) -> QuerySet[Execution]:
    if not getattr(user, "is_authenticated", False):
        return Execution.objects.none()
    if user.is_superuser:
        return Execution.objects.all()
    return Execution.objects.filter(workflow__in=visible_workflows(user).values("pk"))


def access_execution(user, pk, perm: str = "view") -> Execution:
    """Return the execution if `user` holds `perm` on its workflow.

    Raises Http404 when they may not see it at all, PermissionDenied when they may
    see but not `perm` it.
    """
    try:
        execution = Execution.objects.select_related("workflow", "workflow__owner").get(pk=pk)
    except (Execution.DoesNotExist, ValueError, TypeError):
        raise Http404("No such execution.") from None
    if not has_workflow_perm(user, execution.workflow, "view"):
        raise Http404("No such execution.")
    if perm in ("change", "run"):
        _check_may_act(user, execution)
        if perm == "run":
            roles.require_capability(user, roles.RUN_WORKFLOWS)
    elif perm != "view" and not has_workflow_perm(user, execution.workflow, perm):
        raise PermissionDenied(f"You need the '{perm}' permission on this workflow.")
    return execution


def may_act_on(user, execution: Execution, perm: str = "change") -> bool:
    """Whether access_execution(user, execution.pk, perm) would let `user` through (for pages
    deciding which buttons to show)."""
    try:
        _check_may_act(user, execution)
        if perm == "run":
            roles.require_capability(user, roles.RUN_WORKFLOWS)
    except PermissionDenied:
        return False
    return True


def _check_may_act(user, execution: Execution) -> None:
    if roles.has_capability(user, roles.ACT_ON_OTHERS_RUNS):
        return
    if not has_workflow_perm(user, execution.workflow, "change"):
        raise PermissionDenied("You need the 'change' permission on this workflow.")
    if execution.created_by_id not in (None, user.pk) and not has_workflow_perm(user, execution.workflow, "admin"):
        raise PermissionDenied(
            "Acting on a run someone else started needs the workflow's admin permission or the operator role."
        )
