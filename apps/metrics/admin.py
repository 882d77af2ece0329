from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import urlencode

from apps.executions.choices import ExecutionStatus, StepStatus, Trigger
from apps.workflows.definition.schema import NODE_TYPES
from workflowsite.paging import LargeTableAdminMixin, values_filter

from . import operations
from .models import ExecutionMetric, HourlyRollup, OperationsPage, StepMetric
from .prometheus import queue_depths


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows the collector and the rollup write: operators look, never add or edit."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ExecutionMetric)
class ExecutionMetricAdmin(LargeTableAdminMixin, ReadOnlyAdmin):
    list_display = ["execution_id", "workflow", "status", "trigger", "error_type", "duration_ms", "finished_at"]
    # Fixed choices, not a SELECT DISTINCT over every row; no date_hierarchy (a DISTINCT date_trunc over
    # every row on each view); the "finished at" filter gives the ranges.
    list_filter = [
        values_filter("status", "status", lambda: ExecutionStatus.choices),
        values_filter("trigger", "trigger", lambda: Trigger.choices),
        "finished_at",
    ]
    search_fields = ["=execution_id", "workflow__name", "correlation_id", "error_type"]
    list_select_related = ["workflow"]
    show_full_result_count = False


def _node_types() -> list[tuple[str, str]]:
    return [(t, t) for t in sorted(NODE_TYPES)]


@admin.register(StepMetric)
class StepMetricAdmin(LargeTableAdminMixin, ReadOnlyAdmin):
    list_display = [
        "execution_id",
        "workflow",
        "node_id",
        "activity",
        "attempt",
        "status",
        "duration_ms",
        "queue_wait_ms",
        "finished_at",
    ]
    list_filter = [
        values_filter("status", "status", lambda: StepStatus.choices),
        values_filter("node_type", "node type", _node_types),
        "finished_at",
    ]
    search_fields = ["=execution_id", "node_id", "activity"]
    list_select_related = ["workflow"]
    show_full_result_count = False


@admin.register(HourlyRollup)
class HourlyRollupAdmin(LargeTableAdminMixin, ReadOnlyAdmin):
    list_display = ["hour", "workflow", "count", "successes", "failures", "cancelled", "min_ms", "max_ms"]
    list_filter = ["hour"]
    list_select_related = ["workflow"]
    show_full_result_count = False


@admin.register(OperationsPage)
class OperationsAdmin(ReadOnlyAdmin):
    """The operator's page: workers, queue depths, stuck runs and recent failures, with
    links to the Execution admin's bulk actions (cancel, retry) on exactly those runs."""

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.is_active and request.user.is_staff

    def changelist_view(self, request, extra_context=None):
        changelist = reverse("admin:executions_execution_changelist")
        stuck = operations.stuck_runs()
        failures = operations.recent_failures()
        context = {
            **self.admin_site.each_context(request),
            "title": "Operations",
            "opts": self.model._meta,
            "workers": operations.workers(),
            "queues": queue_depths(),
            "stuck": stuck,
            "stuck_minutes": settings.WB_STUCK_RUN_MINUTES,
            "stuck_link": changelist + "?" + urlencode({"id__in": ",".join(str(r["id"]) for r in stuck)})
            if stuck
            else "",
            "failures": failures,
            "failures_link": changelist + "?" + urlencode({"id__in": ",".join(str(e.pk) for e in failures)})
            if failures
            else "",
            "running_link": changelist + "?" + urlencode({"status__exact": "running"}),
            "failed_link": changelist + "?" + urlencode({"status__exact": "failed"}),
        }
        return TemplateResponse(request, "admin/metrics/operations.html", context)
