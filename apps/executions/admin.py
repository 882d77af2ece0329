from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import Q
from django.forms.models import BaseInlineFormSet
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils.html import format_html

from apps.accounts.services import record_audit
from apps.workflows import jsontext
from apps.workflows.definition.registry import activity_names
from apps.workflows.definition.schema import NODE_TYPES
from apps.workflows.forms import choice_field
from apps.workflows.models import Workflow
from workflowsite.paging import LargeTableAdminMixin, indexed_distinct, values_filter

from .choices import FINISHED_EXECUTION
from .engine import orchestrator
from .engine.signals import SignalRejected
from .models import DynamicItem, Execution, ExecutionEvent, StepRun, Timer
from .orchestration import send_signal_to_chain


class SignalForm(forms.Form):
    name = forms.ChoiceField()
    payload = forms.CharField(widget=forms.Textarea(attrs={"rows": 6}), initial="{}", help_text="JSON")

    def __init__(self, *args, execution: Execution, **kwargs):
        super().__init__(*args, **kwargs)
        declared = [s.get("name") for s in execution.definition.get("signals", []) if isinstance(s, dict)]
        choice_field(self, "name").choices = [(n, n) for n in [*declared, "pause", "resume", "cancel"]]

    def clean_payload(self):
        try:
            return jsontext.loads(self.cleaned_data["payload"] or "{}")
        except ValueError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc}") from None


# Rows an inline on the execution page lists at most: a long loop has thousands of steps and events.
INLINE_ROWS_MAX = 200


class NewestRowsFormSet(BaseInlineFormSet):
    """The run's newest INLINE_ROWS_MAX rows by `newest_by`, shown oldest first. One query with a LIMIT
    instead of every row (Django cannot filter a sliced queryset, so the slice is taken after the
    inline's own filter on the execution, and handed on as a list)."""

    newest_by = "id"

    def get_queryset(self):
        if not hasattr(self, "_newest_rows"):
            rows = list(super().get_queryset().order_by(f"-{self.newest_by}")[:INLINE_ROWS_MAX])
            rows.reverse()
            self._newest_rows = rows
        return self._newest_rows


class NewestStepsFormSet(NewestRowsFormSet):
    newest_by = "id"


class NewestEventsFormSet(NewestRowsFormSet):
    newest_by = "seq"


STEP_COLUMNS = ("node_id", "scope", "attempt", "status", "activity", "worker", "started_at", "finished_at")
EVENT_COLUMNS = ("seq", "type", "node_id", "scope", "actor", "created_at")


