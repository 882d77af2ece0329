"""Work items in the admin: filters, and actions that call the services."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm

from . import services
from .choices import OPEN_STATES
from .models import WorkItem


class WorkItemActionForm(ActionForm):
    decision = forms.CharField(required=False, help_text="For “complete”: one of the item's outcomes.")
    comment = forms.CharField(required=False)


class OverdueFilter(admin.SimpleListFilter):
    title = "due"
    parameter_name = "due"

    def lookups(self, request, model_admin):
        return [("overdue", "Overdue and open"), ("open", "Open")]

    def queryset(self, request, queryset):
        from django.utils import timezone

        if self.value() == "overdue":
            return queryset.filter(state__in=OPEN_STATES, due_at__lte=timezone.now())
        if self.value() == "open":
            return queryset.filter(state__in=OPEN_STATES)
        return queryset


@admin.register(WorkItem)
class WorkItemAdmin(admin.ModelAdmin):
    list_display = ("id", "title", "state", "workflow", "execution_id", "claimed_by", "decision", "due_at", "created_at")
    list_filter = ("state", OverdueFilter, "workflow", "created_at")
    search_fields = ("title", "description", "claimed_by__username", "workflow__name")
    list_select_related = ("workflow", "claimed_by")
    raw_id_fields = ("execution", "step", "workflow", "claimed_by")
    filter_horizontal = ("offered_users", "offered_groups", "declined_by")
    readonly_fields = ("created_at", "claimed_at", "started_at", "completed_at")
    date_hierarchy = "created_at"
    action_form = WorkItemActionForm
    actions = ["complete_items", "expire_items", "reassign_to_me"]

    @admin.action(description="Complete with the decision given above (and resume the run)")
    def complete_items(self, request, queryset):
        decision = request.POST.get("decision", "").strip()
        comment = request.POST.get("comment", "").strip()
        done = 0
        for item in queryset.filter(state__in=OPEN_STATES):
            try:
                services.complete_work_item(item, request.user, decision or item.outcomes[0], comment, force=True)
                done += 1
            except services.WorkItemError as exc:
                self.message_user(request, f"#{item.pk}: {exc.message}", messages.ERROR)
        self.message_user(request, f"Completed {done} work item(s).")

    @admin.action(description="Expire now (the run takes the timeout path)")
    def expire_items(self, request, queryset):
        done = sum(1 for pk in queryset.filter(state__in=OPEN_STATES).values_list("pk", flat=True) if services.expire_work_item(pk, force=True, actor=request.user.get_username()))
        self.message_user(request, f"Expired {done} work item(s).")

    @admin.action(description="Reassign to me")
    def reassign_to_me(self, request, queryset):
        done = 0
        for item in queryset.filter(state__in=OPEN_STATES).select_related("workflow"):
            try:
                services.reassign_work_item(item, request.user, acting_user=request.user)
                done += 1
            except services.WorkItemError as exc:
                self.message_user(request, f"#{item.pk}: {exc.message}", messages.ERROR)
        self.message_user(request, f"Reassigned {done} work item(s) to you.")
