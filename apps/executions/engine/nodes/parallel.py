"""The parallel node: its branches start together (a chord when it joins all single-step
branches); it joins when all, any, or N of them completed, and fails once it no longer can."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from apps.workflows.definition.plan import NodePlan

from ...choices import StepStatus
from ...models import StepRun

if TYPE_CHECKING:
    from ..runtime import Runtime


def activate(rt: Runtime, scope: str, node: NodePlan, extra: dict | None) -> None:
    branches = len(node.child_scopes)
    step = rt.new_step(
        scope, node, status=StepStatus.WAITING, started_at=rt.now, state={"total": branches, "done": {}, "results": {}}
    )
    rt.event(
        "parallel_started",
        node=node.id,
        scope=scope,
        step=step,
        payload={"branches": branches, "join": node.spec.get("join", "all")},
    )
    rt._fan_out(
        step, node, [(f"{scope}{node.id}[{i}]/", scope_id) for i, scope_id in enumerate(node.child_scopes)], extra
    )


def child_done(
    rt: Runtime,
    container: StepRun,
    node: NodePlan,
    idx: int,
    *,
    ok: bool,
    result: Any = None,
    error: dict | None = None,
) -> None:
    """Branch `idx` finished."""
    state = container.state
    key = str(idx)
    state["done"][key] = "completed" if ok else "failed"
    if ok:
        state["results"][key] = result
    rt.touch(container)
    join = node.spec.get("join", "all")
    total = state["total"]
    needed = total if join == "all" else 1 if join == "any" else int(join["count"])
    succeeded = sum(1 for v in state["done"].values() if v == "completed")
    failed = sum(1 for v in state["done"].values() if v == "failed")
    if succeeded >= needed:
        rt._cancel_scope(f"{container.scope}{node.id}[", reason=f"{node.id} joined")
        if join == "all":
            output = [state["results"].get(str(i)) for i in range(total)]
        elif join == "any":
            output = result
        else:
            output = [state["results"][k] for k in sorted(state["results"], key=int)]
        rt._finish_container(container, node, ok=True, output=output)
    elif failed > total - needed:
        rt._cancel_scope(f"{container.scope}{node.id}[", reason=f"{node.id} can no longer join")
        rt._finish_container(container, node, ok=False, error=error)
