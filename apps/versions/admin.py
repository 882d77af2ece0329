"""Workflow versions are reversion rows: browse them from each workflow's "History" page
(VersionAdmin on Workflow). This adds a read-only list of all revisions for operators."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from reversion.models import Revision


@admin.register(Revision)
class RevisionAdmin(admin.ModelAdmin):
    list_display = ("id", "date_created", "user", "comment")
    list_filter = ("date_created",)
    search_fields = ("comment", "user__username")
    list_select_related = ("user",)
    date_hierarchy = "date_created"
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
