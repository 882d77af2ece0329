"""Writes to accounts go through these functions: the audit log and API keys.

Views, API endpoints, admin actions and signal handlers are thin callers.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from .models import APIKey, APIToken, AuditLog

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from .types import AnyUser


def client_ip(request: HttpRequest | None) -> str | None:
    """The address of the client that sent `request` (None without a request).

    The peer (REMOTE_ADDR) unless it is one of WB_TRUSTED_PROXIES: then X-Forwarded-For is read
    from the right, skipping trusted proxies, and the first address that is not one is the client
    (the right-most untrusted hop). Entries left of it were written by the client and prove
    nothing, so a client cannot choose the address that throttles, the login lockout, the audit
    log and the metrics allow-list see. One helper for all of them.
    """
    if request is None:
        return None
    meta = getattr(request, "META", {})
    peer = _parse_ip(meta.get("REMOTE_ADDR", ""))
    if peer is None:
        return None
    if not _is_trusted_proxy(peer):
        return str(peer)
    hops = [h for h in (_parse_ip(part) for part in meta.get("HTTP_X_FORWARDED_FOR", "").split(",")) if h is not None]
    for hop in reversed(hops):
        if not _is_trusted_proxy(hop):
            return str(hop)
    return str(hops[0]) if hops else str(peer)


def _parse_ip(raw: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    raw = raw.strip()
    if raw.startswith("[") and "]" in raw:  # [v6]:port
        raw = raw[1 : raw.index("]")]
    elif raw.count(":") == 1:  # v4:port
        raw = raw.split(":")[0]
    try:
        return ipaddress.ip_address(raw)
    except ValueError:
        return None


def _is_trusted_proxy(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return any(address in network for network in trusted_proxy_networks())


def trusted_proxy_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """WB_TRUSTED_PROXIES as networks (a bare address is a /32 or /128); checked at start-up."""
    return [ipaddress.ip_network(entry, strict=False) for entry in settings.WB_TRUSTED_PROXIES]


def record_audit(
    action: str,
    *,
    actor: AnyUser | None = None,
    username: str = "",
    request: HttpRequest | None = None,
    target: str = "",
    detail: dict[str, Any] | None = None,
) -> AuditLog:
    """Append one row to the security audit log and return it.

    An anonymous `actor` is stored as no actor; `username` defaults to the actor's.
    """
    if actor is not None and not actor.is_authenticated:
        actor = None
    return AuditLog.objects.create(
        action=action,
        actor=actor,
        username=(username or (actor.get_username() if actor else ""))[:150],
        ip_address=client_ip(request),
        target=target[:200],
        detail=detail or {},
    )


#
# API keys
#


@transaction.atomic
def create_api_key(
    user: User,
    name: str,
    *,
    expiry_date: datetime | None = None,
    request: HttpRequest | None = None,
) -> tuple[APIKey, str]:
    """Create an API key acting as `user`; return the key row and the plain key.

    The plain key is not stored (only its hash): the caller shows it once.
    Records an `api_key_created` audit row.
    """
    api_key, key = APIKey.objects.create_key(name=name, user=user, expiry_date=expiry_date)
    assert isinstance(api_key, APIKey)  # the library's manager is typed for its abstract base
    record_audit(
        AuditLog.Action.API_KEY_CREATED,
        actor=user,
        request=request,
        target=f"api key {api_key.prefix}",
        detail={"name": name},
    )
    return api_key, key


@transaction.atomic
def revoke_api_key(api_key: APIKey, *, acting_user: User, request: HttpRequest | None = None) -> bool:
    """Revoke `api_key` for good; return False when it was already revoked (nothing recorded).

    Takes the key's row lock so two concurrent revokes record one audit row.
    """
    locked = APIKey.objects.select_for_update().get(pk=api_key.pk)
    if locked.revoked:
        api_key.revoked = True
        return False
    locked.revoked = True
    locked.save(update_fields=["revoked"])
    api_key.revoked = True
    record_audit(
        AuditLog.Action.API_KEY_REVOKED,
        actor=acting_user,
        request=request,
        target=f"api key {locked.prefix}",
        detail={"name": locked.name, "key_owner": locked.user.get_username()},
    )
    return True


#
# API tokens (hashed, expiring, rotatable)
#


def token_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@transaction.atomic
def issue_token(user: User, *, request: HttpRequest | None = None, via: str = "password") -> tuple[APIToken, str]:
    """A new token for `user`, valid for WB_API_TOKEN_DAYS; return the row and the plain key
    (shown once, never stored). Records a `token_issued` audit row."""
    prefix = secrets.token_hex(4)
    key = f"{prefix}.{secrets.token_urlsafe(32)}"
    token = APIToken.objects.create(
        user=user,
        prefix=prefix,
        digest=token_digest(key),
        expires_at=timezone.now() + timedelta(days=settings.WB_API_TOKEN_DAYS),
    )
    record_audit(
        AuditLog.Action.TOKEN_ISSUED,
        actor=user,
        request=request,
        target=f"token {prefix}",
        detail={"via": via, "expires_at": token.expires_at.isoformat()},
    )
    return token, key


def find_token(key: str) -> APIToken | None:
    """The usable token with this key, or None (unknown, expired or revoked)."""
    token = APIToken.objects.select_related("user").filter(digest=token_digest(key)).first()
    return token if token is not None and token.is_usable else None


@transaction.atomic
def revoke_token(
    token: APIToken, *, acting_user: User, request: HttpRequest | None = None, reason: str = "revoked"
) -> bool:
    """Revoke `token` for good (row lock: one audit row however often); False when it already was."""
    updated = APIToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    if updated:
        record_audit(
            AuditLog.Action.TOKEN_REVOKED,
            actor=acting_user,
            request=request,
            target=f"token {token.prefix}",
            detail={"reason": reason, "token_owner": token.user.get_username()},
        )
    return bool(updated)


@transaction.atomic
def rotate_token(token: APIToken, *, request: HttpRequest | None = None) -> tuple[APIToken, str]:
    """Replace `token` by a new one for the same user; the old one stops working at once."""
    revoke_token(token, acting_user=token.user, request=request, reason="rotated")
    return issue_token(token.user, request=request, via="rotation")
