"""Outbound HTTP that user-written workflows may not turn against our own network.

`check_destination(url)` refuses URLs that resolve to loopback, private, link-local,
shared (CGNAT), multicast, reserved or cloud metadata addresses, IPv6 included
(IPv4-mapped, 6to4 and Teredo forms are unwrapped first), unless an operator allowed
the host name or a CIDR range in settings.WB_HTTP_ALLOWED_HOSTS.

`send()` connects to the very address that was checked (the URL is pinned to the IP,
with the Host header and TLS SNI set to the name), so a DNS answer that changes
between the check and the connection (DNS rebinding) cannot get around the guard,
follows redirects by hand checking every hop, drops credentials when a redirect leaves
the origin, and stops reading a response once it passes the size limit.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import httpx
from django.conf import settings

from apps.executions.activities import ActivityError

MAX_REDIRECTS = 5
# Names that reach instance metadata services without a private-looking address.
METADATA_HOSTS = {
    "metadata",
    "metadata.google.internal",
    "metadata.goog",
    "instance-data",
    "instance-data.ec2.internal",
}
# Headers that carry credentials: never forwarded to another origin on a redirect.
CREDENTIAL_HEADERS = {"authorization", "proxy-authorization", "cookie"}

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Destination:
    scheme: str
    host: str
    port: int
    # The address to connect to; None when the host is allowed by name (connect normally).
    address: IPAddress | None

    @property
    def origin(self) -> tuple[str, str, int]:
        return (self.scheme, self.host, self.port)


def _allowed() -> tuple[set[str], list[ipaddress.IPv4Network | ipaddress.IPv6Network]]:
    hosts: set[str] = set()
    nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for item in getattr(settings, "WB_HTTP_ALLOWED_HOSTS", []) or []:
        item = str(item).strip()
        try:
            nets.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            hosts.add(item.lower().rstrip("."))
    return hosts, nets


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped:
            return address.ipv4_mapped
        if address.sixtofour:
            return address.sixtofour
        if address.teredo:
            return address.teredo[1]
        # IPv4-compatible (::a.b.c.d, deprecated but still routed by some stacks)
        if int(address) >> 32 == 0 and int(address) > 1:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: IPAddress) -> bool:
    """True for a globally routable unicast address."""
    inner = _embedded_ipv4(address)
    if inner is not None and not is_public(inner):
        return False
    return address.is_global and not (
        address.is_multicast or address.is_reserved or address.is_loopback or address.is_link_local
    )


def _refuse(host: str, why: str) -> ActivityError:
    return ActivityError(
        "DestinationNotAllowed",
        f"{host}: {why}; an operator can allow it in WB_HTTP_ALLOWED_HOSTS",
        retryable=False,
    )


def check_destination(url: str) -> Destination:
    """Return where `url` may be fetched from, or raise ActivityError(DestinationNotAllowed/InvalidURL)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ActivityError("InvalidURL", f"not a valid URL: {exc}", retryable=False) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ActivityError(
            "InvalidURL", f"only http and https URLs with a host are allowed, not {_display(url)!r}", retryable=False
        )
    if parts.username or parts.password:
        raise ActivityError(
            "InvalidURL", "credentials in the URL are not allowed: use a stored credential in auth", retryable=False
        )
    host = parts.hostname.lower().rstrip(".")
    port = port or (443 if parts.scheme == "https" else 80)
    hosts, nets = _allowed()
    if host in hosts:
        return Destination(parts.scheme, host, port, None)
    if host in METADATA_HOSTS:
        raise _refuse(host, "is a cloud metadata service")
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        candidates = [literal]
    else:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise ActivityError("ConnectionError", f"cannot resolve {host}: {exc}") from None
        candidates = []
        for info in infos:
            raw = str(info[4][0]).split("%", 1)[0]  # strip an IPv6 zone id
            candidates.append(ipaddress.ip_address(raw))
    # Every address the name resolves to must pass: otherwise a client library could pick
    # the private one.
    for address in candidates:
        if any(address in net for net in nets):
            continue
        inner = _embedded_ipv4(address)
        if inner is not None and any(inner in net for net in nets):
            continue
        if not is_public(address):
            raise _refuse(
                host, f"resolves to {address}, a loopback, private, link-local or otherwise non-public address"
            )
    return Destination(parts.scheme, host, port, candidates[0])


