"""The condition node: the first case whose condition holds chooses the edge (or the default).
A condition that raises at run time (a pattern from run data that does not compile) fails the node."""

from __future__ import annotations

from typing import TYPE_CHECKING

from apps.workflows.definition import expressions
from apps.workflows.definition.plan import NodePlan

from ...choices import StepStatus

if TYPE_CHECKING:
    from ..runtime import Runtime


def activate(rt: Runtime, scope: str, node: NodePlan, extra: dict | None) -> None:
    ctx = rt.context(scope, extra)
    chosen, case_index = None, None
    try:
        for i, case in enumerate(node.spec.get("cases", [])):
            if expressions.evaluate(case["when"], ctx):
                chosen, case_index = case["to"], i
                break
    except (expressions.ConditionError, KeyError, TypeError) as exc:
        rt._fail_now(scope, node, "ConditionError", str(exc))
        return
    except Exception as exc:  # e.g. re.error from a pattern taken from run data
        rt._fail_now(scope, node, "ConditionError", f"{type(exc).__name__}: {exc}")
        return
    if chosen is None:
        chosen = node.spec.get("default")
    output = {"chosen": chosen, "case": case_index}
    step = rt.new_step(scope, node, status=StepStatus.COMPLETED, output=output, started_at=rt.now, finished_at=rt.now)
    rt.event("condition_evaluated", node=node.id, scope=scope, step=step, payload=output)
    rt.on_finished(step)
