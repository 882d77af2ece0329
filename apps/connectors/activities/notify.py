"""Notifications as activities: `notify.email`, `notify.slack`, `notify.webhook`.

Each send is retried inside the step (`attempts`, with backoff) and recorded as a
Delivery row (channel, target, status, attempts, response code, error, step link). The
engine resolves `{{ $.path }}` templates in subject, body, text and payload before the
step runs. Secrets (a Slack webhook URL, a webhook signing key) come from stored
credentials, never from params.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.validators import validate_email

from apps.executions.activities import ActivityContext, ActivityError
from apps.workflows.definition.registry import register_activity

from .. import outbound, services
from ..choices import CredentialKind, DeliveryChannel

SIGNATURE_HEADER = "X-Workflow-Signature"
TIMESTAMP_HEADER = "X-Workflow-Timestamp"
DELIVERY_HEADER = "X-Workflow-Delivery"
MAX_RECIPIENTS = 100
MAX_NOTIFY_RESPONSE = 64 * 1024

_attempts_schema = {"type": "integer", "minimum": 1, "maximum": 10, "description": "Tries in all (default 3)."}
_backoff_schema = {
    "type": "number",
    "minimum": 0,
    "maximum": 60,
    "description": "Seconds before the first retry, doubling (default 1).",
}
_addresses = {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "maxItems": MAX_RECIPIENTS}]}


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The X-Workflow-Signature value for `body` sent at `timestamp` (Unix seconds, also sent as
    X-Workflow-Timestamp): "sha256=" + hex HMAC-SHA256 of "<timestamp>." + body, keyed by `secret`.
    Covering the timestamp lets a receiver refuse old deliveries (replays)."""
    return "sha256=" + hmac.new(secret.encode(), f"{int(timestamp)}.".encode() + body, hashlib.sha256).hexdigest()


def verify(
    secret: str,
    body: bytes,
    header: str,
    timestamp: str | int | None,
    *,
    tolerance: int = 300,
    now: float | None = None,
) -> bool:
    """Check a received signature (what a receiver does; constant-time): the signature covers the
    timestamp and the body, and the timestamp is within `tolerance` seconds of now."""
    try:
        sent = int(str(timestamp))
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - sent) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, body, sent), header or "")


def _backoff(params: dict, attempt: int) -> float:
    return float(params.get("backoff", 1.0)) * (2 ** (attempt - 1))


#
# Email
#


def _address_list(value: Any, field: str) -> list[str]:
    if value in (None, "", []):
        return []
    items = value if isinstance(value, list) else [part for part in str(value).replace(";", ",").split(",")]
    out = []
    for item in items:
        address = str(item).strip()
        if not address:
            continue
        try:
            validate_email(address)
        except ValidationError:
            raise ActivityError(
                "InvalidParams", f"{field}: {address!r} is not an email address", retryable=False
            ) from None
        out.append(address)
    if len(out) > MAX_RECIPIENTS:
        raise ActivityError("InvalidParams", f"{field}: at most {MAX_RECIPIENTS} recipients", retryable=False)
    return out


