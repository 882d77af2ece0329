"""Writes to accounts go through these functions: the audit log and API keys.

Views, API endpoints, admin actions and signal handlers are thin callers.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.http import HttpRequest

from .models import APIKey, AuditLog

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser


def client_ip(request: HttpRequest | None) -> str | None:
    """The peer address of `request` (None without a request).

    REMOTE_ADDR only: behind a proxy, the proxy sets it (uvicorn's --proxy-headers);
    trusting X-Forwarded-For here would let clients write any address into the log.
    """
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def record_audit(
    action: str,
    *,
    actor: AbstractBaseUser | None = None,
    username: str = "",
    request: HttpRequest | None = None,
    target: str = "",
    detail: dict[str, Any] | None = None,
) -> AuditLog:
    """Append one row to the security audit log and return it.

    An anonymous `actor` is stored as no actor; `username` defaults to the actor's.
    """
    if actor is not None and not getattr(actor, "is_authenticated", False):
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
    user: AbstractBaseUser,
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
    record_audit(
        AuditLog.Action.API_KEY_CREATED,
        actor=user,
        request=request,
        target=f"api key {api_key.prefix}",
        detail={"name": name},
    )
    return api_key, key


@transaction.atomic
def revoke_api_key(api_key: APIKey, *, acting_user: AbstractBaseUser, request: HttpRequest | None = None) -> bool:
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
