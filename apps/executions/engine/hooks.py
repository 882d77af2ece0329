"""Hooks the engine calls and higher rooms fill in, so the engine imports none of their services.

An app registers its functions in its `AppConfig.ready()` (as Django's admin autodiscovery
does); the engine calls them by name. A hook nobody registered is a clear failure of the node
that needed it (`HookMissing`), never an ImportError swallowed in silence.

Hooks:

- ``offer_approval(step, *, title, description, users, groups, outcomes, due_at, allocation)``: a work item
  for an approval step (apps.worklist); returns it.
- ``withdraw_approvals(step_ids)``: approvals whose steps were cancelled (apps.worklist).
- ``map_output(mapping, data)``: an `output_map` applied to a step's output (apps.connectors).
- ``correlation_id()``: the id of the request or task that starts a run (apps.metrics).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_HOOKS: dict[str, Callable[..., Any]] = {}


class HookMissing(LookupError):
    """No app registered the hook (the app is not installed)."""


def register(name: str, function: Callable[..., Any]) -> None:
    _HOOKS[name] = function


def registered(name: str) -> bool:
    return name in _HOOKS


def call(name: str, *args: Any, **kwargs: Any) -> Any:
    try:
        function = _HOOKS[name]
    except KeyError:
        raise HookMissing(f"no app provides the engine hook {name!r}") from None
    return function(*args, **kwargs)
