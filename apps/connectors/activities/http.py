"""`http.request`: call an HTTP API from a step.

Credentials are named in params (`"auth": {"credential": "github"}`) and looked up at run
time among the credentials granted to the workflow, and sent only to the hosts the credential
lists, so no secret is ever part of the step's input, events or logs. See docs/connectors.md for
every param with examples.
"""

from __future__ import annotations

import base64
import json
import random
import time
from typing import Any
from urllib.parse import urlencode

import httpx
from django.conf import settings

from apps.executions.activities import ActivityContext, ActivityError
from apps.workflows import jsontext
from apps.workflows.definition import mapping
from apps.workflows.definition.registry import register_activity

from .. import outbound, services
from ..choices import CredentialKind
from ..circuit import breaker_for

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
DEFAULT_RETRY_STATUSES = [429, 502, 503, 504]
MAP_SCHEMA = {
    "type": "object",
    "description": "name -> '@.body.x' (JSONPath into {status, headers, body}) or {path, default} or {fn, args}; "
    "results go under `mapped`.",
    "additionalProperties": {},
}

PARAMS_SCHEMA = {
    "type": "object",
    "properties": {
        "url": {"type": "string", "minLength": 1, "description": "http(s) URL; may use {{ templates }}."},
        "method": {"enum": METHODS, "description": "Default GET."},
        "headers": {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}},
        "query": {"type": "object", "description": "Query parameters; list values repeat the parameter."},
        "json": {"description": "A JSON body."},
        "form": {"type": "object", "description": "A form body (application/x-www-form-urlencoded)."},
        "body": {"type": "string", "description": "A raw body (set content_type)."},
        "content_type": {"type": "string", "description": "Content-Type of a raw body (default text/plain)."},
        "auth": {
            "type": "object",
            "properties": {
                "credential": {
                    "type": "string",
                    "minLength": 1,
                    "description": "Name of a stored credential granted to this workflow (sent only to its "
                    "allowed hosts).",
                }
            },
            "required": ["credential"],
            "additionalProperties": False,
        },
        "timeout": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 3600,
            "description": "Seconds for the whole request (default 30).",
        },
        "connect_timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 300},
        "retry": {
            "type": "object",
            "description": "Retries inside the step (the node's retry policy retries the whole step).",
            "properties": {
                "max_attempts": {"type": "integer", "minimum": 1, "maximum": 20},
                "on_status": {"type": "array", "items": {"type": "integer", "minimum": 100, "maximum": 599}},
                "on_connection_error": {
                    "type": "boolean",
                    "description": "Also retry connection errors and timeouts (default true).",
                },
                "backoff": {
                    "type": "number",
                    "minimum": 0,
                    "maximum": 300,
                    "description": "Seconds before the first retry (default 0.5).",
                },
                "multiplier": {"type": "number", "minimum": 1, "maximum": 10},
                "max_backoff": {"type": "number", "minimum": 0, "maximum": 600},
                "respect_retry_after": {"type": "boolean"},
            },
            "additionalProperties": False,
        },
        "circuit_breaker": {
            "oneOf": [
                {"type": "boolean"},
                {
                    "type": "object",
                    "properties": {
                        "failure_threshold": {"type": "integer", "minimum": 1, "maximum": 1000},
                        "reset_after": {"type": "number", "minimum": 0.1, "maximum": 86400},
                    },
                    "additionalProperties": False,
                },
            ],
            "description": "false to skip the per-host breaker; or its threshold and reset time.",
        },
        "follow_redirects": {"type": "boolean"},
        "max_redirects": {"type": "integer", "minimum": 0, "maximum": 20},
        "max_response_bytes": {"type": "integer", "minimum": 1},
        "response_type": {
            "enum": ["auto", "json", "text"],
            "description": "How to read the body (auto: JSON when it parses).",
        },
        "fail_on_status": {"type": "boolean", "description": "Fail the step on 4xx/5xx (default true)."},
        "map": MAP_SCHEMA,
        "result": {
            "enum": ["response", "mapped"],
            "description": "Output the whole response (default) or only the mapped values.",
        },
    },
    "required": ["url"],
    "additionalProperties": False,
}


