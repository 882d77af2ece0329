"""Execution pages: the list, the live page (and its polling fragment), step logs, the replay viewer
and its JSON export, the error overlay's "retry with changes", and the cancel/retry/pin actions.

Every view fetches through `access_execution` / `visible_executions`; strangers get 404.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import IntegerField, Q
from django.db.models.expressions import RawSQL
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.dateparse import parse_date
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.accounts.services import record_audit
from apps.accounts.types import AuthenticatedHttpRequest
from apps.common.htmx import base_template, client_redirect, is_htmx_partial
from apps.common.text import search_text
from apps.sharing.services import visible_workflows
from apps.workflows import jsontext
from apps.workflows.definition.graph import find_node, graph_svg, iter_nodes
from apps.workflows.definition.layout import STATUSES as GRAPH_NODE_STATUSES
from apps.workflows.definition.validator import DefinitionError
from apps.workflows.forms import RetryWithChangesForm
from apps.workflows.suggestions import suggest
from workflowsite.paging import EstimatedCountPaginator

from . import depgraph_drawing, presenters
from .access import access_execution, may_act_on, visible_executions
from .choices import ExecutionStatus, Trigger
from .engine.orchestrator import (
    InputError,
    cancel_execution,
    pause_execution,
    plan_retry_with_changes,
    resume_execution,
    retry_execution,
    retry_failed,
)
from .engine.orchestrator import retry_with_changes as retry_changed
from .engine.redaction import redact
from .engine.signals import SignalRejected
from .models import Execution, ExecutionEvent, StepRun
from .orchestration import send_signal_to_chain

GRAPH_STATUSES = frozenset(GRAPH_NODE_STATUSES)

PAGE_SIZE = 25
TIMELINE_LIMIT = 200  # the live page shows the latest events; the replay viewer has them all

#
# List
#


@require_GET
@login_required
def execution_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Runs the user may see, filtered by status, workflow, trigger and date; 25 a page."""
    qs = visible_executions(request.user).select_related("workflow", "created_by").order_by("-created_at", "-pk")
    status = request.GET.get("status", "")
    workflow = request.GET.get("workflow", "")
    trigger = request.GET.get("trigger", "")
    try:
        since = parse_date(request.GET.get("since", "")) if request.GET.get("since") else None
    except ValueError:  # well formed but no such day (2020-13-45): ignore it like any other bad filter
        since = None
    q = search_text(request.GET.get("q", ""))[:100]
    if status in ExecutionStatus.values:
        qs = qs.filter(status=status)
    if workflow.isdigit():
        qs = qs.filter(workflow_id=int(workflow))
    if trigger in Trigger.values:
        qs = qs.filter(trigger=trigger)
    if since:
        qs = qs.filter(created_at__date__gte=since)
    if request.GET.get("pinned") == "1":
        qs = qs.filter(pinned=True)
    if q:
        qs = qs.filter(Q(pk=int(q)) if q.isdigit() else Q(workflow__name__icontains=q) | Q(correlation_id=q))
    # No COUNT(*) over every visible run: exact up to 1,000 (or the page asked for), "at least" beyond
    # (workflowsite/paging.py).
    page = EstimatedCountPaginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "filters": {
            "status": status,
            "workflow": workflow,
            "trigger": trigger,
            "since": request.GET.get("since", ""),
            "q": q,
            "pinned": request.GET.get("pinned", ""),
        },
        "statuses": ExecutionStatus.choices,
        "triggers": Trigger.choices,
        "workflows": visible_workflows(request.user).only("pk", "name").order_by("name"),
    }
    if is_htmx_partial(request) and request.htmx.target == "execution-results":
        return render(request, "executions/partials/execution_results.html", context)
    return render(request, "executions/list.html", {**context, "base_template": base_template(request)})


#
# Live page
#


LIVE_UPDATE_ROWS = 1000


