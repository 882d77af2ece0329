"""Links between runs: child workflows and continue-as-new.

Child workflows and long-running loops arrive with their issues; the hooks below
are what the runtime calls, so both features plug in without touching it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .runtime import Runtime


def notify_parent(rt: "Runtime") -> None:
    """A run finished: a parent waiting on it (child_workflow node) is told."""
    return None


def cancel_children_of_steps(rt: "Runtime", step_ids: list[int], reason: str) -> None:
    """Steps were cancelled: child runs they started are cancelled too."""
    return None


def continue_as_new(rt: "Runtime", container, node) -> None:
    """A long-running loop reached `continue_every`: without continue-as-new support
    the loop simply goes on in this run."""
    rt._next_iteration(container, node)