class StepRunInline(admin.TabularInline):
    model = StepRun
    formset = NewestStepsFormSet  # the newest INLINE_ROWS_MAX; the Steps link lists them all
    extra = 0
    can_delete = False
    show_change_link = True
    fields = readonly_fields = STEP_COLUMNS
    ordering = ["id"]
    verbose_name_plural = f"step runs (the newest {INLINE_ROWS_MAX} at most)"

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class ExecutionEventInline(admin.TabularInline):
    model = ExecutionEvent
    formset = NewestEventsFormSet  # the newest INLINE_ROWS_MAX; the Events link lists them all
    extra = 0
    can_delete = False
    fields = readonly_fields = EVENT_COLUMNS
    ordering = ["seq"]
    max_num = 0
    verbose_name_plural = f"events (the newest {INLINE_ROWS_MAX} at most)"

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Execution)
class ExecutionAdmin(LargeTableAdminMixin, admin.ModelAdmin):
    list_display = ["id", "workflow", "status", "trigger", "created_by", "created_at", "duration", "parent_link"]
    list_filter = ["status", "trigger", "workflow", "created_at", "pinned"]
    search_fields = ["=id", "workflow__name", "workflow__slug", "correlation_id"]
    list_select_related = ["workflow", "created_by", "parent"]
    # No date_hierarchy: its year and month links are a SELECT DISTINCT date_trunc(...) over every run on
    # every page view (0.6 s at 900,000 runs); the "Created at" filter offers the same ranges from an index.
    readonly_fields = [
        "workflow",
        "status",
        "trigger",
        "input",
        "variables",
        "output",
        "error",
        "created_by",
        "parent",
        "parent_step",
        "continued_from",
        "retry_of",
        "created_at",
        "started_at",
        "finished_at",
        "last_seq",
        "correlation_id",
        "definition",
        "steps_link",
        "events_link",
    ]
    fields = ["pinned", *readonly_fields]
    inlines = [StepRunInline, ExecutionEventInline]
    actions = ["cancel_selected", "retry_selected", "pause_selected", "resume_selected"]
    change_form_template = "admin/executions/execution/change_form.html"

    def get_urls(self):
        return [
            path("<int:pk>/signal/", self.admin_site.admin_view(self.signal_view), name="executions_execution_signal"),
            *super().get_urls(),
        ]

    def signal_view(self, request, pk: int):
        """Send a signal to a run from the admin."""
        execution = get_object_or_404(Execution, pk=pk)
        if not self.has_change_permission(request, execution):
            return redirect("admin:executions_execution_change", pk)
        form = SignalForm(request.POST or None, execution=execution)
        if request.method == "POST" and form.is_valid():
            try:
                _, result = send_signal_to_chain(
                    execution,
                    form.cleaned_data["name"],
                    form.cleaned_data["payload"],
                    actor=request.user.get_username(),
                )
            except SignalRejected as exc:
                form.add_error("payload" if (exc.field or "").startswith("payload") else "name", exc.message)
            else:
                self.message_user(
                    request, f"Signal {form.cleaned_data['name']} sent: {result['delivered']}.", messages.SUCCESS
                )
                return redirect("admin:executions_execution_change", pk)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Send a signal to execution {pk}",
            "form": form,
            "execution": execution,
            "opts": self.model._meta,
        }
        return render(request, "admin/executions/execution/signal.html", context)

    @admin.action(description="Pause selected runs")
    def pause_selected(self, request, queryset):
        done = sum(1 for e in queryset if orchestrator.pause_execution(e, actor=request.user.get_username()))
        self._report(request, "Paused", done, queryset.count() - done, "not running")

    @admin.action(description="Resume selected runs")
    def resume_selected(self, request, queryset):
        done = sum(1 for e in queryset if orchestrator.resume_execution(e, actor=request.user.get_username()))
        self._report(request, "Resumed", done, queryset.count() - done, "not paused")

    def _report(self, request, verb: str, done: int, skipped: int, why: str) -> None:
        """A bare green 'Paused 0 run(s).' read as success: say what was left alone, and why."""
        text = f"{verb} {done} run(s)" + (
            f"; {skipped} {'was' if skipped == 1 else 'were'} {why}, left as {'it is' if skipped == 1 else 'they are'}."
            if skipped
            else "."
        )
        self.message_user(request, text, messages.WARNING if skipped and not done else messages.SUCCESS)

    show_full_result_count = False

    def get_queryset(self, request):
        return _light_on_lists(
            request, super().get_queryset(request), "definition", "input", "variables", "output", "pending_signals"
        )

    def get_search_results(self, request, queryset, search_term):
        """A number is a run id or a correlation id (both indexed); anything else is also looked up in the
        workflows' names and slugs, through the small workflow table. The default search compared every
        run's id as text (`UPPER(id::text) = ...`) and joined every run to its workflow: seconds on a
        large table."""
        term = search_term.strip()
        if not term:
            return queryset, False
        matches = Q(correlation_id=term)
        if term.isdigit():
            matches |= Q(pk=int(term))
        else:
            workflows = Workflow.objects.filter(Q(name__icontains=term) | Q(slug__icontains=term)).values("pk")
            matches |= Q(workflow_id__in=workflows)
        return queryset.filter(matches), False

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description="Duration")
    def duration(self, obj: Execution) -> str:
        return f"{obj.duration_ms} ms" if obj.duration_ms is not None else "—"

    @admin.display(description="Parent")
    def parent_link(self, obj: Execution) -> str:
        if not obj.parent_id:
            return "—"
        return format_html(
            '<a href="{}">{}</a>', reverse("admin:executions_execution_change", args=[obj.parent_id]), obj.parent_id
        )

    @staticmethod
    def _step_count(obj: Execution) -> int:
        """Counted once per page (the link and its note both need it)."""
        if "_step_count" not in obj.__dict__:
            obj.__dict__["_step_count"] = StepRun.objects.filter(execution=obj).count()
        return obj.__dict__["_step_count"]

    @staticmethod
    def _more_note(count: int) -> str:
        return (
            f" (the newest {INLINE_ROWS_MAX} are listed below: follow the link for all)"
            if count > INLINE_ROWS_MAX
            else ""
        )

    @admin.display(description="Steps")
    def steps_link(self, obj: Execution) -> str:
        url = reverse("admin:executions_steprun_changelist") + f"?execution__id__exact={obj.pk}"
        count = self._step_count(obj)
        return format_html('<a href="{}">{} step runs</a>{}', url, count, self._more_note(count))

    @admin.display(description="Events")
    def events_link(self, obj: Execution) -> str:
        url = reverse("admin:executions_executionevent_changelist") + f"?execution__id__exact={obj.pk}"
        return format_html('<a href="{}">{} events</a>{}', url, obj.last_seq, self._more_note(obj.last_seq))

    @admin.action(description="Cancel selected runs")
    def cancel_selected(self, request, queryset):
        cancelled = 0
        for execution in queryset:
            if orchestrator.cancel_execution(execution, acting_user=request.user, reason="cancelled by an operator"):
                cancelled += 1
                record_audit(
                    "execution_cancelled",
                    actor=request.user,
                    request=request,
                    target=f"execution {execution.pk}",
                    detail={"workflow": execution.workflow_id, "via": "admin"},
                )
        skipped = queryset.count() - cancelled
        self.message_user(
            request,
            f"Cancelled {cancelled} run(s)" + (f"; {skipped} had already finished." if skipped else "."),
            messages.SUCCESS,
        )

    @admin.action(description="Retry selected runs (new runs with the same input)")
    def retry_selected(self, request, queryset):
        started, failed = [], []
        for execution in queryset:
            if execution.status not in FINISHED_EXECUTION:
                failed.append(f"{execution.pk} (still {execution.status})")
                continue
            try:
                started.append(orchestrator.retry_execution(execution, acting_user=request.user).pk)
            except Exception as exc:  # show the reason per run rather than a 500
                failed.append(f"{execution.pk} ({exc})")
        if started:
            self.message_user(request, f"Started runs {', '.join(map(str, started))}.", messages.SUCCESS)
        if failed:
            self.message_user(request, f"Not retried: {'; '.join(failed)}", messages.WARNING)


