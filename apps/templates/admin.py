"""Admin for templates: version history (reversion), object permissions (guardian), stats."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from guardian.admin import GuardedModelAdmin
from reversion.admin import VersionAdmin

from apps.accounts.services import record_audit
from apps.accounts.types import AuthenticatedHttpRequest
from apps.sharing.shares import grant_owner

from .models import TemplateReview, TemplateUsage, WorkflowTemplate


@admin.register(WorkflowTemplate)
class WorkflowTemplateAdmin(VersionAdmin, GuardedModelAdmin):
    list_display = ("name", "slug", "category", "is_public", "owner", "usage", "success", "rating", "updated_at")
    list_filter = ("category", "is_public", "created_at")
    search_fields = ("name", "slug", "description")
    list_select_related = ("owner",)
    autocomplete_fields = ("owner",)
    readonly_fields = ("created_at", "updated_at")
    prepopulated_fields = {"slug": ("name",)}
    actions = ["make_public", "make_private"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[WorkflowTemplate]:
        return super().get_queryset(request).with_stats()

    @admin.display(description="Uses", ordering="usage_count")
    def usage(self, obj: WorkflowTemplate) -> int:
        return obj.usage_count  # type: ignore[attr-defined]  # annotated by get_queryset (with_stats)

    @admin.display(description="Success rate")
    def success(self, obj: WorkflowTemplate) -> str:
        rate = obj.stats()["success_rate"]
        return "—" if rate is None else f"{rate:.0%}"

    @admin.display(description="Rating", ordering="rating")
    def rating(self, obj: WorkflowTemplate) -> str:
        stats = obj.stats()
        return "—" if stats["rating"] is None else f"{stats['rating']:.1f} ★ ({stats['review_count']})"

    def save_model(self, request: HttpRequest, obj: WorkflowTemplate, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if not change or "owner" in form.changed_data:
            grant_owner(obj)

    @admin.action(description="Make selected templates public", permissions=["change"])
    def make_public(self, request: AuthenticatedHttpRequest, queryset: QuerySet[WorkflowTemplate]) -> None:
        published = list(queryset.filter(is_public=False))
        count = queryset.update(is_public=True)
        for template in published:
            record_audit(
                "template_published",
                actor=request.user,
                request=request,
                target=f"template {template.pk}",
                detail={"template": template.slug, "via": "admin"},
            )
        self.message_user(request, f"{count} template(s) made public.")

    @admin.action(description="Make selected templates private", permissions=["change"])
    def make_private(self, request: HttpRequest, queryset: QuerySet[WorkflowTemplate]) -> None:
        self.message_user(request, f"{queryset.update(is_public=False)} template(s) made private.")


@admin.register(TemplateUsage)
class TemplateUsageAdmin(admin.ModelAdmin):
    list_display = ("workflow", "template", "created_by", "created_at")
    list_filter = ("template", "created_at")
    search_fields = ("workflow__name", "workflow__slug", "template__name")
    list_select_related = ("workflow", "template", "created_by")
    raw_id_fields = ("workflow", "template", "created_by")


@admin.register(TemplateReview)
class TemplateReviewAdmin(admin.ModelAdmin):
    list_display = ("template", "user", "rating", "text", "updated_at")
    list_filter = ("rating", "updated_at")
    search_fields = ("template__name", "user__username", "text")
    list_select_related = ("template", "user")
    raw_id_fields = ("template", "user")