@register_activity(
    "notify.email",
    params_schema={
        "type": "object",
        "properties": {
            "to": _addresses,
            "cc": _addresses,
            "bcc": _addresses,
            "subject": {"type": "string", "minLength": 1, "maxLength": 998},
            "body": {"type": "string", "description": "Plain-text body; {{ $.path }} templates are filled in."},
            "html": {"type": "string", "description": "Optional HTML alternative."},
            "from": {"type": "string"},
            "reply_to": _addresses,
            "attempts": _attempts_schema,
            "backoff": _backoff_schema,
        },
        "required": ["to", "subject", "body"],
        "additionalProperties": False,
    },
    description="Send an email through Django's email backend (templated subject and body).",
    external=True,
)
def notify_email(params: dict, ctx: ActivityContext) -> Any:
    to = _address_list(params.get("to"), "to")
    cc = _address_list(params.get("cc"), "cc")
    bcc = _address_list(params.get("bcc"), "bcc")
    if not (to or cc or bcc):
        raise ActivityError("InvalidParams", "to: give at least one recipient", retryable=False)
    sender = params.get("from") or settings.DEFAULT_FROM_EMAIL
    subject = " ".join(str(params["subject"]).splitlines())  # a header: no line breaks
    message = EmailMultiAlternatives(
        subject=subject,
        body=str(params["body"]),
        from_email=sender,
        to=to,
        cc=cc,
        bcc=bcc,
        reply_to=_address_list(params.get("reply_to"), "reply_to") or None,
    )
    if params.get("html"):
        message.attach_alternative(str(params["html"]), "text/html")
    delivery = services.start_delivery(ctx, channel=DeliveryChannel.EMAIL, target=", ".join(to + cc + bcc))
    attempts = int(params.get("attempts", 3))
    for attempt in range(1, attempts + 1):
        try:
            message.connection = get_connection(fail_silently=False)
            sent = message.send()
            services.record_attempt(delivery, ok=True)
            ctx.log(f"email sent to {len(to + cc + bcc)} recipient(s) (attempt {attempt})")
            return {"delivery": str(delivery.pk), "sent": sent, "recipients": len(to + cc + bcc), "attempts": attempt}
        except Exception as exc:  # SMTP and backend errors: retried, then the step fails
            final = attempt == attempts
            services.record_attempt(delivery, ok=False, error=f"{type(exc).__name__}: {exc}", final=final)
            ctx.log(f"email attempt {attempt}/{attempts} failed: {type(exc).__name__}: {exc}", "warning")
            if final:
                raise ActivityError(
                    "EmailFailed",
                    f"could not send the email after {attempts} attempt(s): {exc}",
                    details={"delivery": str(delivery.pk)},
                ) from None
            ctx.sleep(_backoff(params, attempt))
    raise AssertionError("unreachable")


#
# HTTP notifications (Slack, webhook)
#


def _post(
    ctx: ActivityContext,
    delivery,
    *,
    method: str,
    url: str,
    content: bytes,
    headers: dict[str, str],
    params: dict,
    success: tuple[int, int] = (200, 300),
) -> tuple[int, str, int]:
    """Send with retries (429, 5xx and connection errors); returns (status, body text, attempts)."""
    attempts = int(params.get("attempts", 3))
    timeout = float(params.get("timeout", 10))
    last_error = ""
    for attempt in range(1, attempts + 1):
        remaining = ctx.remaining()
        if remaining is not None:
            timeout = max(0.1, min(timeout, remaining))
        code: int | None = None
        try:
            with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
                response = outbound.send(
                    client,
                    method,
                    url,
                    headers=headers,
                    content=content,
                    follow_redirects=False,
                    max_bytes=MAX_NOTIFY_RESPONSE,
                )
            code = response.status
            text = response.content.decode("utf-8", errors="replace")
            if success[0] <= code < success[1]:
                services.record_attempt(delivery, ok=True, response_code=code)
                return code, text, attempt
            last_error = f"answered {code}: {text[:500]}"
            retryable = code >= 500 or code in (408, 429)
        except outbound.ResponseTooLarge:
            last_error, retryable = "the response was too large", False
        except httpx.HTTPError as exc:
            last_error, retryable = f"{type(exc).__name__}: {exc}", True
        except ActivityError as exc:  # refused destination, bad URL
            services.record_attempt(delivery, ok=False, error=exc.message, final=True)
            raise
        final = attempt == attempts or not retryable
        services.record_attempt(delivery, ok=False, response_code=code, error=last_error, final=final)
        ctx.log(f"{delivery.channel} attempt {attempt}/{attempts}: {last_error}", "warning")
        if final:
            raise ActivityError(
                "DeliveryFailed",
                f"{delivery.channel} delivery to {delivery.target} failed after {attempt} attempt(s): {last_error}",
                retryable=retryable,
                details={"delivery": str(delivery.pk), "status": code},
            )
        ctx.sleep(_backoff(params, attempt))
    raise AssertionError("unreachable")


