"""Audit rows for Django's own auth events (session login, failed login, logout) and lockouts;
the default role of new users."""

from __future__ import annotations

from typing import Any

from axes.signals import user_locked_out
from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import post_save
from django.dispatch import receiver

from .models import AuditLog
from .roles import give_default_role
from .services import record_audit


@receiver(user_logged_in, dispatch_uid="accounts.audit_login")
def audit_login(sender, request, user, **kwargs: Any) -> None:
    record_audit(AuditLog.Action.LOGIN, actor=user, request=request, detail={"via": "session"})


@receiver(user_login_failed, dispatch_uid="accounts.audit_login_failed")
def audit_login_failed(sender, credentials: dict[str, Any], request=None, **kwargs: Any) -> None:
    # Django has already masked the password in `credentials`; keep only the username tried.
    username = str(credentials.get("username", ""))
    record_audit(AuditLog.Action.LOGIN_FAILED, username=username, request=request)


@receiver(user_logged_out, dispatch_uid="accounts.audit_logout")
def audit_logout(sender, request, user, **kwargs: Any) -> None:
    if user is not None:
        record_audit(AuditLog.Action.LOGOUT, actor=user, request=request)


@receiver(user_locked_out, dispatch_uid="accounts.audit_locked_out")
def audit_locked_out(
    sender, request=None, username: str | None = None, ip_address: str | None = None, **kwargs: Any
) -> None:
    record_audit(
        AuditLog.Action.LOGIN_LOCKED_OUT,
        username=str(username or ""),
        request=request,
        detail={"ip_address": ip_address},
    )


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="accounts.default_role")
def default_role(sender, instance, created: bool, raw: bool = False, **kwargs: Any) -> None:
    if created and not raw:
        give_default_role(instance)
