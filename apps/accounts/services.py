from __future__ import annotations

from typing import Any

from .models import AuditLog


def client_ip(request) -> str | None:
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def record_audit(
    action: str,
    *,
    actor=None,
    username: str = "",
    request=None,
    target: str = "",
    detail: dict[str, Any] | None = None,
) -> AuditLog:
    """Append one row to the security audit log."""
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    return AuditLog.objects.create(
        action=action,
        actor=actor,
        username=username or (actor.get_username() if actor else ""),
        ip_address=client_ip(request),
        target=target,
        detail=detail or {},
    )