def _panel_context(execution: Execution, user: Any, steps: list[StepRun]) -> dict:
    """What the status panel and the error overlay render, over the run's steps."""
    failed = presenters.failed_step(execution, steps) if execution.status == ExecutionStatus.FAILED else None
    context: dict[str, Any] = {
        "execution": execution,
        "panel": presenters.status_panel(execution, steps),
        "can_change": may_act_on(user, execution),
        "failed_step": failed,
        "output_pretty": presenters.pretty(redact(execution.output)),
        "history_warn_at": settings.WB_HISTORY_WARN_EVENTS,
    }
    if failed is not None or execution.status == ExecutionStatus.FAILED:
        context["overlay"] = error_overlay(execution, failed)
    if context["panel"].has_dynamic:
        item_events = list(
            ExecutionEvent.objects.filter(execution=execution, type__in=("item_started", "item_finished"))
            .only("created_at", "payload", "step_id", "type")
            .order_by("seq")
        )
        context["dynamic"] = presenters.dynamic_panels(steps, item_events)
        context["can_retry_failed_items"] = execution.is_finished and any(
            c[0] in ("failed", "blocked", "cancelled") and c[1] for d in context["dynamic"] for c in d.counts
        )
    context["signals"] = presenters.declared_signals(execution)
    context["chain"] = presenters.continue_chain(execution)
    # Iterations across the chain: only a long-running (continue-as-new) loop has a chain to speak of.
    long_running = _long_running_loops(execution)
    context["iterations"] = max(
        ((s.state or {}).get("iterations", 0) for s in steps if s.node_id in long_running and s.scope == ""),
        default=None,
    )
    return context


def _long_running_loops(execution: Execution) -> set[str]:
    return {
        str(n.get("id"))
        for n in (execution.definition or {}).get("nodes", [])
        if isinstance(n, dict) and n.get("type") == "loop" and n.get("long_running")
    }


def live_context(execution: Execution, user: Any, *, after: int | None = None) -> dict:
    """Everything the live page and its full fragments render. `after`: only timeline rows past that seq.

    `last_seq` (what the page will ask to be told after) is the run's last event as of `execution`,
    the row read before the queries below: the row's status and its last_seq were committed
    together, and the steps and events read later are at least as new, so everything rendered is up
    to date with `last_seq`. Taking it from the events instead (read later, outside the row's
    snapshot) let a page that rendered "running" claim the events that finished the run, and then
    never be told about them.
    """
    seen = execution.last_seq
    steps = presenters.execution_steps(execution)
    context = _panel_context(execution, user, steps)
    failed = context["failed_step"]
    events = ExecutionEvent.objects.filter(execution=execution, seq__lte=seen)
    if after is not None:
        timeline = list(events.filter(seq__gt=after).order_by("seq")[:LIVE_UPDATE_ROWS])
        # A long backlog comes in pieces: the next update carries on after the last row sent.
        last_seq = timeline[-1].seq if len(timeline) == LIVE_UPDATE_ROWS else max(after, seen)
    else:
        timeline = list(events.order_by("-seq")[:TIMELINE_LIMIT])[::-1]
        last_seq = seen
    statuses = presenters.node_statuses(steps)
    context.update(
        after=after,
        graph=graph_svg(
            execution.definition,
            statuses=statuses,
            highlight=[failed.node_id] if failed else [],
            title=f"Execution {execution.pk}",
            id_prefix=f"ex{execution.pk}",
        ),
        steps=presenters.step_rows(steps),
        timeline=presenters.timeline_rows(timeline),
        timeline_truncated=after is None and seen > TIMELINE_LIMIT,
        last_seq=last_seq,
    )
    dynamic_nodes = presenters.dynamic_node_ids(execution.definition)
    if dynamic_nodes:
        graphs = [
            g
            for g in (
                presenters.dynamic_graph(execution, n, steps=steps, critical=after is None) for n in dynamic_nodes
            )
            if g is not None
        ]
        if after is None:
            context["dependency_graphs"] = [dependency_graph_context(execution, g) for g in graphs]
        else:
            # Only the items that changed: static/js/depgraph.js recolours them in place.
            changes = presenters.dynamic_changes(execution, graphs, after, last_seq)
            context["dynamic_changes"] = json.dumps(changes) if changes else ""
    return context


