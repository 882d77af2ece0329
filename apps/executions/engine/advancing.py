"""Starting runs and advancing them: checking the input, creating the run and its first steps,
taking finished steps into account under the run's row lock."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from apps.workflows.definition.validator import compile_definition, first_data_error

from ..choices import FINISHED_EXECUTION, ExecutionStatus, StepStatus
from ..models import Execution, StepRun
from . import hooks, store
from .dispatch import _UNUSED_RUN_COLUMNS, _apply, _remember_plan, plan_of
from .failures import _TRANSIENT, _Blame, _fail_on_engine_error
from .runtime import Runtime

logger = logging.getLogger("workflow.engine")


class InputError(ValueError):
    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


def with_input_defaults(definition: dict, data: Any) -> Any:
    """`data` with the input schema's top-level `default`s filled in where it leaves them out
    (as the run dialog pre-fills them), so an API or scheduled run gets the same input."""
    schema = definition.get("input_schema")
    properties = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(data, dict) or not isinstance(properties, dict):
        return data
    defaults = {
        name: prop["default"]
        for name, prop in properties.items()
        if isinstance(prop, dict) and "default" in prop and name not in data
    }
    return {**defaults, **data} if defaults else data


def check_input(definition: dict, data: Any) -> Any:
    """`data` with the input schema's defaults filled in; InputError naming the field when it
    breaks the workflow's input schema."""
    if not isinstance(data, dict):
        raise InputError("input", "the run input must be a JSON object")
    schema = definition.get("input_schema")
    if schema:
        data = with_input_defaults(definition, data)
    problem = first_data_error(schema or None, data)  # without a schema, the storage checks still apply
    if problem:
        path, message = problem
        raise InputError("input" + (f".{path}" if path else ""), message)
    return data


def start_execution(
    workflow,
    input: dict | None = None,
    *,
    acting_user=None,
    trigger: str = "manual",
    parent_step: StepRun | None = None,
    retry_of: Execution | None = None,
    continued_from: Execution | None = None,
    variables: dict | None = None,
    correlation_id: str = "",
    definition: dict | None = None,
    workflow_version: int | None = None,
    queue: str = "",
) -> Execution:
    """Create a run of `workflow` and start it (dispatch happens after commit). `definition`
    (with its `workflow_version`) runs an earlier version instead of the current one; `queue`
    sends the run's steps to that Celery queue.

    Raises DefinitionError if the definition is invalid and InputError if the
    input breaks the input schema; nothing is written then.
    """
    if not correlation_id and hooks.registered("correlation_id"):
        correlation_id = hooks.call("correlation_id")  # the HTTP request's or task's id
    definition = workflow.definition if definition is None else definition
    plan = compile_definition(definition)
    input = check_input(definition, {} if input is None else input)
    with transaction.atomic():
        execution = Execution.objects.create(
            workflow=workflow,
            definition=definition,
            input=input,
            variables={**plan.variables, **(variables or {})},
            trigger=trigger,
            created_by=acting_user if getattr(acting_user, "is_authenticated", False) else None,
            parent=parent_step.execution if parent_step else None,
            parent_step=parent_step,
            retry_of=retry_of,
            continued_from=continued_from,
            status=ExecutionStatus.RUNNING,
            correlation_id=correlation_id,
            workflow_version=workflow_version,
            queue=queue,
        )
        _remember_plan(execution, plan)
        rt = Runtime(execution, plan)
        rt.start()
        effects = rt.flush()
        _apply(effects, execution.pk)
    return execution


def advance(execution_id: int, *, allow_inline: bool = False) -> list[StepRun]:
    """Take finished steps into account and start what is ready.

    Returns local steps the caller (a worker) should run inline. An exception while
    advancing fails the run with an `EngineError` event (see `_fail_on_engine_error`).
    """
    blame = _Blame()
    try:
        with transaction.atomic():
            execution = (
                Execution.objects.select_for_update().defer(*_UNUSED_RUN_COLUMNS).filter(pk=execution_id).first()
            )
            if execution is None:
                return []
            if execution.status in FINISHED_EXECUTION:
                StepRun.objects.filter(execution=execution, advanced=False).update(advanced=True)
                return []
            if execution.status == ExecutionStatus.PAUSED:
                return []
            inbox = _inbox(execution)
            if not inbox:
                return []
            rt = Runtime(execution, plan_of(execution), allow_inline=allow_inline)
            blame.runtime = rt
            return _advance_inbox(rt, inbox)
    except _TRANSIENT:
        raise
    except Exception as exc:
        _fail_on_engine_error(execution_id, exc, node_id=blame.node)
        return []


def _inbox(execution: Execution) -> list[StepRun]:
    """Finished steps the orchestrator has not taken into account yet, in finishing order."""
    return store.unadvanced_steps(
        StepRun, execution.pk, [StepStatus.COMPLETED, StepStatus.FAILED, StepStatus.SKIPPED, StepStatus.CANCELLED]
    )


def _advance_inbox(rt: Runtime, inbox: list[StepRun]) -> list[StepRun]:
    """Take `inbox` into account with `rt` (the run's lock is held), write, schedule side
    effects; return the local steps to run inline."""
    execution = rt.ex
    rt.prime({"", *(step.scope for step in inbox)})
    for step in inbox:
        cached = rt.latest(step.scope, step.node_id)
        if cached is not None and cached.pk == step.pk:
            step = cached
        if step.advanced:
            continue
        rt.on_finished(step)
        if execution.status in FINISHED_EXECUTION:
            break
    effects = rt.flush()
    _apply(effects, execution.pk)
    return effects.inline
