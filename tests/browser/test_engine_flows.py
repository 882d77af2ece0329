"""Issue 18's engine-side flows in the browser: a child pinned to the version current when its
parent started, and a retry with a changed input that takes the other branch of a condition."""

from __future__ import annotations

from django.contrib.auth.models import User
from playwright.sync_api import expect

from apps.executions.engine.orchestrator import start_execution
from apps.executions.engine.signals import send_signal
from apps.executions.models import Execution
from apps.workflows.services import create_workflow, update_workflow
from tests.helpers import wait_for, wait_until

from .conftest import log_in


def _says(word: str) -> dict:
    return {"format_version": 1, "nodes": [{"id": "x", "type": "activity", "activity": "set", "params": {"values": {"says": word}}}]}


def test_a_pinned_child_run_shows_the_version_it_runs(new_page, server):
    alice = User.objects.create_user("alice", "alice@example.com", "alice-password-1")
    child = create_workflow(owner=alice, name="Child", definition=_says("one"))
    parent = create_workflow(owner=alice, name="Parent", definition={
        "format_version": 1,
        "nodes": [
            {"id": "wait", "type": "signal_wait", "signal": "go"},
            {"id": "call", "type": "child_workflow", "workflow": child.slug, "version": "pinned", "output": "child"},
        ],
        "edges": [{"from": "wait", "to": "call"}],
        "signals": [{"name": "go"}],
    })
    run = start_execution(parent, {}, acting_user=alice)
    wait_until(lambda: run.steps.filter(node_id="wait", status="waiting").exists(), message="the parent to wait")
    update_workflow(child, acting_user=alice, definition=_says("two"), comment="v2")
    send_signal(Execution.objects.get(pk=run.pk), "go", {}, actor="alice")
    run = wait_for(run)
    assert run.status == "completed" and run.variables["child"] == {"says": "one"}
    child_run = Execution.objects.get(parent=run)

    page = new_page()
    log_in(page, "alice", "alice-password-1")
    page.goto(f"/executions/{child_run.pk}/")
    expect(page.locator(".run-origin")).to_contain_text(f"Child of execution #{run.pk}")
    expect(page.locator(".run-origin")).to_contain_text("runs version 1 of Child")
    assert page.console_errors == []  # type: ignore[attr-defined]


def test_retry_with_a_changed_input_takes_the_other_branch(new_page, server):
    alice = User.objects.create_user("alice", "alice@example.com", "alice-password-1")
    workflow = create_workflow(owner=alice, name="Routing", definition={
        "format_version": 1,
        "nodes": [
            {"id": "prep", "type": "activity", "activity": "noop", "params": {}},
            {"id": "route", "type": "condition", "cases": [{"when": {"var": "$.input.tier", "op": "eq", "value": "gold"}, "to": "gold"}], "default": "silver"},
            {"id": "gold", "type": "activity", "activity": "fail", "params": {"error_type": "GoldClosed"}},
            {"id": "silver", "type": "activity", "activity": "set", "params": {"values": {"served": "{{ $.input.tier }}"}}},
        ],
        "edges": [{"from": "prep", "to": "route"}],
    })
    failed = wait_for(start_execution(workflow, {"tier": "gold"}, acting_user=alice))
    assert failed.status == "failed"

    page = new_page()
    log_in(page, "alice", "alice-password-1")
    page.goto(f"/executions/{failed.pk}/retry-with-changes/")
    expect(page.locator("#retry-preview")).to_contain_text("Re-runs from gold (it failed)")
    page.get_by_label("Run input (JSON)").fill('{"tier": "silver"}')
    page.get_by_role("button", name="Preview where it re-runs from").click()
    expect(page.locator("#retry-preview")).to_contain_text("Re-runs from route (it now chooses silver); keeps 1 step: prep.")
    page.get_by_role("button", name="Re-run with these changes").click()
    page.wait_for_url("**/executions/*/")
    retry = Execution.objects.exclude(pk=failed.pk).get()
    retry = wait_for(retry)
    assert retry.status == "completed" and retry.variables["served"] == "silver"
    assert page.console_errors == []  # type: ignore[attr-defined]


def test_a_subflows_steps_show_in_the_parents_run(new_page, server):
    from apps.workflows.subflows import create_subflow

    alice = User.objects.create_user("alice", "alice@example.com", "alice-password-1")
    create_subflow(owner=alice, slug="greeting", name="Greeting", graph={
        "nodes": [{"id": "hello", "type": "activity", "activity": "set", "params": {"values": {"greeted": "$.vars.who"}}}],
        "result": "$.vars.greeted",
    })
    workflow = create_workflow(owner=alice, name="Welcome", definition={
        "format_version": 1,
        "nodes": [
            {"id": "greet", "type": "subflow", "subflow": "greeting", "version": 1, "with": {"who": "Ada"}, "output": "greeting"},
            {"id": "after", "type": "activity", "activity": "log", "params": {"message": "{{ $.steps.greet.output }}"}},
        ],
        "edges": [{"from": "greet", "to": "after"}],
    })
    run = wait_for(start_execution(workflow, {}, acting_user=alice))
    assert run.status == "completed" and run.variables["greeting"] == "Ada"

    page = new_page()
    log_in(page, "alice", "alice-password-1")
    page.goto(f"/executions/{run.pk}/")
    steps = page.locator("#exec-steps")
    expect(steps).to_contain_text("greet__hello")  # the subflow's step, in this run's own history
    expect(steps).to_contain_text("after")
    assert Execution.objects.filter(workflow=workflow).count() == 1  # no child run
    assert page.console_errors == []  # type: ignore[attr-defined]
