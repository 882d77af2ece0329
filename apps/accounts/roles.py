"""Roles: viewer, builder, operator, admin, as groups holding model permissions.

A role says what kind of thing a user may do; object shares still say on which workflows
(a builder edits only workflows shared with them for editing, an operator acts only on runs of
workflows they can see). No role grants a global `workflows.*_workflow` permission, since those
would open every workflow.

| capability                         | permission                     | viewer | builder | operator | admin |
|------------------------------------|--------------------------------|--------|---------|----------|-------|
| create workflows (and import them) | workflows.add_workflow         |        | yes     |          | yes   |
| start runs                         | executions.add_execution       |        | yes     | yes      | yes   |
| act on runs others started         | executions.change_execution    |        |         | yes      | yes   |
| manage credentials                 | connectors.add_credential      |        | yes     |          | yes   |
| manage users and roles             | auth.change_user               |        |         |          | yes   |

Operators and admins get the admin site's view permissions on runs, steps and events too
(the admin site also needs `is_staff`, which `assign_role` sets for them). Superusers hold
everything. New users get WB_DEFAULT_ROLE (builder unless set otherwise).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied
from django.db import transaction

from .services import record_audit

if TYPE_CHECKING:
    from django.contrib.auth.models import Group, User

    from .types import AnyUser

ROLE_NAMES = ("viewer", "builder", "operator", "admin")
ROLE_GROUP_PREFIX = "Role: "

CREATE_WORKFLOWS = "workflows.add_workflow"
RUN_WORKFLOWS = "executions.add_execution"
ACT_ON_OTHERS_RUNS = "executions.change_execution"
MANAGE_CREDENTIALS = "connectors.add_credential"
MANAGE_USERS = "auth.change_user"

_OPERATOR_ADMIN_VIEWS = [
    "executions.view_execution",
    "executions.view_steprun",
    "executions.view_executionevent",
    "worklist.view_workitem",
    "connectors.view_delivery",
    "metrics.view_executionmetric",
    "metrics.view_operationspage",
]
ROLE_PERMISSIONS: dict[str, list[str]] = {
    "viewer": [],
    "builder": [CREATE_WORKFLOWS, RUN_WORKFLOWS, MANAGE_CREDENTIALS, "workflow_templates.add_workflowtemplate"],
    "operator": [RUN_WORKFLOWS, ACT_ON_OTHERS_RUNS, *_OPERATOR_ADMIN_VIEWS],
    "admin": [
        CREATE_WORKFLOWS,
        RUN_WORKFLOWS,
        ACT_ON_OTHERS_RUNS,
        MANAGE_CREDENTIALS,
        "workflow_templates.add_workflowtemplate",
        *_OPERATOR_ADMIN_VIEWS,
        "auth.view_user",
        "auth.add_user",
        MANAGE_USERS,
        "auth.view_group",
        "auth.change_group",
        "accounts.view_auditlog",
        "accounts.view_apikey",
        "accounts.change_apikey",
        "accounts.view_apitoken",
        "accounts.change_apitoken",
        "axes.view_accessattempt",
        "axes.delete_accessattempt",
    ],
}
CAPABILITY_NAMES = {
    CREATE_WORKFLOWS: "create workflows",
    RUN_WORKFLOWS: "start runs",
    ACT_ON_OTHERS_RUNS: "act on runs other people started",
    MANAGE_CREDENTIALS: "manage credentials",
    MANAGE_USERS: "manage users",
}
CAPABILITY_ROLES = {perm: [role for role in ROLE_NAMES if perm in ROLE_PERMISSIONS[role]] for perm in CAPABILITY_NAMES}


def group_name(role: str) -> str:
    return ROLE_GROUP_PREFIX + role


def role_group(role: str) -> Group:
    """The role's group, created with its permissions when missing (a flushed test database,
    a fresh install before the data migration ran)."""
    if role not in ROLE_NAMES:
        raise ValueError(f"unknown role {role!r}; use one of: {', '.join(ROLE_NAMES)}")
    group, created = Group.objects.get_or_create(name=group_name(role))
    if created:
        wanted = ROLE_PERMISSIONS[role]
        found = [
            p
            for p in Permission.objects.select_related("content_type")
            if f"{p.content_type.app_label}.{p.codename}" in wanted
        ]
        group.permissions.set(found)
    return group


def roles_of(user: User) -> list[str]:
    names = set(user.groups.filter(name__startswith=ROLE_GROUP_PREFIX).values_list("name", flat=True))
    return [role for role in ROLE_NAMES if group_name(role) in names]


@transaction.atomic
def assign_role(user: User, role: str, *, acting_user: User | None = None) -> None:
    """Give `user` exactly `role` (replacing other roles); operators and admins become staff so
    they can use the admin site, whose pages then follow their role's permissions."""
    group = role_group(role)
    user.groups.remove(*user.groups.filter(name__startswith=ROLE_GROUP_PREFIX))
    user.groups.add(group)
    if role in ("operator", "admin") and not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    # Django caches permissions on the user object: drop them so the new role counts at once.
    for cache in ("_perm_cache", "_user_perm_cache", "_group_perm_cache"):
        user.__dict__.pop(cache, None)
    if acting_user is not None:
        record_audit(
            "permission_changed",
            actor=acting_user,
            target=f"user {user.pk}",
            detail={"user": user.get_username(), "role": role},
        )


def has_capability(user: AnyUser, perm: str) -> bool:
    return bool(getattr(user, "is_authenticated", False) and user.is_active and user.has_perm(perm))


def require_capability(user: AnyUser, perm: str) -> None:
    """Raise PermissionDenied, naming the roles that may, unless `user` holds `perm`."""
    if not has_capability(user, perm):
        roles = " or ".join(CAPABILITY_ROLES.get(perm, [])) or "admin"
        raise PermissionDenied(f"Your role may not {CAPABILITY_NAMES.get(perm, perm)} (it needs the {roles} role).")


def give_default_role(user: User) -> None:
    """New users start with WB_DEFAULT_ROLE (none when it is empty)."""
    role = settings.WB_DEFAULT_ROLE
    if role and not user.is_superuser:
        user.groups.add(role_group(role))
