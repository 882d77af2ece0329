"""`ai.complete`: ask the configured OpenAI-compatible provider for a completion."""

from __future__ import annotations

from typing import Any

from apps.executions.activities import ActivityContext, ActivityError
from apps.workflows.definition.registry import register_activity

from .. import llm, mapping


@register_activity(
    "ai.complete",
    params_schema={
        "type": "object",
        "properties": {
            "prompt": {"type": "string", "minLength": 1, "description": "The user message; {{ $.path }} templates are filled in."},
            "system": {"type": "string", "description": "An optional system message."},
            "messages": {"type": "array", "items": {"type": "object", "properties": {"role": {"enum": ["system", "user", "assistant"]}, "content": {"type": "string"}}, "required": ["role", "content"]}, "description": "A whole conversation instead of prompt."},
            "model": {"type": "string", "description": "Override the configured AI_MODEL."},
            "temperature": {"type": "number", "minimum": 0, "maximum": 2},
            "max_tokens": {"type": "integer", "minimum": 1, "maximum": 200000},
            "json": {"type": "boolean", "description": "Ask for a JSON answer and parse it into `data`."},
            "map": {"type": "object", "description": "name -> '@.data.x' or {path, default} or {fn, args}, read from the output."},
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
    try:
        answer = llm.chat(
            messages, model=params.get("model"), temperature=params.get("temperature"), max_tokens=params.get("max_tokens"),
            timeout=max(1.0, timeout) if timeout is not None else None, json_mode=bool(params.get("json")),
        )
    except llm.NotConfigured as exc:
        raise ActivityError("AINotConfigured", str(exc), retryable=False) from None
    except llm.ProviderError as exc:
        raise ActivityError("AIProviderError", str(exc)) from None
    output: dict[str, Any] = {"text": answer["content"], "model": answer["model"], "usage": answer["usage"], "finish_reason": answer["finish_reason"]}
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
