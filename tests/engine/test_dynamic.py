"""Dynamic orchestration (dependency graphs with exactly N in flight) and child workflows,
on the real worker."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from apps.executions.engine.nodes.dynamic import snapshot
from apps.executions.engine.orchestrator import cancel_execution, start_execution
from apps.executions.models import Execution
from apps.workflows.definition.depgraph import DependencyGraph
from apps.workflows.definition.validator import validate
from apps.workflows.seeding import read_example, seed_example
from apps.workflows.services import create_workflow
from tests.helpers import wait_for, wait_until

pytestmark = pytest.mark.worker
ROOT = Path(__file__).resolve().parents[2]


def packages(scale: float = 0.15) -> list[dict]:
    data = json.loads((ROOT / "examples/package_builder/packages.json").read_text())["packages"]
    return [{**p, "build_seconds": round(p["build_seconds"] * scale, 3)} for p in data]


@pytest.fixture
def package_builder(alice):
    for name in ("package_build.json", "package_builder.json"):
        seed_example(read_example(ROOT / "examples/package_builder" / name), owner=alice)
    from apps.workflows.models import Workflow

    return Workflow.objects.get(slug="package-builder")


def item_timeline(execution, node="build"):
    """(event type, item, seq) of the dynamic node's item events, in commit order."""
    return [(e.type, e.payload["item"], e.seq) for e in execution.events.filter(node_id=node, type__in=["item_started", "item_finished"]).order_by("seq")]


def test_package_builder_keeps_exactly_4_in_flight_and_respects_dependencies(worker, alice, package_builder):
    pkgs = packages()
    execution = wait_for(start_execution(package_builder, {"packages": pkgs}), timeout=90)
    assert execution.status == "completed", execution.error
    graph = DependencyGraph.from_items(pkgs, id_key="name", deps_key="deps")
    deps = {p["name"]: set(p["deps"]) for p in pkgs}
    events = list(execution.events.filter(node_id="build", type__in=["item_started", "item_finished"]).order_by("seq"))
    in_flight: set[str] = set()
    finished_ok: set[str] = set()
    finished_any: set[str] = set()
    blocked: set[str] = set()
    for position, event in enumerate(events):
        item = event.payload["item"]
        if event.type == "item_started":
            assert deps[item] <= finished_ok, f"{item} started before {deps[item] - finished_ok} completed"
            in_flight.add(item)
            assert len(in_flight) <= 4, f"{len(in_flight)} builds in flight"
            continue
        in_flight.discard(item)
        finished_any.add(item)
        if event.payload["status"] == "completed":
            finished_ok.add(item)
        else:
            blocked |= graph.transitive_dependents(item)
        ready = [p for p in deps if p not in finished_any and p not in in_flight and p not in blocked and deps[p] <= finished_ok]
        refills = 0
        for later in events[position + 1 :]:
            if later.type != "item_started":
                break
            refills += 1
        # A completion frees a slot and the next ready items start in the same advance.
        assert len(in_flight) + refills >= min(4, len(in_flight) + len(ready)), f"after {item} only {len(in_flight) + refills} builds in flight with {len(ready)} ready"
    report = execution.output
    assert report["totals"]["failed"] == 1 and report["totals"]["items"] == len(pkgs) and report["packages"]["search"]["status"] == "failed"
    # The failing package blocks exactly its transitive dependents.
    expected_blocked = graph.transitive_dependents("search")
    assert {name for name, p in report["packages"].items() if p["status"] == "blocked"} == expected_blocked
    assert {name for name, p in report["packages"].items() if p["status"] == "completed"} == set(deps) - expected_blocked - {"search"}
    assert report["critical_path"]["items"] and report["critical_path"]["seconds"] > 0
    assert execution.children.count() == len(deps) - len(expected_blocked)


