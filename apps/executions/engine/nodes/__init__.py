"""One module per node type, as viewflow does: what activating a node of that type means, what a
child scope of it finishing means (`child_done`, for containers), and whether a failed step of
it is tried again (`retry`). The runtime (engine/runtime.py) is the core that dispatches to
them; adding a node type is a new module and a line in NODE_TYPES.

    activate(rt, scope, node, extra) -> None
    child_done(rt, container, node, index, *, ok, result=None, error=None) -> None   (containers)
    retry(rt, step, node) -> bool                                                  (optional)
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from . import activity, child_workflow, condition, dynamic, loop, parallel, timer, waits

NODE_TYPES: dict[str, ModuleType | Any] = {
    "activity": activity,
    "condition": condition,
    "timer": timer,
    "parallel": parallel,
    "loop": loop,
    "dynamic": dynamic,
    "child_workflow": child_workflow,
    "await_child": child_workflow.AwaitChild,
    "signal_wait": waits.SignalWait,
    "approval": waits.Approval,
}
