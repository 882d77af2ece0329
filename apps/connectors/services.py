"""Writes to credentials and deliveries go through these functions; activities resolve
credentials here, by name, among the credentials granted to the run's workflow, and check
the destination host against the credential's allowed hosts."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import httpx
from django.db import transaction
from django.utils import timezone
from guardian.shortcuts import assign_perm, remove_perm

from apps.accounts.services import record_audit
from apps.executions.activities import ActivityContext, ActivityError
from apps.executions.models import Execution, StepRun

from . import crypto
from .choices import CredentialKind, DeliveryStatus
from .crypto import SecretUnreadable
from .models import HOST_PATTERN, Credential, Delivery

if TYPE_CHECKING:
    from apps.workflows.models import Workflow

USE_PERM = "connectors.use_credential"

#
# Credentials
#


def check_credential(kind: str, *, username: str = "", field_name: str = "", allowed_hosts: Any = ()) -> dict[str, str]:
    """Problems with a credential's non-secret fields, keyed by field (empty when fine)."""
    problems: dict[str, str] = {}
    if not isinstance(allowed_hosts, (list, tuple)) or not all(isinstance(h, str) for h in allowed_hosts):
        problems["allowed_hosts"] = "give a list of host names"
    else:
        bad = [h for h in allowed_hosts if not HOST_PATTERN.match(h.strip())]
        if bad:
            problems["allowed_hosts"] = f"not a host name (or *.domain, optionally with :port): {bad[0]!r}"
    if kind == CredentialKind.BASIC and not username:
        problems["username"] = "basic credentials need a username"
    if kind in (CredentialKind.API_KEY_HEADER, CredentialKind.API_KEY_QUERY) and not field_name:
        problems["field_name"] = "say which header or query parameter carries the key"
    return problems


@transaction.atomic
def create_credential(
    *,
    owner,
    name: str,
    kind: str,
    secret: str,
    description: str = "",
    username: str = "",
    field_name: str = "",
    allowed_hosts: list[str] | None = None,
    workflows: Iterable[Workflow] = (),
    shared_with: Iterable | None = None,
    acting_user=None,
    request=None,
) -> Credential:
    """Store a credential for `owner`, its secret encrypted, usable toward `allowed_hosts` by
    `workflows`, and nameable in definitions by `shared_with` users too. Assumes valid input (see
    check_credential). Records a `credential_created` audit row."""
    credential = Credential(
        owner=owner,
        name=name,
        kind=kind,
        description=description,
        username=username,
        field_name=field_name,
        allowed_hosts=[h.strip() for h in allowed_hosts or []],
    )
    credential.set_secret(secret)
    credential.save(force_insert=True)
    workflows = list(workflows)
    if workflows:
        credential.workflows.set(workflows)
    detail: dict[str, Any] = {"allowed_hosts": credential.allowed_hosts, "workflows": sorted(w.pk for w in workflows)}
    if shared_with is not None:
        detail["shared_with"] = set_credential_users(credential, shared_with)
    record_credential_audit("credential_created", credential, acting_user or owner, request, detail)
    return credential


@transaction.atomic
def update_credential(
    credential: Credential,
    *,
    secret: str | None = None,
    workflows: Iterable[Workflow] | None = None,
    shared_with: Iterable | None = None,
    acting_user=None,
    request=None,
    **fields: Any,
) -> Credential:
    """Change fields; a new `secret` replaces the stored one (None keeps it); `workflows`
    (when given) replaces the set of workflows it is granted to, `shared_with` the users who may
    name it in definitions. Records a `credential_changed`
    audit row naming the fields that changed (never the secret itself)."""
    changed = sorted(fields)
    for key, value in fields.items():
        if key not in ("name", "kind", "description", "username", "field_name", "allowed_hosts"):
            raise ValueError(f"{key} cannot be changed")
        setattr(credential, key, [h.strip() for h in value] if key == "allowed_hosts" else value)
    if secret is not None:
        credential.set_secret(secret)
        changed.append("secret")
    credential.save()
    detail: dict[str, Any] = {"fields": changed, "allowed_hosts": credential.allowed_hosts}
    if workflows is not None:
        credential.workflows.set(list(workflows))
        detail["workflows"] = sorted(credential.workflows.values_list("pk", flat=True))
    if shared_with is not None:
        detail["shared_with"] = set_credential_users(credential, shared_with)
    record_credential_audit("credential_changed", credential, acting_user or credential.owner, request, detail)
    return credential


