"""Work items in the admin: filters, and actions that call the services."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.db.models import Q
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from . import services
from .allocation import normalise_tags
from .choices import OPEN_STATES
from .models import AllocationCursor, WorkerProfile, WorkItem


class WorkItemActionForm(ActionForm):
    decision = forms.CharField(required=False, help_text="For “complete”: one of the item's outcomes.")
    comment = forms.CharField(required=False)


class OverdueFilter(admin.SimpleListFilter):
    title = "due"
    parameter_name = "due"

    def lookups(self, request, model_admin):
        return [("overdue", "Overdue and open"), ("open", "Open")]

    def queryset(self, request, queryset):
        if self.value() == "overdue":
            return queryset.filter(state__in=OPEN_STATES, due_at__lte=timezone.now())
        if self.value() == "open":
            return queryset.filter(state__in=OPEN_STATES)
        return queryset


@admin.register(WorkItem)
class WorkItemAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "title",
        "state",
        "workflow",
        "execution_id",
        "strategy",
        "offered_to",
        "claimed_by",
        "decision",
        "due_at",
        "created_at",
    )
    list_filter = ("state", OverdueFilter, "workflow", "created_at")
    search_fields = ("title", "description", "claimed_by__username", "workflow__name")
    list_select_related = ("workflow", "claimed_by")
    raw_id_fields = ("execution", "step", "workflow", "claimed_by")
    filter_horizontal = ("offered_users", "offered_groups", "declined_by")
    readonly_fields = ("why_offered", "created_at", "claimed_at", "started_at", "completed_at")
    exclude = ("allocation",)
    date_hierarchy = "created_at"
    action_form = WorkItemActionForm
    actions = ["complete_items", "expire_items", "reassign_to_me"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("offered_users")

    @admin.display(description="Strategy")
    def strategy(self, obj: WorkItem) -> str:
        return (obj.allocation or {}).get("strategy") or "as listed"

    @admin.display(description="Offered to")
    def offered_to(self, obj: WorkItem) -> str:
        return ", ".join(u.get_username() for u in obj.offered_users.all()) or "—"

    @admin.display(description="Why these people")
    def why_offered(self, obj: WorkItem) -> str:
        allocation = obj.allocation or {}
        reasons = format_html_join(
            "", "<li><strong>{}</strong>: {}</li>", sorted((allocation.get("reasons") or {}).items())
        )
        skipped = format_html_join(
            "", "<li><strong>{}</strong>: {}</li>", sorted((allocation.get("skipped") or {}).items())
        )
        log = format_html_join(
            "",
            "<li>{} {} {}{}</li>",
            (
                (
                    e.get("at", "")[:19],
                    e.get("event", ""),
                    ", ".join(e.get("to", [])),
                    f" ({e['reason']})" if e.get("reason") else "",
                )
                for e in allocation.get("log") or []
            ),
        )
        return format_html(
            "<p>Strategy: {}</p><p>Got it:</p><ul>{}</ul><p>Skipped:</p><ul>{}</ul><p>Log:</p><ul>{}</ul>",
            allocation.get("strategy") or "offered to the users and teams as listed",
            reasons or "—",
            skipped or "—",
            log or "—",
        )

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
        done = sum(
            1
            for pk in queryset.filter(state__in=OPEN_STATES).values_list("pk", flat=True)
            if services.expire_work_item(pk, force=True, actor=request.user.get_username())
        )
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


class AvailabilityFilter(admin.SimpleListFilter):
    title = "availability"
    parameter_name = "availability"

    def lookups(self, request, model_admin):
        return [("available", "Available now"), ("away", "Unavailable or away")]

    def queryset(self, request, queryset):
        away = Q(available=False) | Q(away_until__gt=timezone.now())
        if self.value() == "available":
            return queryset.exclude(away)
        if self.value() == "away":
            return queryset.filter(away)
        return queryset


class WorkerProfileForm(forms.ModelForm):
    capabilities = forms.CharField(required=False, help_text="Comma-separated tags, e.g. finance, german.")

    class Meta:
        model = WorkerProfile
        fields = ["user", "capabilities", "available", "away_until", "max_open_items"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["capabilities"] = ", ".join(self.instance.capabilities)

    def clean_capabilities(self) -> list[str]:
        tags = normalise_tags(self.cleaned_data.get("capabilities", ""))
        too_long = [t for t in tags if len(t) > 50]
        if too_long:
            raise forms.ValidationError(f"Tags are at most 50 characters: {too_long[0][:60]}")
        return tags


@admin.register(WorkerProfile)
class WorkerProfileAdmin(admin.ModelAdmin):
    form = WorkerProfileForm
    list_display = ("user", "tags", "available", "away_until", "max_open_items", "updated_at")
    list_filter = (AvailabilityFilter,)
    search_fields = ("user__username", "user__email")
    list_select_related = ("user",)
    autocomplete_fields = ("user",)

    @admin.display(description="Capabilities")
    def tags(self, obj: WorkerProfile) -> str:
        return ", ".join(obj.capabilities) or "—"


@admin.register(AllocationCursor)
class AllocationCursorAdmin(admin.ModelAdmin):
    list_display = ("workflow", "node_id", "last_username", "updated_at")
    search_fields = ("workflow__name", "node_id")
    list_select_related = ("workflow",)
    readonly_fields = ("workflow", "node_id", "updated_at")
