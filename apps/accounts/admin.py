"""Admin for API keys and the audit log: an operator's tools."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest
from rest_framework_api_key.admin import APIKeyModelAdmin
from rest_framework_api_key.models import APIKey as LibraryAPIKey

from . import roles, services
from .models import APIKey, APIToken, AuditLog
from .types import AuthenticatedHttpRequest

# The library registers its own concrete key model, which we do not use: one "API keys" page only.
if admin.site.is_registered(LibraryAPIKey):
    admin.site.unregister(LibraryAPIKey)


@admin.register(APIKey)
class APIKeyAdmin(APIKeyModelAdmin):
    """Keys are shown by prefix; the full key appears once, in a message, when created here."""

    list_display = ("prefix", "name", "user", "created", "last_used_at", "expiry_date", "_has_expired", "revoked")
    list_filter = ("revoked", "created", "expiry_date")
    search_fields = ("name", "prefix", "user__username")
    list_select_related = ("user",)
    autocomplete_fields = ("user",)
    actions = ["revoke_keys"]

    def get_readonly_fields(self, request: HttpRequest, obj: APIKey | None = None) -> tuple[str, ...]:
        return (*super().get_readonly_fields(request, obj), "last_used_at")

    def save_model(self, request: HttpRequest, obj: APIKey, form, change: bool) -> None:
        created = not obj.pk
        super().save_model(request, obj, form, change)
        if created:
            services.record_audit(
                AuditLog.Action.API_KEY_CREATED,
                actor=request.user,
                request=request,
                target=f"api key {obj.prefix}",
                detail={"name": obj.name, "key_owner": obj.user.get_username(), "via": "admin"},
            )

    @admin.action(description="Revoke selected API keys", permissions=["change"])
    def revoke_keys(self, request: AuthenticatedHttpRequest, queryset: QuerySet[APIKey]) -> None:
        revoked = sum(
            services.revoke_api_key(api_key, acting_user=request.user, request=request)
            for api_key in queryset.select_related("user")
        )
        self.message_user(request, f"Revoked {revoked} API key(s).", messages.SUCCESS)


@admin.register(APIToken)
class APITokenAdmin(admin.ModelAdmin):
    """Tokens from POST /api/v1/auth/token: only a digest is stored, so nothing here can show one."""

    list_display = ("prefix", "user", "created_at", "expires_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at", "expires_at")
    search_fields = ("prefix", "user__username")
    list_select_related = ("user",)
    readonly_fields = ("user", "prefix", "digest", "created_at", "expires_at", "last_used_at", "revoked_at")
    actions = ["revoke_tokens"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Revoke selected tokens", permissions=["change"])
    def revoke_tokens(self, request: AuthenticatedHttpRequest, queryset: QuerySet[APIToken]) -> None:
        revoked = sum(
            services.revoke_token(token, acting_user=request.user, request=request)
            for token in queryset.select_related("user")
        )
        self.message_user(request, f"Revoked {revoked} token(s).", messages.SUCCESS)


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    """Append-only: operators read it; nobody adds, edits or deletes rows here."""

    list_display = ("created_at", "action", "actor", "username", "ip_address", "target")
    list_filter = ("action", "created_at")
    search_fields = ("username", "target")
    list_select_related = ("actor",)
    date_hierarchy = "created_at"
    show_full_result_count = False
    readonly_fields = ("created_at", "actor", "action", "username", "ip_address", "target", "detail")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditLog | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditLog | None = None) -> bool:
        return False


#
# Users and roles
#

User = get_user_model()
if admin.site.is_registered(User):
    admin.site.unregister(User)


def _role_action(role: str):
    @admin.action(description=f"Give the selected users the {role} role", permissions=["change"])
    def set_role(modeladmin, request: AuthenticatedHttpRequest, queryset: QuerySet) -> None:
        for user in queryset:
            roles.assign_role(user, role, acting_user=request.user)
        modeladmin.message_user(request, f"{queryset.count()} user(s) now have the {role} role.", messages.SUCCESS)

    set_role.__name__ = f"set_role_{role}"
    return set_role


@admin.register(User)
class RoleAwareUserAdmin(UserAdmin):
    """Django's user admin for the admin role: it manages users and their roles (actions), but
    only a superuser may make or edit superusers or hand out single permissions, so the role
    cannot raise itself above itself."""

    list_display = (*UserAdmin.list_display, "role_names")  # type: ignore[misc]  # UserAdmin's own, read once
    actions = [_role_action(role) for role in roles.ROLE_NAMES]

    @admin.display(description="Roles")
    def role_names(self, obj) -> str:
        return ", ".join(roles.roles_of(obj)) or "—"

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        fields = tuple(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:
            fields += ("is_superuser", "user_permissions")
        return fields

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_delete_permission(request, obj)
