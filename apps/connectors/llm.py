"""A provider-agnostic client for OpenAI-compatible chat-completions endpoints.

Configured by settings AI_BASE_URL (e.g. https://api.openai.com/v1 or a local server),
AI_MODEL and AI_API_KEY. The base URL is chosen by the operator, so it is not put
through the outbound-address guard (a local model server is a normal setup).
"""

from __future__ import annotations

from typing import Any

import httpx
from django.conf import settings

from apps.workflows import jsontext


class NotConfigured(Exception):
    """No provider is configured (AI_BASE_URL / AI_MODEL)."""


class ProviderError(Exception):
    """The provider could not be reached or answered something unusable."""


def configured() -> bool:
    return bool(getattr(settings, "AI_BASE_URL", "") and getattr(settings, "AI_MODEL", ""))


def not_configured_message() -> str:
    return (
        "AI assistance is not configured: an operator sets AI_BASE_URL and AI_MODEL (and AI_API_KEY when the "
        "provider needs one)."
    )


def chat(
    messages: list[dict],
    *,
    model: str | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    timeout: float | None = None,
    json_mode: bool = False,
) -> dict:
    """Send one chat-completions request; return {"content", "model", "usage", "finish_reason"}."""
    if not configured():
        raise NotConfigured(not_configured_message())
    url = settings.AI_BASE_URL.rstrip("/") + "/chat/completions"
    body: dict[str, Any] = {"model": model or settings.AI_MODEL, "messages": messages}
    if temperature is not None:
        body["temperature"] = temperature
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    if json_mode:
        body["response_format"] = {"type": "json_object"}
    headers = {"Content-Type": "application/json"}
    if settings.AI_API_KEY:
        headers["Authorization"] = f"Bearer {settings.AI_API_KEY}"
    try:
        response = httpx.post(url, json=body, headers=headers, timeout=timeout or settings.AI_TIMEOUT, trust_env=False)
    except httpx.TimeoutException:
        raise ProviderError("the AI provider did not answer in time") from None
    except httpx.HTTPError as exc:
        raise ProviderError(f"cannot reach the AI provider: {type(exc).__name__}") from None
    if response.status_code >= 400:
        raise ProviderError(f"the AI provider answered {response.status_code}: {response.text[:300]}")
    try:
        data = response.json()
        choice = data["choices"][0]
        content = choice["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise ProviderError("the AI provider's answer is not a chat completion") from None
    if not isinstance(content, str):
        raise ProviderError("the AI provider's answer has no text content")
    return {
        "content": content,
        "model": data.get("model", body["model"]),
        "usage": data.get("usage"),
        "finish_reason": choice.get("finish_reason"),
    }


def parse_json(text: str) -> Any:
    """Parse a model's JSON answer, tolerating a ```json fence or prose around one object."""
    # Sliced rather than matched: the regex form (lazy .*? next to \s*) backtracked quadratically.
    fenced = text.strip()
    if len(fenced) >= 6 and fenced.startswith("```") and fenced.endswith("```"):
        text = fenced[3:-3].strip()
        if text.startswith("json"):
            text = text[4:]
    # jsontext: an answer nested too deeply or holding "\u0000" is "not JSON" too, not a 500.
    try:
        return jsontext.loads(text)
    except ValueError:
        start, end = text.find("{"), text.rfind("}")
        if 0 <= start < end:
            try:
                return jsontext.loads(text[start : end + 1])
            except ValueError:
                pass
    raise ValueError("the model's answer is not JSON")