def _auth(
    params: dict, ctx: ActivityContext, url: str
) -> tuple[dict[str, str], dict[str, str], tuple[str, ...], list[str]]:
    """(headers, query params, query names to hide, secret strings to scrub) for params['auth']."""
    auth = params.get("auth")
    if not auth:
        return {}, {}, (), []
    credential = services.credential_for_run(
        ctx,
        auth.get("credential"),
        url=url,
        kinds=(
            CredentialKind.BEARER,
            CredentialKind.API_KEY_HEADER,
            CredentialKind.API_KEY_QUERY,
            CredentialKind.BASIC,
        ),
    )
    secret = services.secret_of(credential)
    if credential.kind == CredentialKind.BEARER:
        return {"Authorization": f"Bearer {secret}"}, {}, (), [secret]
    if credential.kind == CredentialKind.API_KEY_HEADER:
        return {credential.field_name: secret}, {}, (), [secret]
    if credential.kind == CredentialKind.API_KEY_QUERY:
        return {}, {credential.field_name: secret}, (credential.field_name,), [secret]
    token = base64.b64encode(f"{credential.username}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {token}"}, {}, (), [secret, token]


def _body(params: dict) -> tuple[bytes | None, str | None]:
    given = [k for k in ("json", "form", "body") if k in params]
    if len(given) > 1:
        raise ActivityError(
            "InvalidParams", f"give one body: json, form or body, not {' and '.join(given)}", retryable=False
        )
    if "json" in params:
        return json.dumps(params["json"], separators=(",", ":"), default=str).encode(), "application/json"
    if "form" in params:
        form = params["form"]
        if not isinstance(form, dict):
            raise ActivityError("InvalidParams", "form must be an object", retryable=False)
        return urlencode(
            {k: v if isinstance(v, str) else json.dumps(v) for k, v in form.items()}
        ).encode(), "application/x-www-form-urlencoded"
    if "body" in params:
        body = params["body"]
        return (body if isinstance(body, str) else json.dumps(body)).encode(), params.get(
            "content_type", "text/plain; charset=utf-8"
        )
    return None, None


def _query(params: dict, extra: dict[str, str]) -> list[tuple[str, str]] | None:
    items: list[tuple[str, str]] = []
    for key, value in (params.get("query") or {}).items():
        values = value if isinstance(value, list) else [value]
        for v in values:
            if v is None:
                continue
            items.append(
                (str(key), v if isinstance(v, str) else json.dumps(v) if isinstance(v, (dict, list, bool)) else str(v))
            )
    items.extend(extra.items())
    return items or None


def _scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    return text


def _decode(response: outbound.Response, response_type: str) -> Any:
    text = response.content.decode(response.encoding or "utf-8", errors="replace")
    if "\x00" in text:  # PostgreSQL cannot store it: the step's output could not be recorded
        raise ActivityError(
            "InvalidResponse", "the response contains a NUL character, which cannot be stored", retryable=False
        )
    if response_type == "text":
        return text
    content_type = response.headers.get("content-type", "")
    if response_type == "json" or "json" in content_type or text[:1] in ("{", "["):
        try:
            return jsontext.loads(text) if text else None
        except jsontext.JSONInputError as exc:  # "\u0000", a lone surrogate, nesting past the limit
            where = "body" + (exc.field if exc.field.startswith("[") else f".{exc.field}" if exc.field else "")
            raise ActivityError(
                "InvalidResponse", f"the response cannot be stored: {where}: {exc.message}", retryable=False
            ) from None
        except ValueError:
            if response_type == "json":
                raise ActivityError("InvalidResponse", "the response is not JSON", retryable=False) from None
    return text


def _sleep_for(retry: dict, attempt: int, response: outbound.Response | None) -> float:
    base = float(retry.get("backoff", 0.5))
    delay = base * float(retry.get("multiplier", 2.0)) ** (attempt - 1)
    cap = float(retry.get("max_backoff", 30.0))
    if response is not None and retry.get("respect_retry_after", True):
        after = response.headers.get("retry-after", "")
        if after.isdigit():
            delay = max(delay, float(after))
    # A little jitter so many runs retrying one service do not stampede in step.
    return min(cap, delay) * (0.9 + 0.2 * random.random())


