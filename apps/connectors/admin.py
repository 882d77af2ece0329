"""Admin for credentials (secrets masked, write-only), deliveries, and AI usage, budgets and cache."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from guardian.admin import GuardedModelAdmin

from . import ai_usage, services
from .models import AIBudget, AICacheEntry, AIUsage, Credential, Delivery


class CredentialForm(forms.ModelForm):
    secret = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Write-only. Leave empty to keep the stored secret.",
    )

    class Meta:
        model = Credential
        fields = ["owner", "name", "kind", "description", "username", "field_name", "allowed_hosts", "workflows"]

    def clean(self) -> dict:
        super().clean()
        data = self.cleaned_data
        if not self.instance.pk and not data.get("secret"):
            self.add_error("secret", "A new credential needs a secret.")
        problems = services.check_credential(
            data.get("kind", ""),
            username=data.get("username", ""),
            field_name=data.get("field_name", ""),
            allowed_hosts=data.get("allowed_hosts") or [],
        )
        for field, message in problems.items():
            self.add_error(field, message)
        return data


@admin.register(Credential)
class CredentialAdmin(GuardedModelAdmin):
    """Object permissions (guardian) give other users `use_credential`: they may then name it in
    definitions; granting it to a workflow (`workflows`) is what lets that workflow's runs use it."""

    form = CredentialForm
    list_display = ("name", "owner", "kind", "masked_secret", "last_used_at", "updated_at")
    list_filter = ("kind",)
    search_fields = ("name", "description", "owner__username")
    list_select_related = ("owner",)
    autocomplete_fields = ("owner",)
    filter_horizontal = ("workflows",)
    readonly_fields = ("masked_secret", "created_at", "updated_at", "last_used_at")

    @admin.display(description="Secret")
    def masked_secret(self, obj: Credential) -> str:
        return obj.masked if obj.pk else "—"

    def save_model(self, request: HttpRequest, obj: Credential, form, change: bool) -> None:
        secret = form.cleaned_data.get("secret")
        if secret:
            obj.set_secret(secret)
        super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form, formsets, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        obj = form.instance
        services.record_credential_audit(
            "credential_changed" if change else "credential_created",
            obj,
            request.user,
            request,
            {
                "fields": sorted(form.changed_data),
                "allowed_hosts": obj.allowed_hosts,
                "workflows": sorted(obj.workflows.values_list("pk", flat=True)),
                "via": "admin",
            },
        )

    def delete_model(self, request: HttpRequest, obj: Credential) -> None:
        services.delete_credential(obj, acting_user=request.user, request=request)

    def delete_queryset(self, request: HttpRequest, queryset) -> None:
        for obj in queryset:
            services.delete_credential(obj, acting_user=request.user, request=request)


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "channel",
        "target",
        "status",
        "attempts",
        "response_code",
        "execution_link",
        "node_id",
    )
    list_filter = ("channel", "status", "created_at")
    search_fields = ("target", "node_id", "error")
    list_select_related = ("execution",)
    readonly_fields = [f.name for f in Delivery._meta.fields]
    show_full_result_count = False
    date_hierarchy = "created_at"

    @admin.display(description="Execution")
    def execution_link(self, obj: Delivery) -> str:
        return str(obj.execution_id or "—")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


#
# AI accounting
#


@admin.register(AIUsage)
class AIUsageAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "user",
        "purpose",
        "model",
        "status",
        "cache_hit",
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "latency_ms",
        "execution_id",
        "node_id",
    )
    list_filter = ("purpose", "status", "cache_hit", "model", "created_at")
    search_fields = ("user__username", "model", "node_id", "cache_key")
    list_select_related = ("user",)
    readonly_fields = [f.name for f in AIUsage._meta.fields]
    show_full_result_count = False
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(AIBudget)
class AIBudgetAdmin(admin.ModelAdmin):
    list_display = ("__str__", "requests_per_day", "tokens_per_day", "spent_today", "updated_at")
    list_select_related = ("user",)
    autocomplete_fields = ("user",)
    readonly_fields = ("spent_today", "updated_at")

    @admin.display(description="Spent today (requests / tokens)")
    def spent_today(self, obj: AIBudget) -> str:
        if not obj.pk:
            return "—"
        spent = ai_usage.spent_today(obj.user)
        scope = "user" if obj.user_id else "total"
        return f"{spent[scope + '_requests']} / {spent[scope + '_tokens']}"


@admin.register(AICacheEntry)
class AICacheEntryAdmin(admin.ModelAdmin):
    list_display = ("key", "model", "hits", "created_at", "expires_at")
    list_filter = ("model",)
    search_fields = ("key",)
    readonly_fields = ("key", "model", "answer", "hits", "created_at", "expires_at")
    actions = ["delete_selected"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