# Past this many events behind, a page gets the full panel (in pieces) rather than the changes.
LIVE_CHANGES_MAX_EVENTS = 200


def _light_steps(execution: Execution) -> list[StepRun]:
    """The run's steps with what the counts, the graph's statuses and the table's rows need, and the
    number of their log lines (`log_count`): no input, output, state or logs to decode. Not for
    dynamic nodes (their item labels and panels read the state)."""
    log_count = RawSQL(
        "CASE WHEN jsonb_typeof(logs) = 'array' THEN jsonb_array_length(logs) ELSE 0 END",
        [],
        output_field=IntegerField(),
    )
    return list(
        StepRun.objects.filter(execution=execution)
        .only(
            "id",
            "execution_id",
            "node_id",
            "node_type",
            "activity",
            "scope",
            "attempt",
            "status",
            "started_at",
            "finished_at",
        )
        .annotate(log_count=log_count)
        .order_by("id")
    )


def live_changes_context(execution: Execution, user: Any, *, after: int) -> dict | None:
    """Only what changed in events (after, execution.last_seq], for a page that shows the run as of
    `after`: the step counts and the run's status badge (or the whole status panel, when it has
    sections that change with every event: dynamic nodes, a continue-as-new chain, the long-history
    warning with its count of events), the rows of the
    steps those events touched (each with the id of the row it follows in the table's order), their
    nodes' statuses in the graph, the new timeline rows and the dependency-graph items that changed.

    None when only the full panel will do: the run's own status changed (buttons, overlay, output
    and the failed node's highlight go with it), or the page is too far behind. `last_seq` is read
    with the row, as in live_context.
    """
    seen = execution.last_seq
    if seen - after > LIVE_CHANGES_MAX_EVENTS:
        return None
    events = list(ExecutionEvent.objects.filter(execution=execution, seq__gt=after, seq__lte=seen).order_by("seq"))
    if any(e.type.startswith("execution_") for e in events):
        return None
    definition = execution.definition or {}
    kinds = {str(n.get("type")) for n, _p, _w in iter_nodes(definition.get("nodes", []))}
    warn_at = settings.WB_HISTORY_WARN_EVENTS
    panel_full = (
        bool(kinds & presenters.DYNAMIC_TYPES)
        or bool(_long_running_loops(execution))
        or bool(warn_at and seen >= warn_at)
        or execution.continued_from_id is not None
    )
    if panel_full:
        steps = presenters.execution_steps(execution)
        context: dict[str, Any] = _panel_context(execution, user, steps)
    else:
        steps = _light_steps(execution)
        context = {"execution": execution, "panel": presenters.status_panel(execution, steps, with_eta=False)}
    # The steps the events touched: by the event's step, or by its node where it names no step.
    touched_steps = {e.step_id for e in events if e.step_id}
    touched_nodes = {(e.scope, e.node_id) for e in events if not e.step_id and e.node_id}
    labels = presenters.item_labels(steps)
    changed: list[dict] = []
    previous: int | None = None
    for step in presenters.tree_order(steps):
        if step.pk in touched_steps or (step.scope, step.node_id) in touched_nodes:
            log_count = step.log_count if hasattr(step, "log_count") else len(step.logs or [])
            changed.append({"step": step, "label": labels.get(step.pk), "log_count": log_count, "after": previous})
        previous = step.pk
    statuses = presenters.node_statuses(steps)
    nodes = {row["step"].node_id for row in changed}
    node_changes = {
        n: (statuses.get(n, "pending") if statuses.get(n, "pending") in GRAPH_STATUSES else "unknown")
        for n in sorted(nodes)
    }
    context.update(
        after=after,
        last_seq=max(after, seen),
        panel_full=panel_full,
        changed_rows=changed,
        node_changes=json.dumps(node_changes) if node_changes else "",
        timeline=presenters.timeline_rows(events),
    )
    dynamic_nodes = presenters.dynamic_node_ids(execution.definition)
    if dynamic_nodes:
        graphs = [
            g
            for g in (presenters.dynamic_graph(execution, n, steps=steps, critical=False) for n in dynamic_nodes)
            if g is not None
        ]
        changes = presenters.dynamic_changes(execution, graphs, after, seen)
        context["dynamic_changes"] = json.dumps(changes) if changes else ""
    return context


