from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from .models import Activity, Comment, Notification, NotificationPreference


@admin.register(Comment)
class CommentAdmin(admin.ModelAdmin):
    list_display = ("id", "workflow", "node_id", "author", "short_body", "created_at", "edited_at", "is_deleted")
    list_filter = ("is_deleted", "created_at")
    search_fields = ("body", "author__username", "workflow__name", "node_id")
    list_select_related = ("workflow", "author")
    raw_id_fields = ("workflow", "parent", "author")
    readonly_fields = ("created_at",)

    @admin.display(description="Body")
    def short_body(self, obj: Comment) -> str:
        return obj.body[:80]


@admin.register(Activity)
class ActivityAdmin(admin.ModelAdmin):
    list_display = ("created_at", "actor", "verb", "workflow", "target")
    list_filter = ("verb", "created_at")
    search_fields = ("actor__username", "workflow__name", "target")
    list_select_related = ("actor", "workflow")
    raw_id_fields = ("actor", "workflow")
    date_hierarchy = "created_at"
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # written by the application as things happen


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("created_at", "recipient", "kind", "text", "read")
    list_filter = ("kind", "read", "created_at")
    search_fields = ("recipient__username", "text")
    list_select_related = ("recipient",)
    raw_id_fields = ("recipient",)
    actions = ["mark_read"]
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # written by the application as things happen

    @admin.action(description="Mark selected notifications read")
    def mark_read(self, request: HttpRequest, queryset: QuerySet[Notification]) -> None:
        self.message_user(request, f"{queryset.update(read=True)} notification(s) marked read.")


@admin.register(NotificationPreference)
class NotificationPreferenceAdmin(admin.ModelAdmin):
    list_display = ("user", "email_shared", "email_comment", "email_reply", "email_mention", "email_approval")
    list_filter = ("email_shared", "email_comment", "email_reply", "email_mention", "email_approval")
    search_fields = ("user__username",)
    list_select_related = ("user",)
    raw_id_fields = ("user",)
