"""Triggers in the admin: saving a schedule re-syncs its periodic task."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages

from . import services
from .models import EventTrigger, Schedule, WebhookEndpoint


class ScheduleForm(forms.ModelForm):
    class Meta:
        model = Schedule
        fields = ["workflow", "name", "cron", "timezone", "input", "enabled"]

    def clean_cron(self):
        try:
            return services.check_cron(self.cleaned_data["cron"])
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean_timezone(self):
        try:
            return services.check_timezone(self.cleaned_data["timezone"])
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin):
    form = ScheduleForm
    list_display = ("id", "workflow", "cron", "timezone", "enabled", "next_fire", "last_fired_at", "last_error")
    list_filter = ("enabled", "timezone")
    search_fields = ("workflow__name", "name", "cron")
    list_select_related = ("workflow",)
    raw_id_fields = ("workflow",)
    readonly_fields = ("periodic_task", "last_fired_at", "last_execution", "last_error", "created_by", "created_at")
    actions = ["enable", "disable"]

    @admin.display(description="next fire")
    def next_fire(self, obj: Schedule):
        return obj.next_fire_times(1)[0]

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
        services.sync_schedule(obj)

    def delete_model(self, request, obj):
        services.delete_schedule(obj)

    def delete_queryset(self, request, queryset):
        for schedule in queryset:
            services.delete_schedule(schedule)

    @admin.action(description="Enable")
    def enable(self, request, queryset):
        for schedule in queryset.select_related("workflow"):
            services.update_schedule(schedule, enabled=True)

    @admin.action(description="Disable")
    def disable(self, request, queryset):
        for schedule in queryset.select_related("workflow"):
            services.update_schedule(schedule, enabled=False)


class EventTriggerForm(forms.ModelForm):
    class Meta:
        model = EventTrigger
        fields = ["workflow", "event_type", "condition", "input_mapping", "enabled"]

    def clean_condition(self):
        try:
            services.check_condition(self.cleaned_data["condition"])
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None
        return self.cleaned_data["condition"]

    def clean_input_mapping(self):
        try:
            services.check_input_mapping(self.cleaned_data["input_mapping"])
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None
        return self.cleaned_data["input_mapping"]


@admin.register(EventTrigger)
class EventTriggerAdmin(admin.ModelAdmin):
    form = EventTriggerForm
    list_display = ("id", "event_type", "workflow", "enabled", "last_fired_at")
    list_filter = ("enabled", "event_type")
    search_fields = ("event_type", "workflow__name")
    list_select_related = ("workflow",)
    raw_id_fields = ("workflow",)


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "workflow", "token", "enabled", "last_used_at", "created_at")
    list_filter = ("enabled",)
    search_fields = ("name", "token", "workflow__name")
    list_select_related = ("workflow",)
    raw_id_fields = ("workflow",)
    readonly_fields = ("token", "created_by", "created_at", "last_used_at")
    fields = ("workflow", "name", "enabled", "token", "created_by", "created_at", "last_used_at")
    actions = ["rotate_secret"]

    def save_model(self, request, obj, form, change):
        if not change:
            secret = services.new_secret()
            obj.set_secret(secret)
            obj.created_by = request.user
            super().save_model(request, obj, form, change)
            services.record_webhook_audit("webhook_created", obj, request.user, {"via": "admin"}, request=request)
            self.message_user(request, f"The secret of this webhook (shown once): {secret}", messages.WARNING)
            return
        super().save_model(request, obj, form, change)
        services.record_webhook_audit(
            "webhook_changed", obj, request.user, {"fields": sorted(form.changed_data), "via": "admin"}, request=request
        )

    def delete_model(self, request, obj):
        services.delete_webhook(obj, acting_user=request.user, request=request)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            services.delete_webhook(obj, acting_user=request.user, request=request)

    @admin.action(description="Rotate the secret (the new one is shown once)")
    def rotate_secret(self, request, queryset):
        for endpoint in queryset:
            secret = services.rotate_webhook_secret(endpoint, acting_user=request.user, request=request)
            self.message_user(request, f"{endpoint}: new secret (shown once): {secret}", messages.WARNING)
