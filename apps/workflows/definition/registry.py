"""The activity registry: every activity type a definition may name.

Built-in activities live in apps/executions/activities/; packages add their own
with `register_activity` (or the `workflow_builder.activities` entry point group,
loaded when the executions app starts). Each carries a JSON Schema for its
params that the validator and the editor's forms use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ActivitySpec:
    name: str
    fn: Callable[..., Any]
    params_schema: dict = field(default_factory=lambda: {"type": "object"})
    description: str = ""
    # Local activities are cheap and side-effect free: the worker that finished the
    # previous step may run them inline instead of paying a queue hop.
    local: bool = False
    # Activities that reach outside the system (HTTP, email, LLM) are replaced by
    # declared outputs in dry runs.
    external: bool = False
    # Secrets: param names whose values are redacted from events and exports.
    secret_params: tuple[str, ...] = ()
    # Params the engine passes through untouched (e.g. transform's mapping, whose
    # JSONPaths read the `source` value rather than the run's data).
    raw_params: tuple[str, ...] = ()


_REGISTRY: dict[str, ActivitySpec] = {}


def register_activity(
    name: str,
    *,
    params_schema: dict | None = None,
    description: str = "",
    local: bool = False,
    external: bool = False,
    secret_params: tuple[str, ...] = (),
    raw_params: tuple[str, ...] = (),
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register `fn(params: dict, ctx) -> output` as activity `name`."""

    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        _REGISTRY[name] = ActivitySpec(
            name=name,
            fn=fn,
            params_schema=params_schema or {"type": "object"},
            description=description or (fn.__doc__ or "").strip().splitlines()[0]
            if (description or fn.__doc__)
            else "",
            local=local,
            external=external,
            secret_params=secret_params,
            raw_params=raw_params,
        )
        return fn

    return decorator


def get_activity(name: str) -> ActivitySpec | None:
    return _REGISTRY.get(name)


def activity_names() -> list[str]:
    return sorted(_REGISTRY)


def all_activities() -> list[ActivitySpec]:
    return [_REGISTRY[name] for name in sorted(_REGISTRY)]
