"""Writes to credentials and deliveries go through these functions; activities resolve
credentials here, by name, against the owner of the run's workflow."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.executions.activities import ActivityContext, ActivityError

from .choices import CredentialKind, DeliveryStatus
from .crypto import SecretUnreadable
from .models import Credential, Delivery

#
# Credentials
#


def check_credential(kind: str, *, username: str = "", field_name: str = "") -> dict[str, str]:
    """Problems with a credential's non-secret fields, keyed by field (empty when fine)."""
    problems: dict[str, str] = {}
    if kind == CredentialKind.BASIC and not username:
        problems["username"] = "basic credentials need a username"
    if kind in (CredentialKind.API_KEY_HEADER, CredentialKind.API_KEY_QUERY) and not field_name:
        problems["field_name"] = "say which header or query parameter carries the key"
    return problems


@transaction.atomic
def create_credential(*, owner, name: str, kind: str, secret: str, description: str = "", username: str = "", field_name: str = "") -> Credential:
    """Store a credential for `owner`, its secret encrypted. Assumes valid input (see check_credential)."""
    credential = Credential(owner=owner, name=name, kind=kind, description=description, username=username, field_name=field_name)
    credential.set_secret(secret)
    credential.save(force_insert=True)
    return credential


@transaction.atomic
def update_credential(credential: Credential, *, secret: str | None = None, **fields: Any) -> Credential:
    """Change fields; a new `secret` replaces the stored one (None keeps it)."""
    for key, value in fields.items():
        if key not in ("name", "kind", "description", "username", "field_name"):
            raise ValueError(f"{key} cannot be changed")
        setattr(credential, key, value)
    if secret is not None:
        credential.set_secret(secret)
    credential.save()
    return credential


def delete_credential(credential: Credential) -> None:
    credential.delete()


def rotate_all() -> int:
    """Re-encrypt every stored secret with the primary CREDENTIALS_KEY; returns how many."""
    from . import crypto

    count = 0
    for credential in Credential.objects.only("pk", "secret_encrypted").iterator():
        Credential.objects.filter(pk=credential.pk).update(secret_encrypted=crypto.rotate(credential.secret_encrypted))
        count += 1
    return count


def run_owner_id(ctx: ActivityContext) -> int | None:
    from apps.executions.models import Execution

    owner = getattr(ctx, "_wb_owner_id", None)
    if owner is None:
        owner = Execution.objects.filter(pk=ctx.execution_id).values_list("workflow__owner_id", flat=True).first()
        setattr(ctx, "_wb_owner_id", owner)
    return owner


def credential_for_run(ctx: ActivityContext, name: Any, *, kinds: tuple[str, ...] | None = None) -> Credential:
    """The credential called `name` belonging to the owner of the run's workflow.

    Raises ActivityError(CredentialNotFound) otherwise, never saying whether someone
    else has one by that name.
    """
    if not isinstance(name, str) or not name:
        raise ActivityError("CredentialNotFound", "name a stored credential, e.g. {\"credential\": \"github\"}", retryable=False)
    owner_id = run_owner_id(ctx)
    credential = Credential.objects.filter(owner_id=owner_id, name=name).first() if owner_id else None
    if credential is None:
        raise ActivityError("CredentialNotFound", f"no credential named {name!r} belongs to this workflow's owner", retryable=False)
    if kinds and credential.kind not in kinds:
        wanted = ", ".join(kinds)
        raise ActivityError("CredentialKindMismatch", f"credential {name!r} is a {credential.kind} credential; this needs {wanted}", retryable=False)
    Credential.objects.filter(pk=credential.pk).update(last_used_at=timezone.now())
    return credential


def secret_of(credential: Credential) -> str:
    try:
        return credential.get_secret()
    except SecretUnreadable as exc:
        raise ActivityError("CredentialUnreadable", f"credential {credential.name!r}: {exc}", retryable=False) from None


#
# Deliveries
#


def start_delivery(ctx: ActivityContext, *, channel: str, target: str) -> Delivery:
    """Record a delivery about to be attempted by the step running `ctx`."""
    from apps.executions.models import Execution, StepRun

    execution_id = ctx.execution_id if Execution.objects.filter(pk=ctx.execution_id).exists() else None
    step_id = ctx.step_id if execution_id and StepRun.objects.filter(pk=ctx.step_id).exists() else None
    return Delivery.objects.create(channel=channel, target=target[:500], execution_id=execution_id, step_id=step_id, node_id=ctx.node_id[:64])


def record_attempt(delivery: Delivery, *, ok: bool, response_code: int | None = None, error: str = "", final: bool = False) -> None:
    delivery.attempts += 1
    delivery.response_code = response_code
    delivery.error = error[:5000]
    if ok:
        delivery.status = DeliveryStatus.DELIVERED
        delivery.finished_at = timezone.now()
    elif final:
        delivery.status = DeliveryStatus.FAILED
        delivery.finished_at = timezone.now()
    delivery.save(update_fields=["attempts", "response_code", "error", "status", "finished_at"])
