"""`child_workflow` (start another workflow's run, and wait for it or not) and `await_child`
(wait for a child started earlier). Child runs themselves are managed in engine/children.py."""

from __future__ import annotations

from typing import TYPE_CHECKING

from apps.workflows.definition.plan import NodePlan

from ...models import StepRun
from ..children import await_child, start_child

if TYPE_CHECKING:
    from ..runtime import Runtime


def activate(rt: Runtime, scope: str, node: NodePlan, extra: dict | None) -> None:
    start_child(rt, scope, node, extra)


def retry(rt: Runtime, step: StepRun, node: NodePlan) -> bool:
    """Start the child again if the node's retry policy allows (a child that failed counts)."""
    policy = node.spec.get("retry") or {}
    error = step.error or {}
    if error.get("retryable") is False or error.get("type") in policy.get("non_retryable", []):
        return False
    used = step.state.get("retry_budget_used", step.attempt - 1) + 1
    if used >= int(policy.get("max_attempts", 1)):
        return False
    start_child(rt, step.scope, node, step.state.get("extra"), attempt=step.attempt + 1, budget_used=used)
    return True


class AwaitChild:
    activate = staticmethod(await_child)
