"""Admin for workflows: version history (reversion) and object permissions (guardian)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from guardian.admin import GuardedModelAdmin
from reversion.admin import VersionAdmin

from apps.sharing.services import grant_owner_permissions

from . import editing, services
from .models import Subflow, SubflowVersion, Workflow


@admin.register(Workflow)
class WorkflowAdmin(VersionAdmin, GuardedModelAdmin):
    """History/recover come from VersionAdmin, the "Object permissions" page from GuardedModelAdmin."""

    list_display = ("name", "slug", "owner", "team", "is_active", "updated_at")
    list_filter = ("is_active", "team", "created_at")
    search_fields = ("name", "slug", "description")
    list_select_related = ("owner", "team")
    autocomplete_fields = ("owner",)
    readonly_fields = ("created_at", "updated_at")
    prepopulated_fields = {"slug": ("name",)}
    date_hierarchy = "updated_at"
    actions = ["activate", "deactivate"]

    def save_model(self, request: HttpRequest, obj: Workflow, form, change: bool) -> None:
        # VersionAdmin records the revision around this; a new workflow's owner gets every permission,
        # as create_workflow does.
        if change and "definition" in form.changed_data:
            # A new definition goes through the editing service like the builder's and the API's: the
            # row locked, checked (credentials the operator may use), audited, one version.
            self._save_definition(request, obj, form)
        else:
            super().save_model(request, obj, form, change)
        if not change or "owner" in form.changed_data:
            grant_owner_permissions(obj)

    def _save_definition(self, request: HttpRequest, obj: Workflow, form) -> None:
        new_definition = obj.definition
        fields = {
            name: getattr(obj, name)
            for name in form.changed_data
            if name in services.UPDATABLE_FIELDS and name != "definition"
        }
        if "owner" in form.changed_data:
            Workflow.objects.filter(pk=obj.pk).update(owner=obj.owner)
        saved = editing.edit_definition(
            obj,
            lambda definition: editing.replace_definition(definition, new_definition) and "Edited in the admin",
            acting_user=request.user,
            fields=fields,
        )
        obj.refresh_from_db()
        obj.definition = saved.definition

    def _set_active(self, request: HttpRequest, queryset: QuerySet[Workflow], active: bool) -> None:
        changed = 0
        for workflow in queryset.select_related("owner", "team"):
            if workflow.is_active != active:
                services.update_workflow(
                    workflow,
                    acting_user=request.user,
                    comment=("Activated" if active else "Deactivated") + " from the admin",
                    is_active=active,
                )
                changed += 1
        self.message_user(
            request, f"{'Activated' if active else 'Deactivated'} {changed} workflow(s).", messages.SUCCESS
        )

    @admin.action(description="Activate selected workflows (they may start runs)", permissions=["change"])
    def activate(self, request: HttpRequest, queryset: QuerySet[Workflow]) -> None:
        self._set_active(request, queryset, True)

    @admin.action(description="Deactivate selected workflows (history kept, no new runs)", permissions=["change"])
    def deactivate(self, request: HttpRequest, queryset: QuerySet[Workflow]) -> None:
        self._set_active(request, queryset, False)


#
# Subflows
#


class SubflowVersionInline(admin.TabularInline):
    model = SubflowVersion
    extra = 0
    fields = ("number", "note", "created_by", "created_at", "graph")
    readonly_fields = fields
    can_delete = False  # plans inline versions by number: a version never changes or goes away

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Subflow)
class SubflowAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "owner", "created_at")
    search_fields = ("slug", "name", "description")
    list_select_related = ("owner",)
    autocomplete_fields = ("owner",)
    inlines = [SubflowVersionInline]

    def get_readonly_fields(self, request, obj=None):
        return ("slug",) if obj else ()

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
