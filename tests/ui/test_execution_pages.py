"""Execution pages: list, live page and its fragments, step logs, actions, retry with changes,
replay viewer and export, retention."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from apps.executions.models import Execution
from apps.executions.retention import purge_old_executions

from .conftest import make_run

pytestmark = pytest.mark.django_db


def _html(response) -> str:
    return response.content.decode()


#
# List
#


def test_the_list_filters_by_status_workflow_and_pinned(workflow, as_alice, django_assert_max_num_queries):
    failed = make_run(workflow, status="failed")
    done = make_run(workflow, status="completed", pinned=True)
    with django_assert_max_num_queries(10):
        html = _html(as_alice.get(reverse("executions:list")))
    assert f"#{failed.pk}" in html and f"#{done.pk}" in html
    html = _html(as_alice.get(reverse("executions:list"), {"status": "failed"}))
    assert f"#{failed.pk}<" in html and f"#{done.pk}<" not in html
    html = _html(as_alice.get(reverse("executions:list"), {"pinned": "1", "workflow": workflow.pk}))
    assert f"#{failed.pk}<" not in html and f"#{done.pk}<" in html
    html = _html(as_alice.get(reverse("executions:list"), {"q": str(done.pk)}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="execution-results"))
    assert "<html" not in html and f"#{done.pk}<" in html


#
# Live page
#


def test_the_live_page_colours_the_graph_and_fills_the_status_panel(running_run, as_alice):
    html = _html(as_alice.get(reverse("executions:detail", args=[running_run.pk])))
    assert 'class="node status-completed" data-node-id="greet"' in html
    assert 'class="node status-running" data-node-id="charge"' in html
    assert f'ws-connect="/ws/executions/{running_run.pk}/?after=7"' in html
    assert "django_htmx/ext/hx-ws-2.min.js" in html and "js/live.js" in html
    assert 'hx-trigger="every 2s"' in html  # the polling fallback
    assert "1 completed" in html and "1 running" in html and "Cancel run" in html
    assert html.count('class="ev ev-') == 7


def test_a_run_that_finishes_while_the_page_renders_is_not_claimed_as_seen(running_run, alice):
    """The page renders the run's row as read first; events committed after that read (here, the
    ones that complete the run) must not count as seen, or the page stays "Running" for good."""
    from apps.executions.models import ExecutionEvent
    from apps.executions.views import live_context, render_live_fragments

    as_read = Execution.objects.get(pk=running_run.pk)  # the row the page's view starts from
    charge = running_run.steps.get(node_id="charge")
    ExecutionEvent.objects.create(execution=running_run, seq=8, type="step_completed", node_id="charge", step=charge, payload={"output": None})
    ExecutionEvent.objects.create(execution=running_run, seq=9, type="execution_completed", payload={"output": {"ok": True}})
    Execution.objects.filter(pk=running_run.pk).update(status="completed", last_seq=9)

    page = live_context(as_read, alice)
    assert page["panel"].active and page["last_seq"] == 7
    assert [row["event"].seq for row in page["timeline"]][-1] == 7
    update = live_context(as_read, alice, after=5)
    assert update["last_seq"] == 7 and [row["event"].seq for row in update["timeline"]] == [6, 7]
    # What the page asks for next brings the finish.
    html, last_seq = render_live_fragments(Execution.objects.get(pk=running_run.pk), alice, after=page["last_seq"])
    assert last_seq == 9 and 'data-run-status="completed"' in html and f'id="ev-{running_run.pk}-9"' in html


def test_a_finished_run_neither_connects_nor_polls(failed_run, as_alice):
    html = _html(as_alice.get(reverse("executions:detail", args=[failed_run.pk])))
    assert "ws-connect" not in html and 'hx-trigger="every 2s"' not in html


def test_the_polling_fragment_sends_only_what_changed_out_of_band(running_run, as_alice):
    charge = running_run.steps.get(node_id="charge")
    html = _html(as_alice.get(reverse("executions:live", args=[running_run.pk]), {"after": 5}))
    assert 'id="exec-status"' not in html and 'id="exec-graph"' not in html and 'id="exec-steps"' not in html
    assert f'id="step-row-{charge.pk}"' in html and 'id="exec-counts" hx-swap-oob="true"' in html
    assert 'hx-swap-oob="beforeend:#timeline-rows"' in html
    assert f'id="ev-{running_run.pk}-6"' in html and f'id="ev-{running_run.pk}-5"' not in html
    assert f"?after={running_run.last_seq}" in html  # the poller moves on
    html = _html(as_alice.get(reverse("executions:live", args=[running_run.pk]), {"after": 7}))
    assert "beforeend:#timeline-rows" not in html and "step-row-" not in html
    # A page out of sync asks for the whole panel.
    html = _html(as_alice.get(reverse("executions:live", args=[running_run.pk]), {"after": 5, "full": "1"}))
    assert 'id="exec-status" hx-swap-oob="true"' in html and 'id="exec-graph"' in html and 'id="exec-steps" hx-swap-oob="true"' in html
    assert f'id="ev-{running_run.pk}-6"' in html and f'id="ev-{running_run.pk}-5"' not in html


def test_the_error_overlay_explains_the_failure(failed_run, as_alice):
    html = _html(as_alice.get(reverse("executions:detail", args=[failed_run.pk])))
    assert "This run failed at <code>charge</code>" in html
    assert "HTTP4xx" in html and "The remote resource was not found" in html
    assert 'class="node status-failed highlight" data-node-id="charge"' in html
    assert "/workflows/help/errors/#http-errors" in html
    assert "Copy details" in html and "Retry with changes" in html
    # The input the step received, redacted.
    assert "&quot;password&quot;: &quot;[redacted]&quot;" in html
    assert "s3cr3t-value" not in html


def test_step_logs_and_data_are_shown_redacted(failed_run, as_alice):
    step = failed_run.steps.get(node_id="greet")
    html = _html(as_alice.get(reverse("executions:step", args=[failed_run.pk, step.pk]), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="log-viewer"))
    assert "<html" not in html and "Hello Ada" in html
    assert "Bearer [redacted]" in html and "abcdefghijkl" not in html
    other = make_run(failed_run.workflow)
    assert as_alice.get(reverse("executions:step", args=[failed_run.pk, other.steps.first().pk])).status_code == 404


#
# Actions
#


def test_cancel_ends_an_active_run(running_run, as_alice):
    response = as_alice.post(reverse("executions:cancel", args=[running_run.pk]))
    assert response.status_code == 302
    running_run.refresh_from_db()
    assert running_run.status == "cancelled"
    assert running_run.events.filter(type="execution_cancelled").exists()


def test_pinning_keeps_a_run_and_unpinning_releases_it(failed_run, as_alice):
    as_alice.post(reverse("executions:pin", args=[failed_run.pk]), {"pinned": "1"})
    failed_run.refresh_from_db()
    assert failed_run.pinned
    assert "Unpin" in _html(as_alice.get(reverse("executions:detail", args=[failed_run.pk])))
    as_alice.post(reverse("executions:pin", args=[failed_run.pk]), {"pinned": "0"})
    failed_run.refresh_from_db()
    assert not failed_run.pinned


def test_retry_starts_a_new_run_with_the_same_input(failed_run, as_alice):
    response = as_alice.post(reverse("executions:retry", args=[failed_run.pk]))
    new = Execution.objects.exclude(pk=failed_run.pk).get()
    assert response["Location"] == reverse("executions:detail", args=[new.pk])
    assert new.retry_of == failed_run and new.input == failed_run.input


def test_retry_with_changes_offers_the_input_and_the_failed_nodes_params(failed_run, as_alice):
    html = _html(as_alice.get(reverse("executions:retry-with-changes", args=[failed_run.pk])))
    assert 'name="input"' in html and 'name="params"' in html
    assert "&quot;error_type&quot;: &quot;HTTP4xx&quot;" in html


def test_retry_with_changes_refuses_bad_json_next_to_the_field(failed_run, as_alice):
    response = as_alice.post(reverse("executions:retry-with-changes", args=[failed_run.pk]), {"input": "{", "params": "{}"})
    assert response.status_code == 422
    assert "not valid JSON" in _html(response).split('data-field="input"')[1].split("</div>")[0]
    response = as_alice.post(reverse("executions:retry-with-changes", args=[failed_run.pk]), {"input": "{}", "params": "{}"})
    assert response.status_code == 422  # the input schema requires a name
    assert "name" in _html(response).split('data-field="input"')[1].split("</div>")[0]
    assert Execution.objects.count() == 1


def test_retry_with_changes_reruns_from_the_failed_step_keeping_completed_ones(failed_run, as_alice):
    response = as_alice.post(
        reverse("executions:retry-with-changes", args=[failed_run.pk]),
        {"input": json.dumps(failed_run.input), "params": json.dumps({"error_type": "HTTP4xx", "succeed_on_attempt": 1})},
    )
    assert response.status_code == 302, _html(response)
    new = Execution.objects.exclude(pk=failed_run.pk).get()
    assert new.retry_of == failed_run
    charge = next(n for n in new.definition["nodes"] if n["id"] == "charge")
    assert charge["params"] == {"error_type": "HTTP4xx", "succeed_on_attempt": 1}
    assert new.events.filter(type="step_kept", node_id="greet").exists()  # only charge's params changed


def test_retry_with_changes_reruns_a_step_whose_params_read_the_changed_input(failed_run, as_alice):
    response = as_alice.post(reverse("executions:retry-with-changes", args=[failed_run.pk]), {"input": json.dumps({"name": "Grace"}), "params": "{}"})
    assert response.status_code == 302, _html(response)
    new = Execution.objects.exclude(pk=failed_run.pk).get()
    assert new.input == {"name": "Grace"}
    assert not new.events.filter(type="step_kept").exists()  # greet says "Hello Grace" now: it runs again
    assert new.events.get(type="execution_started").payload["rerun_from"] == "greet"


def test_only_failed_runs_are_retried_with_changes(running_run, as_alice):
    response = as_alice.get(reverse("executions:retry-with-changes", args=[running_run.pk]))
    assert response.status_code == 302


#
# Replay
#


def test_the_replay_shows_the_state_at_an_event_and_the_diff_from_the_one_before(failed_run, as_alice):
    html = _html(as_alice.get(reverse("executions:replay", args=[failed_run.pk]), {"at": 5}))
    assert "Event 5 of 9" in html and "variables_updated" in html
    assert html.count('class="ev ev-') == 9
    # The diff: greeting changed, token added (redacted).
    assert '<tr class="diff-changed"><td><code>vars.greeting</code>' in html
    assert '<tr class="diff-added"><td><code>vars.token</code>' in html
    assert "s3cr3t-value" not in html and "[redacted]" in html
    assert 'class="node status-completed highlight" data-node-id="greet"' in html
    assert 'id="replay-prev" href="?at=4"' in html and 'id="replay-next" href="?at=6"' in html


def test_stepping_fetches_just_the_state_fragment(failed_run, as_alice):
    html = _html(as_alice.get(reverse("executions:replay", args=[failed_run.pk]), {"at": 9}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="replay-state"))
    assert "<html" not in html and "Event 9 of 9" in html and 'id="replay-end"' in html
    assert "Run status after this event: <span class=\"status status-failed\">" in html


def test_the_replay_searches_by_type_or_node(failed_run, as_alice):
    html = _html(as_alice.get(reverse("executions:replay", args=[failed_run.pk]), {"q": "charge"}))
    assert html.count('class="ev ev-') == 3
    html = _html(as_alice.get(reverse("executions:replay", args=[failed_run.pk]), {"q": "step_started"}))
    assert html.count('class="ev ev-') == 2


def test_the_replay_exports_as_redacted_json(failed_run, as_alice):
    response = as_alice.get(reverse("executions:replay-export", args=[failed_run.pk]))
    assert response["Content-Disposition"] == f'attachment; filename="execution-{failed_run.pk}-replay.json"'
    document = json.loads(response.content)
    assert document["format"] == "workflow-builder-replay/1"
    assert len(document["events"]) == 9
    assert document["events"][4]["state"]["variables"] == {"greeting": "hello", "token": "[redacted]"}
    assert document["events"][-1]["state"]["status"] == "failed"
    assert b"s3cr3t-value" not in response.content


#
# Retention
#


def test_purging_removes_old_finished_unpinned_runs_only(workflow, settings):
    settings.WB_EXECUTION_RETENTION_DAYS = 30
    old = make_run(workflow, status="failed", age_days=40)
    old_pinned = make_run(workflow, status="completed", age_days=40, pinned=True)
    old_active = make_run(workflow, status="running", age_days=40)
    recent = make_run(workflow, status="completed", age_days=2)
    assert purge_old_executions() == 1
    left = set(Execution.objects.values_list("pk", flat=True))
    assert left == {old_pinned.pk, old_active.pk, recent.pk}
    assert old.pk not in left


def test_the_retention_period_is_a_setting(workflow, settings):
    make_run(workflow, status="completed", age_days=5)
    settings.WB_EXECUTION_RETENTION_DAYS = 7
    assert purge_old_executions() == 0
    settings.WB_EXECUTION_RETENTION_DAYS = 3
    assert purge_old_executions() == 1


def test_the_purge_is_a_periodic_task(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["purge-old-executions"]
    assert entry["task"] == "apps.executions.retention.purge_old_executions"
    from workflowsite.celery import app

    app.loader.import_default_modules()
    assert "apps.executions.retention.purge_old_executions" in app.tasks


def test_the_live_page_and_its_fragment_cost_the_same_queries_for_more_steps(workflow, as_alice):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from apps.executions.models import StepRun

    run = make_run(workflow, status="running")

    def count(url: str) -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert as_alice.get(url).status_code == 200
        return len(ctx.captured_queries)

    detail, live = reverse("executions:detail", args=[run.pk]), reverse("executions:live", args=[run.pk]) + "?after=0"
    few = (count(detail), count(live))
    StepRun.objects.bulk_create([StepRun(execution=run, node_id="greet", node_type="activity", scope=f"x[{i}]/", status="completed") for i in range(30)])
    assert (count(detail), count(live)) == few
    assert few[0] <= 15


#
# Pause, resume, signals, dynamic nodes
#


def test_pause_and_resume(running_run, as_alice):
    html = _html(as_alice.get(reverse("executions:detail", args=[running_run.pk])))
    assert ">Pause</button>" in html
    as_alice.post(reverse("executions:pause", args=[running_run.pk]), {"action": "pause"})
    running_run.refresh_from_db()
    assert running_run.status == "paused" and running_run.events.filter(type="execution_paused", actor="alice").exists()
    assert ">Resume</button>" in _html(as_alice.get(reverse("executions:detail", args=[running_run.pk])))
    as_alice.post(reverse("executions:pause", args=[running_run.pk]), {"action": "resume"})
    running_run.refresh_from_db()
    assert running_run.status == "running"


def test_a_declared_signal_is_sent_with_its_payload_and_others_are_refused(workflow, as_alice):
    from apps.executions.models import Execution as Ex

    run = make_run(workflow, status="running")
    Ex.objects.filter(pk=run.pk).update(definition={**run.definition, "signals": [{"name": "go", "schema": {"type": "object", "required": ["why"]}}]})
    html = _html(as_alice.get(reverse("executions:detail", args=[run.pk])))
    assert "Send a signal" in html and '<option value="go">go</option>' in html
    response = as_alice.post(reverse("executions:signal", args=[run.pk]), {"name": "go", "payload": "{}"}, follow=True)
    assert "refused" in _html(response) and "why" in _html(response)
    response = as_alice.post(reverse("executions:signal", args=[run.pk]), {"name": "nope", "payload": "{}"}, follow=True)
    assert "declares no signal named" in _html(response)
    before = run.events.count()
    response = as_alice.post(reverse("executions:signal", args=[run.pk]), {"name": "go", "payload": '{"why": "ready"}'}, follow=True)
    assert "Signal “go” sent" in _html(response)
    assert run.events.count() > before


def _items(step, state, **statuses):
    """The dynamic node's item rows, queued unless named."""
    from apps.executions.models import DynamicItem

    now = step.execution.started_at
    DynamicItem.objects.bulk_create([
        DynamicItem(step=step, index=i, item_id=item_id, status=statuses.get(item_id, "queued"),
                    started_at=now if statuses.get(item_id) else None,
                    finished_at=now if statuses.get(item_id) in ("completed", "failed") else None)
        for i, item_id in enumerate(state["ids"])
    ])