def test_fail_fast_cancels_everything_still_running_or_queued(worker, alice):
    wf = create_workflow(owner=alice, name=f"ff {uuid.uuid4().hex[:6]}", definition={
        "format_version": 1,
        "nodes": [{
            "id": "build", "type": "dynamic", "max_concurrent": 2, "fail_fast": True, "activity": "fail",
            "params": {"error_type": "Boom", "succeed_on_attempt": "{{ $.item.ok | 99 }}"},
            "items": [{"id": "slow", "ok": 1}, {"id": "bad"}, {"id": "later", "depends_on": ["slow"], "ok": 1}, {"id": "other", "ok": 1}],
        }],
    })
    execution = wait_for(start_execution(wf, {}))
    assert execution.status == "failed"
    assert execution.error["type"] == "ItemFailed" and execution.error["item"] == "bad"
    state = snapshot(execution.steps.get(node_id="build"))["status"]
    assert state["bad"] == "failed"
    assert all(state[i] in ("completed", "cancelled") for i in ("slow", "later", "other"))
    assert "cancelled" in state.values()


def test_a_cycle_in_static_items_is_a_validation_error_naming_it():
    definition = {"format_version": 1, "nodes": [{"id": "d", "type": "dynamic", "activity": "noop", "items": [
        {"id": "a", "depends_on": ["c"]}, {"id": "b", "depends_on": ["a"]}, {"id": "c", "depends_on": ["b"]}]}]}
    problems = validate(definition)
    assert len(problems) == 1 and problems[0].node == "d" and problems[0].field == "items"
    assert "a -> b -> c -> a" in problems[0].message or "c -> a -> b -> c" in problems[0].message or "b -> c -> a -> b" in problems[0].message


def test_a_cycle_in_runtime_items_fails_the_step_naming_it(worker, alice):
    wf = create_workflow(owner=alice, name=f"cyc {uuid.uuid4().hex[:6]}", definition={
        "format_version": 1, "nodes": [{"id": "d", "type": "dynamic", "activity": "noop", "items": "$.input.items"}]})
    execution = wait_for(start_execution(wf, {"items": [{"id": "x", "depends_on": ["y"]}, {"id": "y", "depends_on": ["x"]}]}))
    assert execution.status == "failed"
    assert execution.error["type"] == "DependencyCycle"
    assert "x -> y -> x" in execution.error["message"] or "y -> x -> y" in execution.error["message"]


def _child(alice, slug, definition):
    return create_workflow(owner=alice, name=slug, slug=slug, definition={"format_version": 1, **definition})


def test_child_workflow_execute_and_start_then_await(worker, alice):
    suffix = uuid.uuid4().hex[:6]
    _child(alice, f"double-{suffix}", {"nodes": [{"id": "d", "type": "activity", "activity": "noop", "params": {"value": "$.input.n"}}], "output": {"doubled": "$.steps.d.output"}})
    parent = create_workflow(owner=alice, name=f"parent {suffix}", definition={"format_version": 1, "nodes": [
        {"id": "now", "type": "child_workflow", "workflow": f"double-{suffix}", "input": {"n": 21}, "output": "first"},
        {"id": "later", "type": "child_workflow", "workflow": f"double-{suffix}", "mode": "start", "input": {"n": 5}},
        {"id": "meanwhile", "type": "activity", "activity": "log", "params": {"message": "child {{ $.steps.later.output.execution_id }} runs"}},
        {"id": "join", "type": "await_child", "child": "later", "output": "second"},
    ], "edges": [{"from": "now", "to": "later"}, {"from": "later", "to": "meanwhile"}, {"from": "meanwhile", "to": "join"}]})
    execution = wait_for(start_execution(parent, {}))
    assert execution.status == "completed", execution.error
    assert execution.variables["first"] == {"doubled": 21} and execution.variables["second"] == {"doubled": 5}
    assert list(execution.children.values_list("status", flat=True)) == ["completed", "completed"]


