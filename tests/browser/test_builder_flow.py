"""A builder's day in a real browser: build a workflow from forms, see a validation error next to
its field, run it and watch the live page finish without a reload, step through the replay, fix a
failed run with "retry with changes"; a stranger is refused everywhere, websocket included."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import expect

from apps.executions.models import Execution
from apps.workflows.models import Workflow
from apps.workflows.services import create_workflow

from .conftest import log_in, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


@pytest.fixture
def alice_user(server):
    return User.objects.create_user("alice", "alice@example.com", "alice-password-1")


@pytest.fixture
def charlie_user(server):
    return User.objects.create_user("charlie", "charlie@example.com", "charlie-password-1")


def _add_node(page, node_type: str, node_id: str, activity: str = "") -> None:
    form = page.locator("form[action*='/nodes/add/']")
    form.get_by_label("Type").select_option(node_type)
    form.get_by_label("Node id").fill(node_id)
    if activity:
        form.get_by_label("Activity").select_option(activity)
    form.get_by_role("button", name="Add node").click()
    page.wait_for_url(re.compile(rf".*/nodes/{node_id}$"))


def test_build_run_watch_and_replay(new_page, alice_user):
    page = new_page()
    log_in(page, "alice", "alice-password-1")
    page.get_by_role("link", name="New workflow").click()
    page.get_by_label("Name").fill("Greeter")
    page.get_by_label("Tags").fill("demo")
    page.get_by_role("button", name="Create and add nodes").click()
    page.wait_for_url(re.compile(r".*/workflows/\d+/edit/$"))
    workflow = Workflow.objects.get(name="Greeter")

    # First node: a log step. A negative timeout is refused next to the timeout field.
    _add_node(page, "activity", "hello", "log")
    page.get_by_label("Message *").fill("Hello {{ $.input.name }}")
    page.get_by_label("Timeout (seconds)").fill("-1")
    page.get_by_role("button", name="Save node").click()
    timeout_field = page.locator("[data-field='timeout']")
    expect(timeout_field.locator(".field-error")).to_contain_text("minimum of 0")
    expect(page.get_by_label("Timeout (seconds)")).to_have_attribute("aria-invalid", "true")
    screenshot(page, "node-form-error")
    page.get_by_label("Timeout (seconds)").fill("30")
    page.get_by_role("button", name="Save node").click()
    page.wait_for_url(re.compile(r".*/edit/#node-hello$"))

    # Second node: a short delay, so the live page has something to wait for.
    _add_node(page, "activity", "nap", "delay")
    page.get_by_label("Seconds *").fill("0.6")
    page.get_by_role("button", name="Save node").click()
    page.wait_for_url(re.compile(r".*/edit/#node-nap$"))
    expect(page.locator("svg.wb-graph [data-node-id='nap']")).to_be_visible()
    expect(page.locator(".problems")).to_have_count(0)
    workflow.refresh_from_db()
    assert workflow.definition["edges"] == [{"from": "hello", "to": "nap"}]
    screenshot(page, "editor")

    # Run from the workflow page's run dialog (no input schema: a JSON input).
    page.goto(f"/workflows/{workflow.pk}/")
    page.get_by_role("link", name="Run…").click()
    page.get_by_label("Input (JSON)").fill('{"name": "Ada"}')
    screenshot(page, "workflow-run-dialog")
    page.get_by_role("button", name="Start run").click()
    page.wait_for_url(re.compile(r".*/executions/\d+/$"))
    execution = Execution.objects.get(workflow=workflow)
    page.evaluate("window.__sameDocument = true")
    expect(page.locator("[data-run-status]")).to_have_text("Completed", timeout=20_000)
    assert page.evaluate("window.__sameDocument") is True  # updated in place, no reload
    expect(page.locator("svg.wb-graph [data-node-id='nap']")).to_have_class(re.compile(r"status-completed"))
    expect(page.locator(f"#ev-{execution.pk}-{Execution.objects.get(pk=execution.pk).last_seq}")).to_be_attached()
    screenshot(page, "live-completed")
    page.set_viewport_size({"width": 768, "height": 1000})
    screenshot(page, "live-tablet")
    page.set_viewport_size({"width": 1280, "height": 900})

    # The step's log lines.
    page.locator("#exec-steps").get_by_role("link", name="hello").click()
    expect(page.locator("#log-viewer .log-lines")).to_contain_text("Hello Ada")

    page.goto("/")
    screenshot(page, "workflow-list")
    page.goto(f"/executions/{execution.pk}/")

    # Replay: starts at the last event; step back and forward.
    page.get_by_role("link", name="Replay").click()
    page.wait_for_url(re.compile(r".*/replay/$"))
    total = execution.events.count()
    expect(page.locator(".position")).to_contain_text(f"Event {total} of {total}")
    page.get_by_role("link", name="Previous event").click()
    expect(page.locator(".position")).to_contain_text(f"Event {total - 1} of {total}")
    page.get_by_role("link", name="First event").click()
    expect(page.locator(".position")).to_contain_text(f"Event 1 of {total}")
    expect(page.locator("#at-h")).to_contain_text("execution_started")
    page.get_by_role("link", name="Next event").click()
    expect(page.locator(".position")).to_contain_text(f"Event 2 of {total}")
    expect(page.locator("#replay-list li.current")).to_have_attribute("data-seq", re.compile(r"\d+"))
    # Play at 4x until the end.
    page.get_by_label("Speed").select_option("4")
    page.get_by_role("button", name="Play").click()
    expect(page.locator(".position")).to_contain_text(f"Event {total} of {total}", timeout=15_000)
    expect(page.get_by_role("button", name="Play")).to_be_visible()
    screenshot(page, "replay")
    assert not [e for e in page.console_errors if "Content Security Policy" in e], page.console_errors


def test_the_replay_plays_through_slow_swaps_in_place(new_page, alice_user):
    """A "Forward" link swapped in is an htmx link only once the swap settles; the player must not
    click it before (a plain link: the whole page reloads and playing stops)."""
    from apps.executions.engine.orchestrator import start_execution

    workflow = create_workflow(owner=alice_user, name="Logger", definition={"format_version": 1, "nodes": [{"id": "a", "type": "activity", "activity": "log", "params": {"message": "a"}}, {"id": "b", "type": "activity", "activity": "log", "params": {"message": "b"}}], "edges": [{"from": "a", "to": "b"}]})
    execution = start_execution(workflow, {}, acting_user=alice_user)
    page = new_page()
    log_in(page, "alice", "alice-password-1")
    page.goto(f"/executions/{execution.pk}/")
    expect(page.locator("[data-run-status]")).to_have_text("Completed", timeout=20_000)
    total = execution.events.count()
    page.goto(f"/executions/{execution.pk}/replay/?at=1")
    # Settling takes longer than a tick at 4x (250 ms), as a slow machine can make it.
    page.evaluate("htmx.config.defaultSettleDelay = 400; window.__sameDocument = true")
    page.get_by_label("Speed").select_option("4")
    page.get_by_role("button", name="Play").click()
    expect(page.locator(".position")).to_contain_text(f"Event {total} of {total}", timeout=20_000)
    assert page.evaluate("window.__sameDocument") is True


def test_a_failed_run_is_fixed_with_retry_with_changes(new_page, alice_user):
    workflow = create_workflow(
        owner=alice_user,
        name="Charger",
        definition={
            "format_version": 1,
            "nodes": [
                {"id": "prepare", "type": "activity", "activity": "set", "params": {"values": {"amount": 5}}},
                {"id": "charge", "type": "activity", "activity": "fail", "params": {"error_type": "HTTP4xx", "message": "POST /charge answered 404", "retryable": False}},
            ],
            "edges": [{"from": "prepare", "to": "charge"}],
        },
    )
    page = new_page()
    log_in(page, "alice", "alice-password-1")
    response = page.goto(f"/workflows/{workflow.pk}/run/")
    assert response is not None and response.status == 200
    page.get_by_role("button", name="Start run").click()
    page.wait_for_url(re.compile(r".*/executions/\d+/$"))
    expect(page.locator("[data-run-status]")).to_have_text("Failed", timeout=20_000)
    overlay = page.locator(".error-overlay")
    expect(overlay).to_contain_text("This run failed at charge")
    expect(overlay).to_contain_text("The remote resource was not found")
    expect(page.locator("svg.wb-graph [data-node-id='charge']")).to_have_class(re.compile(r"status-failed.*highlight"))
    screenshot(page, "error-overlay")

    overlay.get_by_role("link", name="Retry with changes…").click()
    page.get_by_label("Params of the failed node (JSON)").fill('{"error_type": "HTTP4xx", "succeed_on_attempt": 1}')
    page.get_by_role("button", name="Re-run with these changes").click()
    page.wait_for_url(re.compile(r".*/executions/\d+/$"))
    expect(page.locator("[data-run-status]")).to_have_text("Completed", timeout=20_000)
    retried = Execution.objects.exclude(retry_of=None).get()
    assert retried.status == "completed"
    assert retried.events.filter(type="step_kept", node_id="prepare").exists()
    expect(page.locator(".status-panel")).to_contain_text(f"Retry of")


def test_a_stranger_gets_404_and_the_websocket_refuses_them(new_page, alice_user, charlie_user):
    workflow = create_workflow(owner=alice_user, name="Private", definition={"format_version": 1, "nodes": [{"id": "a", "type": "activity", "activity": "delay", "params": {"seconds": 30}}]})
    from apps.executions.engine.orchestrator import start_execution

    execution = start_execution(workflow, {}, acting_user=alice_user)
    page = new_page()
    log_in(page, "charlie", "charlie-password-1")
    for path in [f"/workflows/{workflow.pk}/", f"/workflows/{workflow.pk}/edit/", f"/workflows/{workflow.pk}/run/",
                 f"/executions/{execution.pk}/", f"/executions/{execution.pk}/live/?after=0", f"/executions/{execution.pk}/replay/",
                 f"/executions/{execution.pk}/replay.json"]:
        response = page.goto(path)
        assert response is not None and response.status == 404, path
    expect(page.get_by_text("Private")).to_have_count(0)
    code = page.evaluate(
        """(url) => new Promise((resolve) => {
            const ws = new WebSocket(url);
            ws.onclose = (e) => resolve(e.code);
        })""",
        page.url.replace("http://", "ws://").split("/executions/")[0] + f"/ws/executions/{execution.pk}/",
    )
    assert code == 4403
    # Alice's page does connect.
    alice = new_page()
    log_in(alice, "alice", "alice-password-1")
    alice.goto(f"/executions/{execution.pk}/")
    expect(alice.locator("body.ws-open")).to_be_attached()
    # The elapsed clock ticks in words people use ("2.3 s", "1 min 4 s"), not "2,345 ms".
    expect(alice.locator(".status-panel .elapsed")).to_have_text(re.compile(r"^\d+(\.\d)? s$|^\d+ min( \d+ s)?$"), timeout=5_000)
    alice.get_by_role("button", name="Cancel run").click()
    expect(alice.locator("[data-run-status]")).to_have_text("Cancelled")


def test_the_live_page_polls_when_the_websocket_is_down(new_page, alice_user):
    workflow = create_workflow(owner=alice_user, name="Sleeper", definition={"format_version": 1, "nodes": [{"id": "nap", "type": "activity", "activity": "delay", "params": {"seconds": 1}}]})
    page = new_page()
    # Every websocket is refused: the page has to fall back to polling.
    page.route_web_socket(re.compile(r".*/ws/.*"), lambda ws: ws.close(code=1011, reason="down for the test"))
    log_in(page, "alice", "alice-password-1")
    page.goto(f"/workflows/{workflow.pk}/run/")
    page.get_by_role("button", name="Start run").click()
    page.wait_for_url(re.compile(r".*/executions/\d+/$"))
    page.evaluate("window.__sameDocument = true")
    expect(page.locator("[data-run-status]")).to_have_text("Completed", timeout=20_000)
    assert page.evaluate("window.__sameDocument") is True
    expect(page.locator("body.ws-open")).to_have_count(0)
    expect(page.locator("#live-poller")).not_to_have_attribute("hx-trigger", "every 2s")


def test_a_dynamic_node_shows_its_slots_and_concurrency_chart(new_page, alice_user):
    items = [{"id": "a"}, {"id": "b"}, {"id": "c", "depends_on": ["a"]}, {"id": "d", "depends_on": ["a", "b"]}, {"id": "e", "depends_on": ["c"]}]
    workflow = create_workflow(
        owner=alice_user,
        name="Fan-out",
        definition={"format_version": 1, "nodes": [{"id": "build", "type": "dynamic", "items": items, "max_concurrent": 2, "activity": "delay", "params": {"seconds": 0.3}}]},
    )
    page = new_page()
    log_in(page, "alice", "alice-password-1")
    page.goto(f"/workflows/{workflow.pk}/run/")
    page.get_by_role("button", name="Start run").click()
    page.wait_for_url(re.compile(r".*/executions/\d+/$"))
    expect(page.locator(".dynamic-panel")).to_contain_text("of 2")
    expect(page.locator("[data-run-status]")).to_have_text("Completed", timeout=20_000)
    panel = page.locator(".dynamic-panel")
    expect(panel).to_contain_text("running 0 of 2")
    expect(panel).to_contain_text("5 completed")
    expect(panel).to_contain_text("Critical path")
    expect(panel.locator("svg.chart .series")).to_be_attached()
    screenshot(page, "dynamic")