def test_the_dynamic_panel_shows_slots_queue_critical_path_and_a_chart(workflow, as_alice):
    from datetime import timedelta

    from apps.executions.engine.nodes.dynamic import build_state
    from apps.executions.models import Execution as Ex, ExecutionEvent, StepRun

    run = make_run(workflow, status="running")
    Ex.objects.filter(pk=run.pk).update(definition={**run.definition, "nodes": [*run.definition["nodes"], {"id": "build", "type": "dynamic", "items": [], "activity": "noop"}]})
    items = [{"id": "a"}, {"id": "b", "depends_on": ["a"]}, {"id": "c", "depends_on": ["b"]}, {"id": "d"}, {"id": "e"}]
    state = build_state(items, {"max_concurrent": 2})
    step = StepRun.objects.create(execution=run, node_id="build", node_type="dynamic", status="waiting", state=state)
    _items(step, state, a="completed", d="running", e="running")
    t0 = run.started_at
    for n, (type_, in_flight) in enumerate([("item_started", 1), ("item_started", 2), ("item_finished", 1), ("item_started", 2)]):
        ExecutionEvent.objects.create(execution=run, seq=100 + n, type=type_, node_id="build", step=step, payload={"in_flight": in_flight})
    ExecutionEvent.objects.filter(execution=run, seq__gte=100).update(created_at=t0 + timedelta(seconds=1))
    ExecutionEvent.objects.filter(execution=run, seq=103).update(created_at=t0 + timedelta(seconds=3))
    html = _html(as_alice.get(reverse("executions:detail", args=[run.pk])))
    assert "running 2 of 2" in html
    assert "1 ready for a slot" in html and "1 waiting on dependencies" in html  # b is ready, c waits on b
    assert "<code>c</code> needs <code>b</code>" in html
    assert "Critical path</dt><dd>1 of 3 done" in html
    assert 'class="chart"' in html and 'class="series"' in html