def dependency_graph_context(execution: Execution, graph: dict) -> dict:
    """What templates/executions/partials/dependency_graph.html draws for one dynamic node."""
    item_url = reverse("executions:dynamic-item", args=[execution.pk, graph["node"], "ITEM"]).replace("ITEM", "{}")
    svg = depgraph_drawing.render_svg(graph, title=f"Dependency graph of {graph['node']}", link_for_item=item_url)
    counts = [(s, graph["counts"].get(s, 0)) for s in presenters.DYNAMIC_ITEM_STATUSES]
    return {"graph": graph, "svg": mark_safe(svg), "counts": counts, "total": len(graph["items"])}  # noqa: S308 - render_svg escapes all text


@require_GET
@login_required
def execution_dynamic(request: HttpRequest, pk: int, node_id: str) -> HttpResponse:
    """One dynamic node's dependency graph as a fragment (the live page re-fetches it when items
    appear that it has not drawn yet)."""
    execution = access_execution(request.user, pk)
    graph = presenters.dynamic_graph(execution, node_id)
    if graph is None:
        raise Http404("No such dynamic node.")
    return render(
        request,
        "executions/partials/dependency_graph.html",
        {"execution": execution, "d": dependency_graph_context(execution, graph)},
    )


@require_GET
@login_required
def execution_dynamic_item(request: HttpRequest, pk: int, node_id: str, item_id: str) -> HttpResponse:
    """Where a click on a dependency-graph item leads: its child run, else its step and logs (as
    the log viewer shows them), else a note that it has not started."""
    execution = access_execution(request.user, pk)
    graph = presenters.dynamic_graph(execution, node_id)
    item = next((i for i in (graph or {}).get("items", []) if i["id"] == item_id), None)
    if item is None:
        raise Http404("No such item.")
    if item["child_execution"]:
        return client_redirect(request, reverse("executions:detail", args=[item["child_execution"]]))
    if item["step"]:
        return step_detail(request, execution.pk, item["step"])
    return HttpResponse(
        render_to_string("executions/partials/item_not_started.html", {"item": item, "node": node_id}, request=request)
    )


def error_overlay(execution: Execution, failed: StepRun | None) -> dict:
    error = redact(execution.error or (failed.error if failed else None) or {})
    details = {
        "execution": execution.pk,
        "workflow": execution.workflow.name,
        "error": error,
        "node": error.get("node") or (failed.node_id if failed else None),
        "step_input": redact(failed.input) if failed else None,
        "attempt": failed.attempt if failed else None,
    }
    return {
        "error": error,
        "node": details["node"],
        "step": failed,
        "step_input": details["step_input"],
        "suggestion": suggest(error),
        "step_input_pretty": presenters.pretty(details["step_input"]) if failed and failed.input is not None else "",
        "details_json": json.dumps(details, indent=2, default=str),
    }


def render_live_fragments(execution: Execution, user: Any, *, after: int, full: bool = False) -> tuple[str, int]:
    """The out-of-band fragments that bring a live page from event `after` up to date, and the
    last event seq they include. Sent over the websocket and answered to the polling request alike.

    Only what changed (live_changes.html) unless `full` or the changes call for the whole panel
    (live_update.html).
    """
    if not full:
        context = live_changes_context(execution, user, after=after)
        if context is not None:
            return render_to_string("executions/partials/live_changes.html", context), context["last_seq"]
    context = live_context(execution, user, after=after)
    return render_to_string("executions/partials/live_update.html", context), context["last_seq"]


