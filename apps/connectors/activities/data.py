"""`map`: build an object from data with JSONPath picks and mapping functions (no eval)."""

from __future__ import annotations

from typing import Any

from apps.executions.activities import ActivityContext, ActivityError
from apps.workflows.definition import mapping
from apps.workflows.definition.registry import register_activity


@register_activity(
    "map",
    params_schema={
        "type": "object",
        "properties": {
            "source": {"description": "The data '@' paths read (usually a $.path such as $.steps.fetch.output)."},
            "values": {
                "type": "object",
                "minProperties": 1,
                "description": "output key -> '@.path', {path, default}, {fn, args}, {value} or a literal.",
                "additionalProperties": {},
            },
        },
        "required": ["values"],
        "additionalProperties": False,
    },
    description="Map data into a new object with JSONPath (with defaults) and functions: upper, round, sum, "
    "add_days, sort, filter, merge, …",
    local=True,
)
def map_values(params: dict, ctx: ActivityContext) -> Any:
    try:
        return mapping.apply(params["values"], params.get("source"))
    except mapping.MappingError as exc:
        raise ActivityError("MappingError", str(exc), retryable=False) from None