def _light_on_lists(request, queryset, *fields: str):
    """On a changelist, leave out the JSON columns no list shows (a run's definition, inputs, outputs):
    a page of 100 rows otherwise reads and decodes them all."""
    match = getattr(request, "resolver_match", None)
    if match and (match.url_name or "").endswith("_changelist"):
        return queryset.defer(*fields)
    return queryset


def _node_types() -> list[tuple[str, str]]:
    return [(t, t) for t in sorted(NODE_TYPES)]


def _activities() -> list[tuple[str, str]]:
    return [(a, a) for a in sorted(activity_names())]


class RunRowsAdmin(LargeTableAdminMixin, admin.ModelAdmin):
    """A large table of a run's rows (steps, events), written by the engine only: a number searched for
    is the run's id (indexed); text searches the `search_fields` as usual."""

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if term.isdigit():
            return queryset.filter(execution_id=int(term)), False
        return super().get_search_results(request, queryset, search_term)

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(StepRun)
class StepRunAdmin(RunRowsAdmin):
    list_display = [
        "id",
        "execution",
        "node_id",
        "scope",
        "attempt",
        "status",
        "activity",
        "worker",
        "started_at",
        "finished_at",
    ]
    # Node types and activities from their registries, not a SELECT DISTINCT over every step run.
    list_filter = [
        "status",
        values_filter("node_type", "node type", _node_types),
        values_filter("activity", "activity", _activities),
    ]
    search_fields = ["=execution__id", "node_id", "worker"]
    list_select_related = ["execution"]
    readonly_fields = [f.name for f in StepRun._meta.fields]
    show_full_result_count = False

    def get_queryset(self, request):
        return _light_on_lists(
            request,
            super().get_queryset(request),
            "input",
            "output",
            "error",
            "state",
            "logs",
            "execution__definition",
            "execution__input",
            "execution__variables",
            "execution__output",
            "execution__error",
        )


@admin.register(ExecutionEvent)
class ExecutionEventAdmin(RunRowsAdmin):
    list_display = ["execution", "seq", "type", "node_id", "scope", "actor", "created_at"]
    # The types there are, read through the type index (not a SELECT DISTINCT over every event).
    list_filter = [values_filter("type", "type", lambda: [(t, t) for t in indexed_distinct(ExecutionEvent, "type")])]
    search_fields = ["=execution__id", "node_id", "type"]
    list_select_related = ["execution"]
    readonly_fields = [f.name for f in ExecutionEvent._meta.fields]
    show_full_result_count = False

    def get_queryset(self, request):
        return _light_on_lists(
            request,
            super().get_queryset(request),
            "payload",
            "execution__definition",
            "execution__input",
            "execution__variables",
            "execution__output",
            "execution__error",
        )

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Timer)
class TimerAdmin(admin.ModelAdmin):
    list_display = ["id", "execution", "kind", "fire_at", "fired_at"]
    list_filter = ["kind", ("fired_at", admin.EmptyFieldListFilter)]
    search_fields = ["=execution__id"]
    readonly_fields = [f.name for f in Timer._meta.fields]
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False  # the engine creates timers


@admin.register(DynamicItem)
class DynamicItemAdmin(admin.ModelAdmin):
    """The items of dynamic nodes, one row each: what ran, what waits and on how many."""

    list_display = ["item_id", "step", "status", "waiting", "attempts", "started_at", "finished_at"]
    list_filter = ["status", "kept"]
    search_fields = ["=step__execution__id", "item_id"]
    list_select_related = ["step"]
    readonly_fields = [f.name for f in DynamicItem._meta.fields]
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False  # the engine creates them

    def has_change_permission(self, request, obj=None) -> bool:
        return False
