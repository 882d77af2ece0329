"""Admin for credentials (secrets masked, write-only) and deliveries."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from . import services
from .models import Credential, Delivery


class CredentialForm(forms.ModelForm):
    secret = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Write-only. Leave empty to keep the stored secret.",
    )

    class Meta:
        model = Credential
        fields = ["owner", "name", "kind", "description", "username", "field_name"]

    def clean(self) -> dict:
        data = super().clean()
        if not self.instance.pk and not data.get("secret"):
            self.add_error("secret", "A new credential needs a secret.")
        for field, message in services.check_credential(data.get("kind", ""), username=data.get("username", ""), field_name=data.get("field_name", "")).items():
            self.add_error(field, message)
        return data


@admin.register(Credential)
class CredentialAdmin(admin.ModelAdmin):
    form = CredentialForm
    list_display = ("name", "owner", "kind", "masked_secret", "last_used_at", "updated_at")
    list_filter = ("kind",)
    search_fields = ("name", "description", "owner__username")
    list_select_related = ("owner",)
    autocomplete_fields = ("owner",)
    readonly_fields = ("masked_secret", "created_at", "updated_at", "last_used_at")

    @admin.display(description="Secret")
    def masked_secret(self, obj: Credential) -> str:
        return obj.masked if obj.pk else "—"

    def save_model(self, request: HttpRequest, obj: Credential, form, change: bool) -> None:
        secret = form.cleaned_data.get("secret")
        if secret:
            obj.set_secret(secret)
        super().save_model(request, obj, form, change)


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ("created_at", "channel", "target", "status", "attempts", "response_code", "execution_link", "node_id")
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