def delete_credential(credential: Credential, *, acting_user=None, request=None) -> None:
    record_credential_audit("credential_deleted", credential, acting_user or credential.owner, request, {})
    credential.delete()


def record_credential_audit(action: str, credential: Credential, actor, request, detail: dict[str, Any]) -> None:
    """An audit row about `credential` (never its secret)."""
    record_audit(
        action,
        actor=actor,
        request=request,
        target=f"credential {credential.pk}",
        detail={"name": credential.name, "owner": credential.owner.get_username(), **detail},
    )


def set_credential_users(credential: Credential, users: Iterable) -> list[str]:
    """Give exactly `users` the right to use the credential in definitions; returns their names."""
    wanted = {u.pk: u for u in users}
    for user in credential.shared_with:
        if user.pk not in wanted:
            remove_perm(USE_PERM, user, credential)
    for user in wanted.values():
        assign_perm(USE_PERM, user, credential)
    return sorted(u.get_username() for u in wanted.values())


def may_use_credential(user, credential: Credential) -> bool:
    """Whether `user` may put `credential` into a workflow definition: its owner, a superuser,
    or someone the owner gave `connectors.use_credential` on it."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    return credential.owner_id == user.pk or user.is_superuser or user.has_perm(USE_PERM, credential)


#
# Credentials named in definitions
#

# Activity params that name a stored credential (http.request's auth.credential; notify.*).
CREDENTIAL_PARAMS = ("credential", "signing_credential")


def credential_references(definition: Any) -> list[tuple[str, str]]:
    """(node id, credential name) for every credential a definition names, in nested graphs and
    dynamic items too. A name that is not a plain string (a template, a JSONPath) is returned
    as is: `check_credential_references` refuses it."""
    found: list[tuple[str, str]] = []
    # An explicit stack, not recursion: a definition is user data and may nest deeply.
    stack: list[tuple[Any, str]] = [(definition, "")]
    while stack:
        value, node_id = stack.pop()
        if isinstance(value, dict):
            node_id = str(value["id"]) if isinstance(value.get("id"), (str, int)) and "type" in value else node_id
            params = value.get("params")
            if isinstance(params, dict):
                auth = params.get("auth")
                if isinstance(auth, dict) and "credential" in auth:
                    found.append((node_id, auth["credential"]))
                for key in CREDENTIAL_PARAMS:
                    if key in params:
                        found.append((node_id, params[key]))
            stack.extend((child, node_id) for child in reversed(list(value.values())))
        elif isinstance(value, list):
            stack.extend((child, node_id) for child in reversed(value))
    return found


def check_credential_references(user, definition: Any, previous: Any = None) -> list[str]:
    """Why `user` may not save `definition` (empty: they may), as far as credentials go.

    Each credential name the definition adds (one already in `previous` stays allowed, so an
    editor can change other nodes) must be written out, and `user` must be allowed to use a
    credential by that name (see may_use_credential).
    """
    before = {name for _node, name in credential_references(previous) if isinstance(name, str)} if previous else set()
    problems: list[str] = []
    for node_id, name in credential_references(definition):
        if isinstance(name, str) and name in before:
            continue
        where = f"node '{node_id}'" if node_id else "the definition"
        if not isinstance(name, str) or not name or "{{" in name or name.startswith("$"):
            problems.append(f"{where}: a credential must be named by a plain string, not computed ({name!r})")
            continue
        candidates = Credential.objects.filter(name=name).select_related("owner")
        if not any(may_use_credential(user, c) for c in candidates):
            problems.append(
                f"{where}: you may not use a credential named {name!r} (only its owner, or users it is shared "
                "with, may put it into a workflow)"
            )
    return problems


def rotate_all() -> int:
    """Re-encrypt every stored secret with the primary CREDENTIALS_KEY; returns how many."""
    count = 0
    for credential in Credential.objects.only("pk", "secret_encrypted").iterator():
        Credential.objects.filter(pk=credential.pk).update(secret_encrypted=crypto.rotate(credential.secret_encrypted))
        count += 1
    return count


def run_workflow_ids(ctx: ActivityContext) -> tuple[int, int | None, int | None] | None:
    """(workflow id, workflow owner id, initiator id) of the run `ctx` belongs to (cached on ctx)."""
    found = ctx.__dict__.get("_wb_run_ids")
    if found is None:
        found = (
            Execution.objects.filter(pk=ctx.execution_id)
            .values_list("workflow_id", "workflow__owner_id", "created_by_id")
            .first()
        )
        ctx.__dict__["_wb_run_ids"] = found
    return found


def credential_for_run(
    ctx: ActivityContext, name: Any, *, kinds: tuple[str, ...] | None = None, url: str | None = None
) -> Credential:
    """The credential called `name` that its owner granted to the run's workflow.

    With `url`, its host must be one the credential allows. When credentials of several owners
    by that name are granted, the workflow owner's wins, then the initiator's. Raises
    ActivityError (CredentialNotFound, CredentialHostNotAllowed …) otherwise, never saying
    whether a credential by that name exists elsewhere.
    """
    if not isinstance(name, str) or not name:
        raise ActivityError(
            "CredentialNotFound", 'name a stored credential, e.g. {"credential": "github"}', retryable=False
        )
    ids = run_workflow_ids(ctx)
    candidates = list(Credential.objects.filter(workflows__pk=ids[0], name=name).select_related("owner")) if ids else []
    if ids and len(candidates) > 1:
        preferred = [c for c in candidates if c.owner_id == ids[1]] or [c for c in candidates if c.owner_id == ids[2]]
        if len(preferred) != 1:
            owners = ", ".join(sorted(c.owner.get_username() for c in candidates))
            raise ActivityError(
                "CredentialAmbiguous",
                f"credentials named {name!r} of several users ({owners}) are granted to this workflow; rename one",
                retryable=False,
            )
        candidates = preferred
    if not candidates:
        raise ActivityError(
            "CredentialNotFound",
            f"no credential named {name!r} is granted to this workflow (its owner grants it on the credential)",
            retryable=False,
        )
    credential = candidates[0]
    if kinds and credential.kind not in kinds:
        wanted = ", ".join(kinds)
        raise ActivityError(
            "CredentialKindMismatch",
            f"credential {name!r} is a {credential.kind} credential; this needs {wanted}",
            retryable=False,
        )
    if url is not None:
        check_credential_host(credential, url)
    Credential.objects.filter(pk=credential.pk).update(last_used_at=timezone.now())
    return credential


def check_credential_host(credential: Credential, url: str) -> None:
    """Raise ActivityError(CredentialHostNotAllowed) unless `url`'s host is one the credential allows."""
    try:
        parsed = httpx.URL(url)
        host, port = parsed.host, parsed.port or {"http": 80, "https": 443}.get(parsed.scheme)
    except (httpx.InvalidURL, TypeError, ValueError):
        raise ActivityError("InvalidURL", f"not a valid URL: {url!r}", retryable=False) from None
    if not host or not credential.allows_host(host, port):
        allowed = ", ".join(credential.allowed_hosts) or "none"
        raise ActivityError(
            "CredentialHostNotAllowed",
            f"credential {credential.name!r} may not be sent to {host or url!r} (its allowed hosts: {allowed})",
            retryable=False,
        )


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
    execution_id = ctx.execution_id if Execution.objects.filter(pk=ctx.execution_id).exists() else None
    step_id = ctx.step_id if execution_id and StepRun.objects.filter(pk=ctx.step_id).exists() else None
    return Delivery.objects.create(
        channel=channel, target=target[:500], execution_id=execution_id, step_id=step_id, node_id=ctx.node_id[:64]
    )


def record_attempt(
    delivery: Delivery, *, ok: bool, response_code: int | None = None, error: str = "", final: bool = False
) -> None:
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
