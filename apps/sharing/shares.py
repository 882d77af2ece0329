"""Shares of any shareable object (workflows and templates): list, grant, change, revoke.

A share is a (user or team, level) pair held as guardian object permissions.
Levels: view, change ("edit"), admin (may manage shares). Callers check that the
acting user holds admin on the object first; these functions record the audit row and send
`signals.object_shared`, on which apps.comments records the activity entry and the notification.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, User
from django.db import transaction
from guardian.shortcuts import assign_perm, get_groups_with_perms, get_perms, get_users_with_perms, remove_perm

from apps.accounts.services import record_audit
from apps.accounts.types import AnyUser

from .services import normalize_level
from .signals import object_shared

LEVEL_ORDER = ("view", "change", "admin")
# Which perms each level gives, by model: codename suffixes are the model name.
SUFFIX_LEVELS = {"view": ("view",), "change": ("view", "change"), "admin": ("view", "change", "delete", "admin")}


def _codenames(obj: Any, level: str) -> list[str]:
    model = obj._meta.model_name
    return [f"{obj._meta.app_label}.{action}_{model}" for action in SUFFIX_LEVELS[level]]


def level_from_perms(obj: Any, perms: set[str] | list[str]) -> str | None:
    model = obj._meta.model_name
    perms = set(perms)
    for level in ("admin", "change", "view"):
        if f"{SUFFIX_LEVELS[level][-1]}_{model}" in perms:
            return level
    return None


def level_for(user: AnyUser, obj: Any) -> str | None:
    """The user's effective level on obj (superusers and owners: admin), counting team shares."""
    if not user.is_authenticated:
        return None
    if user.is_superuser or getattr(obj, "owner_id", None) == user.pk:
        return "admin"
    return level_from_perms(obj, get_perms(user, obj))


def has_level(user: User, obj: Any, level: str) -> bool:
    have = level_for(user, obj)
    return have is not None and LEVEL_ORDER.index(have) >= LEVEL_ORDER.index(normalize_level(level))


@dataclass(frozen=True)
class Share:
    kind: str  # "user" or "team"
    grantee_id: int
    name: str
    level: str

    @property
    def id(self) -> str:
        return f"{self.kind}-{self.grantee_id}"


def list_shares(obj: Any) -> list[Share]:
    """Direct shares of obj (users first, then teams); the owner is listed as a user with admin."""
    shares: list[Share] = []
    # guardian annotates both results as either shape; with attach_perms=True they are dicts.
    for user, perms in get_users_with_perms(obj, attach_perms=True, with_group_users=False).items():  # type: ignore[union-attr]
        level = level_from_perms(obj, perms)
        if level:
            shares.append(Share("user", user.pk, user.get_username(), level))
    for group, perms in get_groups_with_perms(obj, attach_perms=True).items():  # type: ignore[union-attr]
        level = level_from_perms(obj, perms)
        if level:
            shares.append(Share("team", group.pk, group.name, level))
    return sorted(shares, key=lambda s: (s.kind != "user", s.name))


def find_grantee(share_id: str) -> User | Group | None:
    kind, _, pk = share_id.partition("-")
    if not pk.isdigit():
        return None
    if kind == "user":
        return get_user_model().objects.filter(pk=pk).first()
    if kind == "team":
        return Group.objects.filter(pk=pk).first()
    return None


@transaction.atomic
def grant(obj: Any, grantee: User | Group, level: str, *, acting_user: User) -> Share:
    """Give grantee exactly `level` on obj; records audit, and sends `object_shared` (activity and a
    notification, apps.comments)."""
    level = normalize_level(level)
    for perm in _codenames(obj, "admin"):
        remove_perm(perm, grantee, obj)
    for perm in _codenames(obj, level):
        assign_perm(perm, grantee, obj)
    record_audit(
        "share_granted",
        actor=acting_user,
        target=f"{obj._meta.model_name} {obj.pk}",
        detail={
            "grantee": str(grantee),
            "grantee_type": "group" if isinstance(grantee, Group) else "user",
            "level": level,
        },
    )
    object_shared.send(sender=type(obj), obj=obj, grantee=grantee, level=level, acting_user=acting_user)
    is_team = isinstance(grantee, Group)
    return Share(
        "team" if is_team else "user",
        grantee.pk,
        grantee.name if isinstance(grantee, Group) else grantee.get_username(),
        level,
    )


@transaction.atomic
def revoke(obj: Any, grantee: User | Group, *, acting_user: User) -> None:
    for perm in _codenames(obj, "admin"):
        remove_perm(perm, grantee, obj)
    record_audit(
        "share_revoked",
        actor=acting_user,
        target=f"{obj._meta.model_name} {obj.pk}",
        detail={"grantee": str(grantee), "grantee_type": "group" if isinstance(grantee, Group) else "user"},
    )


def grant_owner(obj: Any) -> None:
    for perm in _codenames(obj, "admin"):
        assign_perm(perm, obj.owner, obj)