def _display(url: str, hide: tuple[str, ...] = ()) -> str:
    """The URL as it may appear in logs and errors: no userinfo, hidden query values masked."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid url>"
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    query = parts.query
    if hide and query:
        query = urlencode([(k, "[redacted]" if k in hide else v) for k, v in parse_qsl(query, keep_blank_values=True)])
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def display_url(url: str, hide: tuple[str, ...] = ()) -> str:
    return _display(url, hide)


def _pinned(url: str, dest: Destination) -> tuple[str, dict[str, str], dict[str, Any]]:
    """Rewrite `url` to connect to the checked address; return (url, extra headers, extensions)."""
    if dest.address is None:
        return url, {}, {}
    parts = urlsplit(url)
    ip = f"[{dest.address}]" if dest.address.version == 6 else str(dest.address)
    default_port = 443 if dest.scheme == "https" else 80
    netloc = ip if dest.port == default_port else f"{ip}:{dest.port}"
    host_header = parts.hostname if dest.port == default_port else f"{parts.hostname}:{dest.port}"
    if ":" in (parts.hostname or "") and parts.hostname is not None:  # an IPv6 literal keeps its brackets
        host_header = f"[{parts.hostname}]" + ("" if dest.port == default_port else f":{dest.port}")
    extensions = {"sni_hostname": dest.host} if dest.scheme == "https" else {}
    return (
        urlunsplit((parts.scheme, netloc, parts.path, parts.query, "")),
        {"Host": host_header or dest.host},
        extensions,
    )


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    content: bytes
    url: str
    encoding: str | None = None
    history: list[str] = field(default_factory=list)


class ResponseTooLarge(Exception):
    pass


def _read_limited(response: httpx.Response, limit: int) -> bytes:
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ResponseTooLarge(int(declared))
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > limit:
            raise ResponseTooLarge(size)
        chunks.append(chunk)
    return b"".join(chunks)


def send(
    client: httpx.Client,
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    params: Any = None,
    content: bytes | None = None,
    follow_redirects: bool = True,
    max_redirects: int = MAX_REDIRECTS,
    max_bytes: int,
    sensitive_headers: tuple[str, ...] = (),
) -> Response:
    """Send one request through the guard (each redirect hop checked).

    Raises ActivityError for refused destinations and too many redirects, ResponseTooLarge
    past `max_bytes`, and httpx errors for transport problems (the caller maps them).
    """
    headers = dict(headers or {})
    history: list[str] = []
    first = check_destination(url)
    origin = first.origin
    dest = first
    for hop in range(max_redirects + 1):
        target, extra_headers, extensions = _pinned(url, dest)
        request = client.build_request(
            method,
            target,
            headers={**headers, **extra_headers},
            params=params if hop == 0 else None,
            content=content,
            extensions=extensions,
        )
        response = client.send(request, stream=True)
        try:
            location = response.headers.get("location")
            if follow_redirects and response.status_code in (301, 302, 303, 307, 308) and location:
                history.append(f"{response.status_code} {_display(url)}")
                # The query params were applied on the first request: carry the full URL on.
                if hop == 0 and params:
                    url = str(httpx.URL(url, params=params))
                url = urljoin(url, location)
                dest = check_destination(url)
                if dest.origin != origin:
                    drop = CREDENTIAL_HEADERS | {h.lower() for h in sensitive_headers}
                    headers = {k: v for k, v in headers.items() if k.lower() not in drop}
                    origin = dest.origin
                if response.status_code == 303 or (response.status_code in (301, 302) and method != "HEAD"):
                    method = "GET" if method != "HEAD" else method
                    content = None
                    headers = {k: v for k, v in headers.items() if k.lower() not in ("content-type", "content-length")}
                continue
            body = _read_limited(response, max_bytes)
            return Response(
                status=response.status_code,
                headers={k.lower(): v for k, v in response.headers.items()},
                content=body,
                url=url,
                encoding=response.encoding,
                history=history,
            )
        finally:
            response.close()
    raise ActivityError("TooManyRedirects", f"more than {max_redirects} redirects", retryable=False)