@require_GET
@login_required
def execution_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The live execution page: graph, status panel, timeline, steps, logs, error overlay."""
    execution = access_execution(request.user, pk)
    context = live_context(execution, request.user)
    context["base_template"] = base_template(request)
    return render(request, "executions/detail.html", context)


@require_GET
@login_required
def execution_live(request: HttpRequest, pk: int) -> HttpResponse:
    """The polling fallback: the same fragments the websocket sends, from `?after=<seq>`; with
    `&full=1` the whole panel (what live.js asks for when the page is out of sync)."""
    execution = access_execution(request.user, pk)
    try:
        after = max(0, int(request.GET.get("after", "0")))
    except ValueError:
        after = 0
    html, _last_seq = render_live_fragments(execution, request.user, after=after, full=request.GET.get("full") == "1")
    return HttpResponse(html)


@require_GET
@login_required
def step_detail(request: HttpRequest, pk: int, step_id: int) -> HttpResponse:
    """A step's log viewer: its input, output, error and log lines (redacted)."""
    execution = access_execution(request.user, pk)
    try:
        step = StepRun.objects.get(pk=step_id, execution=execution)
    except StepRun.DoesNotExist:
        raise Http404("No such step.") from None
    context = {
        "execution": execution,
        "step": step,
        "input": presenters.pretty(redact(step.input)),
        "output": presenters.pretty(redact(step.output)),
        "error": redact(step.error) if step.error else None,
        "logs": redact(step.logs or []),
        "active": step.status not in ("completed", "failed", "cancelled", "skipped"),
        "base_template": base_template(request),
    }
    return render(request, "executions/step.html", context)


#
# Actions
#


