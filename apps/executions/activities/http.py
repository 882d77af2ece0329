"""`http.request`: call an HTTP API with JSON. Outbound addresses are checked: loopback,
private, link-local and metadata addresses are refused unless an operator allows them
in WB_HTTP_ALLOWED_HOSTS, and redirects are followed by hand so each hop is checked.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
from django.conf import settings

from apps.workflows.definition.registry import register_activity

from . import ActivityContext, ActivityError

MAX_RESPONSE_BYTES = 5 * 1024 * 1024
MAX_REDIRECTS = 5


def _allowed_networks() -> tuple[set[str], list]:
    hosts, nets = set(), []
    for item in getattr(settings, "WB_HTTP_ALLOWED_HOSTS", []):
        try:
            nets.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            hosts.add(item.lower())
    return hosts, nets


def check_destination(url: str) -> None:
    """Raise ActivityError unless `url` is http(s) to a public address (or an allowed one)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ActivityError("InvalidURL", f"only http and https URLs with a host are allowed, not {url!r}", retryable=False)
    host = parts.hostname.lower()
    hosts, nets = _allowed_networks()
    if host in hosts:
        return
    try:
        infos = socket.getaddrinfo(host, parts.port or (443 if parts.scheme == "https" else 80), proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise ActivityError("ConnectionError", f"cannot resolve {host}: {exc}") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if any(address in net for net in nets):
            continue
        if not address.is_global or address.is_multicast:
            raise ActivityError(
                "DestinationNotAllowed",
                f"{host} resolves to {address}, a private or local address; an operator can allow it in WB_HTTP_ALLOWED_HOSTS",
                retryable=False,
            )


@register_activity(
    "http.request",
    params_schema={
        "type": "object",
        "properties": {
            "url": {"type": "string", "minLength": 1},
            "method": {"enum": ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]},
            "headers": {"type": "object", "additionalProperties": {"type": "string"}},
            "query": {"type": "object"},
            "json": {"description": "A JSON body."},
            "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 300},
            "fail_on_status": {"type": "boolean", "description": "Fail the step on 4xx/5xx (default true)."},
        },
        "required": ["url"],
        "additionalProperties": False,
    },
    description="Call an HTTP API (JSON in, JSON out).",
    external=True,
    secret_params=("headers.Authorization", "headers.authorization", "headers.X-Api-Key"),
)
def http_request(params: dict, ctx: ActivityContext) -> Any:
    method = params.get("method", "GET")
    url = params["url"]
    timeout = float(params.get("timeout", 30))
    remaining = ctx.remaining()
    if remaining is not None:
        timeout = max(0.1, min(timeout, remaining))
    kwargs: dict[str, Any] = {"headers": params.get("headers") or {}, "params": params.get("query") or None}
    if "json" in params:
        kwargs["json"] = params["json"]
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        for _ in range(MAX_REDIRECTS + 1):
            check_destination(url)
            try:
                response = client.request(method, url, **kwargs)
            except httpx.TimeoutException:
                raise ActivityError("Timeout", f"{method} {url} timed out after {timeout:g} s") from None
            except httpx.HTTPError as exc:
                raise ActivityError("ConnectionError", f"{method} {url}: {exc}") from None
            if response.is_redirect and "location" in response.headers:
                url = urljoin(url, response.headers["location"])
                if response.status_code in (301, 302, 303):
                    method, kwargs = "GET", {k: v for k, v in kwargs.items() if k != "json"}
                continue
            break
        else:
            raise ActivityError("TooManyRedirects", f"more than {MAX_REDIRECTS} redirects", retryable=False)
    body_bytes = response.content[: MAX_RESPONSE_BYTES + 1]
    if len(body_bytes) > MAX_RESPONSE_BYTES:
        raise ActivityError("ResponseTooLarge", f"the response is over {MAX_RESPONSE_BYTES} bytes", retryable=False)
    try:
        body: Any = response.json()
    except ValueError:
        body = body_bytes.decode(response.encoding or "utf-8", errors="replace")
    result = {"status": response.status_code, "headers": dict(response.headers), "body": body}
    if params.get("fail_on_status", True) and response.status_code >= 400:
        kind = "HTTP4xx" if response.status_code < 500 else "HTTP5xx"
        raise ActivityError(
            kind,
            f"{method} {url} answered {response.status_code}",
            retryable=response.status_code >= 500 or response.status_code == 429,
            details={"status": response.status_code, "body": body if isinstance(body, (dict, list)) else str(body)[:2000]},
        )
    return result