def test_a_finished_run_with_failed_items_offers_to_retry_them(workflow, as_alice):
    from apps.executions.engine.nodes.dynamic import build_state
    from apps.executions.models import Execution as Ex, StepRun

    run = make_run(workflow, status="failed")
    Ex.objects.filter(pk=run.pk).update(definition={**run.definition, "nodes": [*run.definition["nodes"], {"id": "build", "type": "dynamic", "items": [], "activity": "noop"}]})
    state = build_state([{"id": "a"}, {"id": "b"}], {})
    step = StepRun.objects.create(execution=run, node_id="build", node_type="dynamic", status="failed", state=state)
    _items(step, state, a="completed", b="failed")
    html = _html(as_alice.get(reverse("executions:detail", args=[run.pk])))
    assert "Retry failed items" in html


def test_an_ordinary_loop_is_not_presented_as_a_continue_as_new_chain(workflow, as_alice):
    from apps.executions.models import StepRun

    run = make_run(workflow, status="completed")
    StepRun.objects.create(execution=run, node_id="each", node_type="loop", status="completed", state={"mode": "for_each", "iterations": 300})
    html = _html(as_alice.get(reverse("executions:detail", args=[run.pk])))
    assert "Continue-as-new chain" not in html and "300 iterations" not in html

    definition = {**run.definition, "nodes": [*run.definition["nodes"], {"id": "forever", "type": "loop", "mode": "while", "long_running": True, "condition": {"var": "x", "op": "lt", "value": 1}, "body": {"nodes": [{"id": "tick", "type": "activity", "activity": "noop"}]}}]}
    Execution.objects.filter(pk=run.pk).update(definition=definition)
    StepRun.objects.create(execution=run, node_id="forever", node_type="loop", status="completed", state={"mode": "while", "iterations": 1200})
    html = _html(as_alice.get(reverse("executions:detail", args=[run.pk])))
    assert "Continue-as-new chain" in html and "1,200 iterations in all" in html


def test_step_durations_read_as_people_write_them(workflow, as_alice):
    from datetime import timedelta

    from apps.executions.models import StepRun

    run = make_run(workflow, status="completed")
    slow = StepRun.objects.get(execution=run, node_id="charge")
    StepRun.objects.filter(pk=slow.pk).update(finished_at=slow.started_at + timedelta(milliseconds=6575))
    html = _html(as_alice.get(reverse("executions:detail", args=[run.pk])))
    assert "6.6 s" in html and "6575 ms" not in html
    html = _html(as_alice.get(reverse("executions:step", args=[run.pk, slow.pk])))
    assert "6.6 s" in html