def test_child_failure_reaches_the_parent_as_an_error_a_condition_can_route(worker, alice):
    suffix = uuid.uuid4().hex[:6]
    _child(alice, f"broken-{suffix}", {"nodes": [{"id": "x", "type": "activity", "activity": "fail", "params": {"error_type": "Nope", "message": "bad child"}}]})
    parent = create_workflow(owner=alice, name=f"p {suffix}", definition={"format_version": 1, "nodes": [
        {"id": "call", "type": "child_workflow", "workflow": f"broken-{suffix}", "retry": {"max_attempts": 2, "interval": 0.05}, "on_error": "fallback"},
        {"id": "fallback", "type": "activity", "activity": "set", "params": {"values": {"handled": "{{ $.error.type }}: {{ $.error.message }}"}}},
    ]})
    execution = wait_for(start_execution(parent, {}))
    assert execution.status == "completed"
    assert execution.variables["handled"].startswith("ChildWorkflowFailed: child run")
    assert "Nope: bad child" in execution.variables["handled"]
    assert execution.children.count() == 2  # the retry started a second child


def test_children_nest_three_levels_passing_data_down_and_results_up(worker, alice):
    suffix = uuid.uuid4().hex[:6]
    _child(alice, f"c-{suffix}", {"nodes": [{"id": "leaf", "type": "activity", "activity": "noop", "params": {"value": "{{ $.input.path }}/c"}}], "output": "$.steps.leaf.output"})
    _child(alice, f"b-{suffix}", {"nodes": [{"id": "down", "type": "child_workflow", "workflow": f"c-{suffix}", "input": {"path": "{{ $.input.path }}/b"}}], "output": "$.steps.down.output"})
    top = _child(alice, f"a-{suffix}", {"nodes": [{"id": "down", "type": "child_workflow", "workflow": f"b-{suffix}", "input": {"path": "a"}}], "output": "$.steps.down.output"})
    execution = wait_for(start_execution(top, {}))
    assert execution.status == "completed", execution.error
    assert execution.output == "a/b/c"
    middle = execution.children.get()
    assert middle.children.get().parent_id == middle.pk


def test_cancelling_the_parent_cancels_its_children(worker, alice):
    suffix = uuid.uuid4().hex[:6]
    _child(alice, f"slow-{suffix}", {"nodes": [{"id": "s", "type": "activity", "activity": "delay", "params": {"seconds": 20}}]})
    parent = create_workflow(owner=alice, name=f"p {suffix}", definition={"format_version": 1, "nodes": [
        {"id": "fan", "type": "parallel", "branches": [
            {"nodes": [{"id": "one", "type": "child_workflow", "workflow": f"slow-{suffix}"}]},
            {"nodes": [{"id": "two", "type": "child_workflow", "workflow": f"slow-{suffix}", "mode": "start"}, {"id": "hold", "type": "timer", "duration": 30}], "edges": [{"from": "two", "to": "hold"}]},
        ]}]})
    execution = start_execution(parent, {})
    wait_until(lambda: Execution.objects.filter(parent=execution, status="running").count() == 2, message="both children to run")
    cancel_execution(execution, acting_user=alice)
    wait_until(lambda: set(Execution.objects.filter(parent=execution).values_list("status", flat=True)) == {"cancelled"}, message="children cancelled")
    assert wait_for(execution).status == "cancelled"


def test_retry_failed_rebuilds_only_failed_and_blocked_packages(worker, alice, package_builder, api):
    from apps.workflows.models import Workflow
    from apps.workflows.services import update_workflow

    pkgs = packages(scale=0.05)
    first = wait_for(start_execution(package_builder, {"packages": pkgs}), timeout=90)
    assert first.output["totals"]["failed"] == 1
    failed_or_blocked = {n for n, p in first.output["packages"].items() if p["status"] in ("failed", "blocked")}
    assert len(failed_or_blocked) > 1
    # Someone fixes the build (the child workflow no longer fails), then retries the failed items.
    child = Workflow.objects.get(slug="package-build")
    fixed = json.loads(json.dumps(child.definition))
    fixed["nodes"][1]["cases"][0]["when"]["value"] = "never"
    update_workflow(child, acting_user=alice, definition=fixed)
    response = api.post(f"/api/v1/executions/{first.pk}/retry-failed")
    assert response.status_code == 201, response.content
    second = wait_for(Execution.objects.get(pk=response.json()["id"]), timeout=90)
    assert second.status == "completed" and second.output["totals"]["failed"] == 0
    rebuilt = {e.payload["item"] for e in second.events.filter(type="item_started")}
    assert rebuilt == failed_or_blocked
    kept = {n for n, p in second.output["packages"].items() if p.get("kept")}
    assert kept == {n for n, p in first.output["packages"].items() if p["status"] == "completed"}
    # Nothing left to retry now.
    assert api.post(f"/api/v1/executions/{second.pk}/retry-failed").status_code == 409


