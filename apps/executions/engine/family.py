"""What a run owes its family when it finishes or its steps are cancelled: telling a waiting
parent (after commit) and cancelling the child runs that can no longer matter. Only rows and
messages, so the runtime can call it without importing the child-run machinery."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import transaction

from ..choices import FINISHED_EXECUTION
from ..models import Execution
from . import messages

if TYPE_CHECKING:
    from .runtime import Runtime


def notify_parent(rt: Runtime) -> None:
    """A run finished: a parent waiting on it is told after commit; a run that did not
    complete takes its children with it."""
    ex = rt.ex
    if ex.parent_id:
        execution_id = ex.pk

        def tell() -> None:
            messages.send(messages.CHILD_FINISHED, execution_id)

        transaction.on_commit(tell)
    if ex.status in ("failed", "cancelled"):
        cancel_children_of_execution(ex.pk, f"parent run {ex.status}")


def cancel_children_of_execution(execution_id: int, reason: str) -> None:
    ids = list(
        Execution.objects.filter(parent_id=execution_id)
        .exclude(status__in=list(FINISHED_EXECUTION))
        .values_list("pk", flat=True)
    )
    _cancel_later(ids, reason)


def cancel_children_of_steps(rt: Runtime, step_ids: list[int], reason: str) -> None:
    """Steps were cancelled: child runs they started are cancelled too."""
    ids = list(
        Execution.objects.filter(parent_step_id__in=step_ids)
        .exclude(status__in=list(FINISHED_EXECUTION))
        .values_list("pk", flat=True)
    )
    _cancel_later(ids, reason)


def _cancel_later(ids: list[int], reason: str) -> None:
    if not ids:
        return

    def send() -> None:
        for child_id in ids:
            messages.send(messages.CANCEL_CHILD, child_id, reason)

    transaction.on_commit(send)
