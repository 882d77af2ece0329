"""The activities every installation has: set, transform, log, delay, fail, noop, http.request."""

from __future__ import annotations

from typing import Any

from apps.workflows.definition import jsonpath
from apps.workflows.definition.registry import register_activity

from . import ActivityContext, ActivityError


@register_activity(
    "noop",
    params_schema={"type": "object", "properties": {"value": {}}, "additionalProperties": False},
    description="Do nothing; output `value` if given.",
)
def noop(params: dict, ctx: ActivityContext) -> Any:
    return params.get("value")


@register_activity(
    "set",
    params_schema={
        "type": "object",
        "properties": {
            "values": {"type": "object", "description": "Variables to set, name -> value (values may use $.paths)."}
        },
        "required": ["values"],
        "additionalProperties": False,
    },
    description="Set variables.",
    local=True,
)
def set_variables(params: dict, ctx: ActivityContext) -> Any:
    values = params["values"]
    ctx.variables.update(values)
    return values


@register_activity(
    "transform",
    params_schema={
        "type": "object",
        "properties": {
            "source": {
                "description": "The data to read from, usually a reference such as $.vars or $.steps.fetch.output."
            },
            "mapping": {
                "type": "object",
                "description": "output key -> JSONPath read relative to source ($.order.id), or {path, default}; "
                "other values are copied as they are.",
                "additionalProperties": {"oneOf": [{"type": "string"}, {"type": "object"}]},
            },
        },
        "required": ["source", "mapping"],
        "additionalProperties": False,
    },
    description="Build an object by picking values out of data with JSONPath (with defaults).",
    local=True,
    raw_params=("mapping",),
)
def transform(params: dict, ctx: ActivityContext) -> Any:
    source = params["source"]
    out: dict[str, Any] = {}
    for key, rule in params["mapping"].items():
        if isinstance(rule, dict):
            path, default = rule.get("path"), rule.get("default", None)
            has_default = "default" in rule
        else:
            path, default, has_default = rule, None, False
        if not isinstance(path, str) or not path.startswith("$"):
            out[key] = path if not isinstance(rule, dict) else rule.get("value", default)
            continue
        try:
            out[key] = jsonpath.find(source, path)
        except KeyError:
            if not has_default:
                raise ActivityError(
                    "MappingError", f"mapping '{key}': {path} matched nothing and has no default", retryable=False
                ) from None
            out[key] = default
    return out


@register_activity(
    "log",
    params_schema={
        "type": "object",
        "properties": {"message": {}, "level": {"enum": ["debug", "info", "warning", "error"]}},
        "required": ["message"],
        "additionalProperties": False,
    },
    description="Write a line to the step's log.",
    local=True,
)
def log(params: dict, ctx: ActivityContext) -> Any:
    message = params["message"]
    ctx.log(message if isinstance(message, str) else str(message), params.get("level", "info"))
    return {"message": message}


@register_activity(
    "delay",
    params_schema={
        "type": "object",
        "properties": {
            "seconds": {"type": "number", "minimum": 0, "maximum": 3600},
            "output": {"description": "What the step returns when the delay is over."},
        },
        "required": ["seconds"],
        "additionalProperties": False,
    },
    description="Occupy a worker for some seconds (simulates work); stops early when cancelled.",
)
def delay(params: dict, ctx: ActivityContext) -> Any:
    seconds = float(params["seconds"])
    ctx.sleep(seconds)
    return params.get("output", {"slept": seconds})


@register_activity(
    "fail",
    params_schema={
        "type": "object",
        "properties": {
            "error_type": {"type": "string", "minLength": 1},
            "message": {"type": "string"},
            "retryable": {"type": "boolean"},
            "succeed_on_attempt": {
                "type": "integer",
                "minimum": 1,
                "description": "Succeed from this attempt on (for demos of retries).",
            },
        },
        "additionalProperties": False,
    },
    description="Fail with a chosen error type and message (for tests and demos).",
)
def fail(params: dict, ctx: ActivityContext) -> Any:
    succeed_on = params.get("succeed_on_attempt")
    if succeed_on and ctx.attempt >= succeed_on:
        return {"succeeded_on_attempt": ctx.attempt}
    raise ActivityError(
        params.get("error_type", "DemoError"),
        params.get("message", "this step fails on purpose"),
        retryable=params.get("retryable", True),
    )