def _masked_target(url: str) -> str:
    """scheme://host/… : webhook paths often hold the secret (Slack's do)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{':' + str(parts.port) if parts.port else ''}/…"


@register_activity(
    "notify.slack",
    params_schema={
        "type": "object",
        "properties": {
            "credential": {
                "type": "string",
                "minLength": 1,
                "description": "A stored `secret` credential holding the incoming-webhook URL.",
            },
            "webhook_url": {
                "type": "string",
                "description": "The webhook URL itself (prefer `credential`: the URL is a secret).",
            },
            "text": {"type": "string", "minLength": 1},
            "blocks": {"type": "array"},
            "channel": {"type": "string"},
            "username": {"type": "string"},
            "icon_emoji": {"type": "string"},
            "attempts": _attempts_schema,
            "backoff": _backoff_schema,
            "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 120},
        },
        "required": ["text"],
        "additionalProperties": False,
    },
    description="Post a message to a Slack-compatible incoming webhook.",
    external=True,
    secret_params=("webhook_url",),
)
def notify_slack(params: dict, ctx: ActivityContext) -> Any:
    if params.get("credential"):
        credential = services.credential_for_run(ctx, params["credential"], kinds=(CredentialKind.SECRET,))
        url = services.secret_of(credential).strip()
        services.check_credential_host(credential, url)
    elif params.get("webhook_url"):
        url = str(params["webhook_url"])
    else:
        raise ActivityError("InvalidParams", "give credential (a stored webhook URL) or webhook_url", retryable=False)
    payload: dict[str, Any] = {"text": params["text"]}
    for key in ("blocks", "channel", "username", "icon_emoji"):
        if key in params:
            payload[key] = params[key]
    content = json.dumps(payload, separators=(",", ":")).encode()
    outbound.check_destination(url)
    delivery = services.start_delivery(ctx, channel=DeliveryChannel.SLACK, target=_masked_target(url))
    code, _, attempts = _post(
        ctx,
        delivery,
        method="POST",
        url=url,
        content=content,
        headers={"Content-Type": "application/json"},
        params=params,
    )
    return {"delivery": str(delivery.pk), "status": code, "attempts": attempts}


@register_activity(
    "notify.webhook",
    params_schema={
        "type": "object",
        "properties": {
            "url": {"type": "string", "minLength": 1},
            "method": {"enum": ["POST", "PUT", "PATCH"]},
            "payload": {"description": "The JSON body."},
            "headers": {"type": "object", "additionalProperties": {"type": "string"}},
            "signing_credential": {
                "type": "string",
                "minLength": 1,
                "description": "A stored `secret` credential: X-Workflow-Signature carries the HMAC-SHA256 of "
                "'<X-Workflow-Timestamp>.' + body.",
            },
            "attempts": _attempts_schema,
            "backoff": _backoff_schema,
            "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 120},
        },
        "required": ["url", "payload"],
        "additionalProperties": False,
    },
    description="POST a JSON payload to a URL, signed with HMAC-SHA256 over timestamp and body "
    "(X-Workflow-Timestamp, X-Workflow-Signature: sha256=<hex>).",
    external=True,
)
def notify_webhook(params: dict, ctx: ActivityContext) -> Any:
    url = str(params["url"])
    outbound.check_destination(url)
    content = json.dumps(params["payload"], separators=(",", ":"), default=str).encode()
    headers = {str(k): str(v) for k, v in (params.get("headers") or {}).items()}
    headers["Content-Type"] = "application/json"
    headers["User-Agent"] = "WorkflowBuilder/1.0"
    delivery = services.start_delivery(
        ctx, channel=DeliveryChannel.WEBHOOK, target=outbound.display_url(url).split("?")[0]
    )
    headers[DELIVERY_HEADER] = str(delivery.pk)
    if params.get("signing_credential"):
        secret = services.secret_of(
            services.credential_for_run(ctx, params["signing_credential"], kinds=(CredentialKind.SECRET,), url=url)
        )
        timestamp = int(time.time())
        headers[TIMESTAMP_HEADER] = str(timestamp)
        headers[SIGNATURE_HEADER] = sign(secret, content, timestamp)
    code, text, attempts = _post(
        ctx, delivery, method=params.get("method", "POST"), url=url, content=content, headers=headers, params=params
    )
    return {"delivery": str(delivery.pk), "status": code, "attempts": attempts, "signed": SIGNATURE_HEADER in headers}
