"""`ai.complete`: ask the configured OpenAI-compatible provider for a completion."""

from __future__ import annotations

from typing import Any

from apps.executions.activities import ActivityContext, ActivityError
from apps.executions.models import Execution
from apps.workflows.definition import mapping
from apps.workflows.definition.registry import register_activity

from .. import ai_usage, llm
from ..choices import AIPurpose


def _run_owner(execution_id: int):
    """Whose budget a step spends: the user who started the run, else the workflow's owner."""
    execution = Execution.objects.filter(pk=execution_id).select_related("created_by", "workflow__owner").first()
    if execution is None:
        return None, None
    return execution.created_by or execution.workflow.owner, execution.pk


@register_activity(
    "ai.complete",
    params_schema={
        "type": "object",
        "properties": {
            "prompt": {
                "type": "string",
                "minLength": 1,
                "description": "The user message; {{ $.path }} templates are filled in.",
            },
            "system": {"type": "string", "description": "An optional system message."},
            "messages": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"role": {"enum": ["system", "user", "assistant"]}, "content": {"type": "string"}},
                    "required": ["role", "content"],
                },
                "description": "A whole conversation instead of prompt.",
            },
            "model": {"type": "string", "description": "Override the configured AI_MODEL."},
            "temperature": {"type": "number", "minimum": 0, "maximum": 2},
            "max_tokens": {"type": "integer", "minimum": 1, "maximum": 200000},
            "json": {"type": "boolean", "description": "Ask for a JSON answer and parse it into `data`."},
            "map": {
                "type": "object",
                "description": "name -> '@.data.x' or {path, default} or {fn, args}, read from the output.",
            },
            "cache": {
                "type": "boolean",
                "description": "Answer a prompt seen before from the cache (default true; see AI_CACHE_SECONDS).",
            },
        },
        "additionalProperties": False,
    },
    description="Ask the configured LLM provider (OpenAI-compatible) for a completion.",
    external=True,
)
def ai_complete(params: dict, ctx: ActivityContext) -> Any:
    messages = list(params.get("messages") or [])
    if params.get("system"):
        messages.insert(0, {"role": "system", "content": params["system"]})
    if params.get("prompt"):
        messages.append({"role": "user", "content": params["prompt"]})
    if not messages:
        raise ActivityError("InvalidParams", "give prompt or messages", retryable=False)
    timeout = ctx.remaining()
    user, execution_id = _run_owner(ctx.execution_id) if ctx.execution_id else (None, None)
    try:
        answer = ai_usage.complete(
            messages,
            user=user,
            purpose=AIPurpose.COMPLETE,
            execution_id=execution_id,
            node_id=ctx.node_id,
            model=params.get("model"),
            temperature=params.get("temperature"),
            max_tokens=params.get("max_tokens"),
            timeout=max(1.0, timeout) if timeout is not None else None,
            json_mode=bool(params.get("json")),
            use_cache=params.get("cache", True) is not False,
        )
    except ai_usage.BudgetExceeded as exc:
        raise ActivityError("AIBudgetExceeded", str(exc), retryable=False) from None
    except llm.NotConfigured as exc:
        raise ActivityError("AINotConfigured", str(exc), retryable=False) from None
    except llm.ProviderError as exc:
        raise ActivityError("AIProviderError", str(exc)) from None
    output: dict[str, Any] = {
        "text": answer["content"],
        "model": answer["model"],
        "usage": answer["usage"],
        "finish_reason": answer["finish_reason"],
        "cached": answer["cached"],
    }
    if params.get("json"):
        try:
            output["data"] = llm.parse_json(answer["content"])
        except ValueError as exc:
            raise ActivityError("AIInvalidJSON", str(exc)) from None
    if params.get("map"):
        try:
            output["mapped"] = mapping.apply(params["map"], output)
        except mapping.MappingError as exc:
            raise ActivityError("MappingError", f"map {exc}", retryable=False) from None
    return output