@require_POST
@login_required
def execution_cancel(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    execution = access_execution(request.user, pk, "change")
    if cancel_execution(execution, acting_user=request.user):
        record_audit(
            "execution_cancelled",
            actor=request.user,
            request=request,
            target=f"execution {execution.pk}",
            detail={"workflow": execution.workflow_id, "via": "ui"},
        )
        messages.success(request, f"Execution {execution.pk} cancelled.")
    else:
        messages.info(request, f"Execution {execution.pk} had already finished.")
    return client_redirect(request, reverse("executions:detail", args=[execution.pk]))


@require_POST
@login_required
def execution_retry(request: HttpRequest, pk: int) -> HttpResponse:
    execution = access_execution(request.user, pk, "run")
    try:
        new = retry_execution(execution, acting_user=request.user)
    except (DefinitionError, InputError) as exc:
        messages.error(request, f"Could not retry: {exc}")
        return client_redirect(request, reverse("executions:detail", args=[execution.pk]))
    messages.success(request, f"Started execution {new.pk}, a retry of {execution.pk}.")
    return client_redirect(request, reverse("executions:detail", args=[new.pk]))


@require_POST
@login_required
def execution_pin(request: HttpRequest, pk: int) -> HttpResponse:
    """Pin (kept past the retention period) or unpin a run."""
    execution = access_execution(request.user, pk, "change")
    pinned = request.POST.get("pinned") == "1"
    Execution.objects.filter(pk=execution.pk).update(pinned=pinned)
    messages.success(
        request,
        f"Execution {execution.pk} {'pinned: it is kept' if pinned else 'unpinned: it expires with the others'}.",
    )
    return client_redirect(request, reverse("executions:detail", args=[execution.pk]))


def _actor(request: HttpRequest) -> str:
    return request.user.get_username()


@require_POST
@login_required
def execution_pause(request: HttpRequest, pk: int) -> HttpResponse:
    """Pause a running run (running steps finish; nothing new starts) or resume a paused one."""
    execution = access_execution(request.user, pk, "change")
    resume = request.POST.get("action") == "resume"
    done = (resume_execution if resume else pause_execution)(execution, actor=_actor(request))
    if done:
        messages.success(request, f"Execution {execution.pk} {'resumed' if resume else 'paused'}.")
    else:
        messages.info(
            request, f"Execution {execution.pk} is {execution.status}: nothing to {'resume' if resume else 'pause'}."
        )
    return client_redirect(request, reverse("executions:detail", args=[execution.pk]))


@require_POST
@login_required
def execution_signal(request: HttpRequest, pk: int) -> HttpResponse:
    """Send one of the workflow's declared signals with a JSON payload."""
    execution = access_execution(request.user, pk, "change")
    name = request.POST.get("name", "").strip()
    try:
        payload = jsontext.loads(request.POST.get("payload") or "{}")
    except ValueError as exc:
        messages.error(request, f"The payload is not valid JSON: {exc}")
        return client_redirect(request, reverse("executions:detail", args=[execution.pk]))
    try:
        _, result = send_signal_to_chain(execution, name, payload, actor=_actor(request))
    except SignalRejected as exc:
        messages.error(request, f"Signal “{name}” refused: {exc.message}" + (f" ({exc.field})" if exc.field else ""))
    else:
        messages.success(request, f"Signal “{name}” sent: {result.get('delivered', 'recorded')}.")
    return client_redirect(request, reverse("executions:detail", args=[execution.pk]))


@require_POST
@login_required
def execution_retry_failed(request: HttpRequest, pk: int) -> HttpResponse:
    """Re-run only the failed, blocked and cancelled items of the run's dynamic nodes."""
    execution = access_execution(request.user, pk, "run")
    try:
        new = retry_failed(execution, acting_user=request.user)
    except (InputError, DefinitionError) as exc:
        messages.error(request, f"Could not retry the failed items: {exc}")
        return client_redirect(request, reverse("executions:detail", args=[execution.pk]))
    messages.success(request, f"Started execution {new.pk}: the failed items of {execution.pk} run again.")
    return client_redirect(request, reverse("executions:detail", args=[new.pk]))


@require_http_methods(["GET", "POST"])
@login_required
def retry_with_changes(request: HttpRequest, pk: int) -> HttpResponse:
    """Edit the run input or the failed node's params, then re-run from the failed step."""
    execution = access_execution(request.user, pk, "run")
    if execution.status != ExecutionStatus.FAILED:
        messages.info(request, "Only failed runs can be retried with changes.")
        return client_redirect(request, reverse("executions:detail", args=[execution.pk]))
    steps = presenters.execution_steps(execution)
    failed = presenters.failed_step(execution, steps)
    node = find_node(execution.definition, failed.node_id) if failed else None
    is_activity = bool(node and node.get("type") == "activity")
    initial = {"input": execution.input, "params": (node or {}).get("params", {})}
    form = RetryWithChangesForm(request.POST or None, initial=initial, node_is_activity=is_activity)
    status = 200
    preview = None
    if request.method == "GET":
        try:
            preview = plan_retry_with_changes(execution)
        except (InputError, DefinitionError):
            preview = None
    if request.method == "POST":
        status = 422
        if form.is_valid():
            node_params = None
            if (
                node
                and is_activity
                and form.cleaned_data.get("params") is not None
                and form.cleaned_data["params"] != node.get("params", {})
            ):
                node_params = {node["id"]: form.cleaned_data["params"]}
            new_input = form.cleaned_data["input"]
            changes = {"input": None if new_input == execution.input else new_input, "node_params": node_params}
            if "preview" in request.POST:
                try:
                    preview = plan_retry_with_changes(execution, **changes)
                    status = 200
                except InputError as exc:
                    form.add_error(
                        "params" if exc.field == "node_params" and "params" in form.fields else "input",
                        f"{exc.field}: {exc.message}",
                    )
                except DefinitionError as exc:
                    form.add_error(
                        "params" if "params" in form.fields else "input", "; ".join(str(p) for p in exc.problems)
                    )
                return render(
                    request,
                    "executions/retry_with_changes.html",
                    {
                        "execution": execution,
                        "form": form,
                        "node": node,
                        "failed_step": failed,
                        "preview": preview,
                        "base_template": base_template(request),
                    },
                    status=status,
                )
            try:
                new = retry_changed(
                    execution,
                    acting_user=request.user,
                    input=None if new_input == execution.input else new_input,
                    node_params=node_params,
                )
            except InputError as exc:
                form.add_error(
                    "params" if exc.field == "node_params" and "params" in form.fields else "input",
                    f"{exc.field}: {exc.message}",
                )
            except DefinitionError as exc:
                form.add_error(
                    "params" if "params" in form.fields else "input", "; ".join(str(p) for p in exc.problems)
                )
            else:
                messages.success(request, f"Started execution {new.pk}, a retry of {execution.pk} with changes.")
                return client_redirect(request, reverse("executions:detail", args=[new.pk]))
    return render(
        request,
        "executions/retry_with_changes.html",
        {
            "execution": execution,
            "form": form,
            "node": node,
            "failed_step": failed,
            "preview": preview,
            "base_template": base_template(request),
        },
        status=status,
    )


#
# Replay
#


def _filtered_events(events: list[ExecutionEvent], query: str) -> list[int]:
    """Indexes of events whose type or node matches `query` (case-insensitive substring)."""
    query = query.lower()
    return [i for i, e in enumerate(events) if query in e.type.lower() or query in (e.node_id or "").lower()]


@require_GET
@login_required
def replay(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """Every event of a run; the state (variables, step outputs, node statuses) at the selected one
    and what changed since the previous one. ?at=<seq> selects; ?q= filters by event type or node."""
    execution = access_execution(request.user, pk)
    events = list(ExecutionEvent.objects.filter(execution=execution).order_by("seq"))
    q = search_text(request.GET.get("q", ""))[:100]
    try:
        at = int(request.GET.get("at", ""))
    except ValueError:
        at = events[-1].seq if events else 0
    index = next((i for i, e in enumerate(events) if e.seq >= at), len(events) - 1)
    visible = _filtered_events(events, q) if q else list(range(len(events)))
    context: dict[str, Any] = {
        "execution": execution,
        "events": [
            {"event": events[i], "summary": presenters.summarize_event(events[i].type, redact(events[i].payload or {}))}
            for i in visible
        ],
        "q": q,
        "count": len(events),
        "base_template": base_template(request),
    }
    if events:
        before, after = presenters.replay_states(events, index)
        current = events[index]
        context.update(
            current=current,
            index=index,
            prev_seq=events[index - 1].seq if index > 0 else None,
            next_seq=events[index + 1].seq if index + 1 < len(events) else None,
            first_seq=events[0].seq,
            last_seq=events[-1].seq,
            state_vars=presenters.pretty(redact(after.variables)),
            state_steps=presenters.pretty(redact(after.steps)),
            run_status=after.status,
            payload=presenters.pretty(redact(current.payload)),
            diff=[
                {
                    **row,
                    "before": presenters.pretty(row["before"]) if row["before"] is not None else "",
                    "after": presenters.pretty(row["after"]) if row["after"] is not None else "",
                }
                for row in presenters.diff_states(before, after)
            ],
            graph=graph_svg(
                execution.definition,
                statuses=after.node_statuses,
                highlight=[current.node_id] if current.node_id else [],
                title=f"Execution {execution.pk} at event {current.seq}",
                id_prefix="replay",
            ),
        )
    if is_htmx_partial(request) and request.htmx.target == "replay-state":
        return render(request, "executions/partials/replay_state.html", context)
    return render(request, "executions/replay.html", context)


@require_GET
@login_required
def replay_export(request: HttpRequest, pk: int) -> HttpResponse:
    """The replay as a JSON download (every event with the state after it; secrets redacted)."""
    execution = access_execution(request.user, pk)
    events = list(ExecutionEvent.objects.filter(execution=execution).order_by("seq"))
    response = JsonResponse(
        presenters.replay_document(execution, events), json_dumps_params={"indent": 2, "default": str}
    )
    response["Content-Disposition"] = f'attachment; filename="execution-{execution.pk}-replay.json"'
    return response