def test_state_endpoint_reports_items_concurrency_queue_and_eta(worker, alice, api, charlie, api_as):
    wf = create_workflow(owner=alice, name=f"st {uuid.uuid4().hex[:6]}", definition={"format_version": 1, "nodes": [{
        "id": "build", "type": "dynamic", "max_concurrent": 2, "activity": "delay", "params": {"seconds": "$.item.duration"},
        "items": [{"id": "a", "duration": 1}, {"id": "b", "duration": 1}, {"id": "c", "duration": 1, "depends_on": ["a"]}, {"id": "d", "duration": 0.5}],
    }]})
    execution = start_execution(wf, {})
    wait_until(lambda: execution.steps.filter(node_id="build:item", status="running").count() == 2, message="two items running")
    state = api.get(f"/api/v1/executions/{execution.pk}/state").json()
    node = state["dynamic"][0]
    assert node["concurrency"]["current"] == 2 and node["concurrency"]["max"] == 2
    assert set(node["by_status"]["running"]) == {"a", "b"}
    assert node["queue"]["ready"] == ["d"] and node["queue"]["waiting_on_dependencies"] == [{"id": "c", "waiting_on": ["a"]}]
    assert node["eta"] is not None and node["critical_path"]["items"] == ["a", "c"]
    assert api_as(charlie).get(f"/api/v1/executions/{execution.pk}/state").status_code == 404
    finished = wait_for(execution)
    done = api.get(f"/api/v1/executions/{finished.pk}/state").json()["dynamic"][0]
    assert done["counts"]["completed"] == 4 and done["eta"] is None and 0 < done["utilisation"] <= 1


def test_the_live_page_names_items_and_estimates_from_the_schedule(worker, alice, client):
    wf = create_workflow(owner=alice, name=f"eta {uuid.uuid4().hex[:6]}", definition={"format_version": 1, "nodes": [{
        "id": "build", "type": "dynamic", "max_concurrent": 1, "activity": "delay", "params": {"seconds": "$.item.duration"},
        "items": [{"id": "core", "duration": 1.5}, {"id": "app", "duration": 1.5, "depends_on": ["core"]}],
    }]})
    execution = start_execution(wf, {})
    wait_until(lambda: execution.steps.filter(node_id="build:item", status="running").exists(), message="an item to run")
    client.force_login(alice)
    page = client.get(f"/executions/{execution.pk}/").content.decode()
    assert "build › core" in page
    assert "schedule of the items left" in page  # no earlier runs: the ETA comes from the items' schedule
    wait_for(execution)


def test_items_cut_short_by_a_cancelled_run_are_retried(worker, alice, api):
    wf = create_workflow(owner=alice, name=f"fan {uuid.uuid4().hex[:6]}", definition={
        "format_version": 1,
        "nodes": [{"id": "fan", "type": "dynamic", "items": [{"id": "a"}, {"id": "b"}], "activity": "delay", "params": {"seconds": 3}}],
    })
    first = start_execution(wf, {}, acting_user=alice)
    wait_until(lambda: first.steps.filter(status="running", node_id="fan:item").count() == 2, timeout=15, message="both items running")
    cancel_execution(first)
    first = wait_for(Execution.objects.get(pk=first.pk))
    assert first.status == "cancelled"
    response = api.post(f"/api/v1/executions/{first.pk}/retry-failed")
    assert response.status_code in (200, 201), response.content
    second = wait_for(Execution.objects.get(pk=response.json()["id"]), timeout=30)
    assert second.status == "completed"
    assert sorted(second.steps.get(node_id="fan").output["completed"]) == ["a", "b"]