@register_activity(
    "http.request",
    params_schema=PARAMS_SCHEMA,
    description="Call an HTTP API: any method, JSON/form/raw body, stored-credential auth, retries, circuit "
    "breaker, response mapping.",
    external=True,
    secret_params=("headers.Authorization", "headers.authorization", "headers.X-Api-Key"),
)
def http_request(params: dict, ctx: ActivityContext) -> Any:
    method = str(params.get("method", "GET")).upper()
    if method not in METHODS:
        raise ActivityError("InvalidParams", f"method must be one of {', '.join(METHODS)}", retryable=False)
    url = params["url"]
    if not isinstance(url, str):
        raise ActivityError("InvalidParams", "url must be a string", retryable=False)
    auth_headers, auth_query, hidden, secrets = _auth(params, ctx, url)
    content, content_type = _body(params)
    headers = {str(k): str(v) for k, v in (params.get("headers") or {}).items()}
    if content_type and not any(k.lower() == "content-type" for k in headers):
        headers["Content-Type"] = content_type
    headers.setdefault("User-Agent", "WorkflowBuilder/1.0")
    headers.update(auth_headers)
    query = _query(params, auth_query)
    shown = outbound.display_url(url, hidden)

    max_bytes = min(
        int(params.get("max_response_bytes", settings.WB_HTTP_MAX_RESPONSE_BYTES)), settings.WB_HTTP_MAX_RESPONSE_BYTES
    )
    retry = params.get("retry") or {}
    attempts = int(retry.get("max_attempts", 1))
    retry_statuses = set(retry.get("on_status", DEFAULT_RETRY_STATUSES))
    retry_connection = retry.get("on_connection_error", True)
    dest = outbound.check_destination(url)
    circuit = params.get("circuit_breaker", True)
    breaker = None
    if circuit is not False:
        options = circuit if isinstance(circuit, dict) else {}
        breaker = breaker_for(
            dest.host, dest.port, threshold=options.get("failure_threshold"), reset_after=options.get("reset_after")
        )

    response: outbound.Response | None = None
    for attempt in range(1, attempts + 1):
        timeout = min(
            float(params.get("timeout", settings.WB_HTTP_DEFAULT_TIMEOUT)), float(settings.WB_HTTP_MAX_TIMEOUT)
        )
        remaining = ctx.remaining()
        if remaining is not None:
            if remaining <= 0:
                raise ActivityError("StepTimeout", "the step did not finish within its timeout")
            timeout = max(0.1, min(timeout, remaining))
        if breaker is not None and not breaker.allow():
            raise ActivityError(
                "CircuitOpen",
                f"the circuit for {dest.host}:{dest.port} is open after repeated failures; requests resume after "
                f"{breaker.reset_after:g} s",
                details={"host": dest.host, "port": dest.port},
            )
        error: ActivityError | None = None
        started = time.monotonic()
        try:
            with httpx.Client(
                timeout=httpx.Timeout(timeout, connect=min(timeout, float(params.get("connect_timeout", 10)))),
                follow_redirects=False,
                trust_env=False,
            ) as client:
                response = outbound.send(
                    client,
                    method,
                    url,
                    headers=headers,
                    params=query,
                    content=content,
                    follow_redirects=params.get("follow_redirects", True),
                    max_redirects=int(params.get("max_redirects", outbound.MAX_REDIRECTS)),
                    max_bytes=max_bytes,
                    sensitive_headers=tuple(auth_headers),
                )
        except outbound.ResponseTooLarge:
            raise ActivityError(
                "ResponseTooLarge", f"the response from {shown} is over {max_bytes} bytes", retryable=False
            ) from None
        except httpx.TimeoutException:
            error = ActivityError("Timeout", f"{method} {shown} timed out after {timeout:g} s")
        except httpx.HTTPError as exc:
            error = ActivityError("ConnectionError", _scrub(f"{method} {shown}: {type(exc).__name__}: {exc}", secrets))
        elapsed_ms = int((time.monotonic() - started) * 1000)
        if error is not None:
            response = None
            if breaker is not None:
                breaker.record_failure()
            ctx.log(f"{method} {shown}: {error.type} (attempt {attempt}/{attempts}, {elapsed_ms} ms)", "warning")
            if attempt < attempts and retry_connection:
                ctx.sleep(_sleep_for(retry, attempt, None))
                continue
            raise error
        assert response is not None
        status = response.status
        if breaker is not None:
            if status >= 500 or status == 429:
                breaker.record_failure()
            else:
                breaker.record_success()
        ctx.log(f"{method} {shown} -> {status} ({elapsed_ms} ms, attempt {attempt}/{attempts})")
        if status in retry_statuses and attempt < attempts:
            ctx.sleep(_sleep_for(retry, attempt, response))
            continue
        break
    assert response is not None

    body = _decode(response, params.get("response_type", "auto")) if method != "HEAD" else None
    result: dict[str, Any] = {"status": response.status, "headers": response.headers, "body": body}
    if response.history:
        result["redirects"] = response.history
    if params.get("fail_on_status", True) and response.status >= 400:
        kind = "HTTP4xx" if response.status < 500 else "HTTP5xx"
        raise ActivityError(
            kind,
            f"{method} {shown} answered {response.status}",
            retryable=response.status >= 500 or response.status in (408, 429),
            details={
                "status": response.status,
                "body": body if isinstance(body, (dict, list)) else _scrub(str(body), secrets)[:2000],
            },
        )
    if params.get("map"):
        try:
            result["mapped"] = mapping.apply(params["map"], result)
        except mapping.MappingError as exc:
            raise ActivityError("MappingError", f"map {exc}", retryable=False) from None
        if params.get("result") == "mapped":
            return result["mapped"]
    return result
