"""The durable engine on the real stack: Postgres, Redis and a real Celery worker process."""

from __future__ import annotations

import uuid

import pytest

from apps.executions.engine.orchestrator import cancel_execution, start_execution
from apps.executions.models import Execution, ExecutionEvent, StepRun
from apps.workflows.services import create_workflow
from tests.helpers import RecordingServer, wait_for, wait_until

pytestmark = pytest.mark.worker


def make(alice, nodes, edges=(), **extra):
    definition = {"format_version": 1, "nodes": nodes, "edges": [{"from": a, "to": b} for a, b in edges], **extra}
    return create_workflow(owner=alice, name=f"wf {uuid.uuid4().hex[:8]}", definition=definition)


def act(node_id, activity, params=None, **extra):
    return {"id": node_id, "type": "activity", "activity": activity, "params": params or {}, **extra}


def statuses(execution) -> dict[str, str]:
    """scope+node -> status of its latest attempt."""
    out = {}
    for step in execution.steps.order_by("id"):
        out[step.scope + step.node_id] = step.status
    return out


def max_in_flight(execution, node_id: str) -> int:
    """The most steps of `node_id` running at once, read from the event history."""
    level = peak = 0
    for event in ExecutionEvent.objects.filter(execution=execution, node_id=node_id).order_by("seq"):
        if event.type == "step_started":
            level += 1
            peak = max(peak, level)
        elif event.type in ("step_completed", "step_failed", "step_cancelled"):
            if StepRun.objects.filter(pk=event.step_id, started_at__isnull=False).exists():
                level -= 1
    return peak


def test_a_sequence_runs_in_order_and_returns_its_output(worker, alice):
    wf = make(
        alice,
        [act("a", "set", {"values": {"x": "$.input.n"}}), act("b", "noop", {"value": "{{ $.vars.x }}!"}, output="shout"), act("c", "log", {"message": "x is {{ $.vars.x }}"})],
        [("a", "b"), ("b", "c")],
    )
    execution = wait_for(start_execution(wf, {"n": 7}))
    assert execution.status == "completed"
    assert execution.output == {"x": 7, "shout": "7!"}
    steps = list(execution.steps.order_by("started_at"))
    assert [s.node_id for s in steps] == ["a", "b", "c"]
    assert steps[2].logs[0]["message"] == "x is 7"
    types = list(execution.events.order_by("seq").values_list("type", flat=True))
    assert types[0] == "execution_started" and types[-1] == "execution_completed"


@pytest.mark.parametrize("total, taken, skipped", [(9000, "manual", "auto"), (10, "auto", "manual")])
def test_a_condition_takes_the_matching_branch(worker, alice, total, taken, skipped):
    wf = make(
        alice,
        [
            act("start", "set", {"values": {"total": "$.input.total"}}),
            {"id": "big", "type": "condition", "cases": [{"when": {"var": "total", "op": "gt", "value": 5000}, "to": "manual"}], "default": "auto"},
            act("manual", "set", {"values": {"route": "manual"}}),
            act("auto", "set", {"values": {"route": "auto"}}),
            act("end", "log", {"message": "routed"}),
        ],
        [("start", "big"), ("manual", "end"), ("auto", "end")],
    )
    execution = wait_for(start_execution(wf, {"total": total}))
    assert execution.status == "completed"
    assert execution.variables["route"] == taken
    assert statuses(execution)[skipped] == "skipped"
    assert statuses(execution)["end"] == "completed"


def test_on_error_runs_the_handler_which_sees_the_error(worker, alice):
    wf = make(
        alice,
        [
            act("charge", "fail", {"error_type": "CardDeclined", "message": "insufficient funds", "retryable": False}, on_error="refund"),
            act("ship", "log", {"message": "shipping"}),
            act("refund", "set", {"values": {"reason": "{{ $.error.type }}: {{ $.error.message }}"}}),
        ],
        [("charge", "ship")],
    )
    execution = wait_for(start_execution(wf, {}))
    assert execution.status == "completed"
    assert execution.variables["reason"] == "CardDeclined: insufficient funds"
    assert statuses(execution) == {"charge": "failed", "ship": "skipped", "refund": "completed"}


def test_for_each_completes_at_7_of_10_cancels_the_rest_and_aggregates(worker, alice):
    # The slow three take far longer than any leftover work from earlier tests can delay the fast seven.
    items = [{"n": i, "wait": 0.05 if i < 7 else 30} for i in range(10)]
    wf = make(
        alice,
        [
            {
                "id": "each", "type": "loop", "mode": "for_each", "items": "$.input.items", "concurrency": 10,
                "complete_when": {"count": 7}, "aggregate": "list", "output": "results",
                "body": {"nodes": [act("work", "delay", {"seconds": "$.item.wait", "output": "$.item.n"})]},
            }
        ],
    )
    execution = wait_for(start_execution(wf, {"items": items}))
    assert execution.status == "completed"
    assert sorted(execution.variables["results"]) == [0, 1, 2, 3, 4, 5, 6]
    work = {s.scope: s.status for s in execution.steps.filter(node_id="work")}
    assert sorted(work.values()).count("cancelled") == 3
    assert all(work[f"each[{i}]/"] == "cancelled" for i in (7, 8, 9))


def test_for_each_aggregates_count_and_sum(worker, alice):
    body = {"nodes": [act("v", "noop", {"value": "$.item"})]}
    wf = make(
        alice,
        [
            {"id": "total", "type": "loop", "mode": "for_each", "items": [1, 2, 3, 4], "concurrency": 2, "aggregate": "sum", "output": "sum", "body": body},
            {"id": "n", "type": "loop", "mode": "for_each", "items": ["a", "b", "c"], "aggregate": "count", "output": "count", "body": {"nodes": [act("w", "noop", {"value": "$.item"})]}},
        ],
        [("total", "n")],
    )
    execution = wait_for(start_execution(wf, {}))
    assert execution.status == "completed"
    assert execution.variables["sum"] == 10 and execution.variables["count"] == 3


def test_for_each_with_concurrency_3_never_runs_more_than_3(worker, alice):
    wf = make(
        alice,
        [{"id": "each", "type": "loop", "mode": "for_each", "items": list(range(9)), "concurrency": 3, "body": {"nodes": [act("work", "delay", {"seconds": 0.3})]}}],
    )
    execution = wait_for(start_execution(wf, {}))
    assert execution.status == "completed"
    assert max_in_flight(execution, "work") == 3


@pytest.mark.parametrize(
    "join, expected_completed, expected_cancelled",
    [("all", {"p0", "p1", "p2"}, set()), ("any", {"p0"}, {"p1", "p2"}), ({"count": 2}, {"p0", "p1"}, {"p2"})],
)
def test_parallel_joins_all_any_and_n_cancelling_what_is_no_longer_needed(worker, alice, join, expected_completed, expected_cancelled):
    delays = [0.05, 0.6, 4]
    wf = make(
        alice,
        [
            {
                "id": "par", "type": "parallel", "join": join, "output": "joined",
                "branches": [{"nodes": [act(f"p{i}", "delay", {"seconds": d, "output": i})]} for i, d in enumerate(delays)],
            },
            act("after", "log", {"message": "joined"}),
        ],
        [("par", "after")],
    )
    execution = wait_for(start_execution(wf, {}))
    assert execution.status == "completed"
    by_node = {s.node_id: s.status for s in execution.steps.all()}
    assert {n for n in ("p0", "p1", "p2") if by_node[n] == "completed"} == expected_completed
    assert {n for n in ("p0", "p1", "p2") if by_node[n] == "cancelled"} == expected_cancelled
    assert by_node["after"] == "completed"
    if join == "all":
        assert execution.variables["joined"] == [0, 1, 2]


def test_a_retry_succeeds_on_attempt_3(worker, alice):
    wf = make(alice, [act("flaky", "fail", {"error_type": "Busy", "succeed_on_attempt": 3}, retry={"max_attempts": 5, "backoff": "fixed", "interval": 0.1})])
    execution = wait_for(start_execution(wf, {}))
    assert execution.status == "completed"
    attempts = list(execution.steps.filter(node_id="flaky").order_by("attempt").values_list("attempt", "status"))
    assert attempts == [(1, "failed"), (2, "failed"), (3, "completed")]
    assert execution.events.filter(type="step_retry_scheduled").count() == 2


def test_retry_exhaustion_fails_the_run_with_the_error_on_step_and_run(worker, alice):
    wf = make(alice, [act("doomed", "fail", {"error_type": "Upstream", "message": "no luck"}, retry={"max_attempts": 2, "interval": 0.05})])
    execution = wait_for(start_execution(wf, {}))
    assert execution.status == "failed"
    assert execution.error["type"] == "Upstream" and execution.error["message"] == "no luck" and execution.error["node"] == "doomed"
    last = execution.steps.filter(node_id="doomed").order_by("-attempt").first()
    assert last.attempt == 2 and last.status == "failed" and last.error["type"] == "Upstream"


def test_non_retryable_errors_fail_at_once(worker, alice):
    wf = make(alice, [act("bad", "fail", {"error_type": "Invalid"}, retry={"max_attempts": 5, "interval": 0.05, "non_retryable": ["Invalid"]})])
    execution = wait_for(start_execution(wf, {}))
    assert execution.status == "failed"
    assert execution.steps.filter(node_id="bad").count() == 1


def test_a_step_past_its_timeout_fails_with_step_timeout(worker, alice):
    wf = make(alice, [act("slow", "delay", {"seconds": 10}, timeout=0.5)])
    execution = wait_for(start_execution(wf, {}), timeout=15)
    assert execution.status == "failed"
    assert execution.error["type"] == "StepTimeout"
    step = execution.steps.get(node_id="slow")
    assert step.status == "failed" and step.error["type"] == "StepTimeout"


def test_cancel_mid_run_stops_it_and_cancels_running_steps(worker, alice):
    wf = make(alice, [act("long", "delay", {"seconds": 20}), act("never", "log", {"message": "no"})], [("long", "never")])
    execution = start_execution(wf, {})
    wait_until(lambda: execution.steps.filter(node_id="long", status="running").exists(), message="the step to start")
    assert cancel_execution(execution, acting_user=alice)
    execution = wait_for(execution)
    assert execution.status == "cancelled"
    assert statuses(execution) == {"long": "cancelled"}
    assert execution.events.filter(type="execution_cancelled", actor="alice").exists()
    assert not cancel_execution(execution, acting_user=alice)  # a finished run cannot be cancelled again


def test_timer_node_waits_then_continues(worker, alice):
    wf = make(alice, [{"id": "wait", "type": "timer", "duration": 0.3}, act("after", "log", {"message": "woke"})], [("wait", "after")])
    execution = wait_for(start_execution(wf, {}))
    assert execution.status == "completed"
    wait_step = execution.steps.get(node_id="wait")
    assert (wait_step.finished_at - wait_step.started_at).total_seconds() >= 0.3


def test_a_timer_until_a_time_without_a_zone_reads_it_as_utc(worker, alice):
    # django.utils.timezone.utc is gone since Django 5.0: this raised AttributeError mid-advance.
    wf = make(alice, [{"id": "wait", "type": "timer", "until": "2020-01-31 09:00"}, act("after", "log", {"message": "woke"})], [("wait", "after")])
    execution = wait_for(start_execution(wf, {}))
    assert execution.status == "completed"
    assert execution.steps.get(node_id="wait").scheduled_for.isoformat() == "2020-01-31T09:00:00+00:00"


def test_while_loop_stops_when_its_condition_fails_and_caps_iterations(worker, alice):
    counting = make(
        alice,
        [{"id": "loop", "type": "loop", "mode": "while", "condition": {"var": "$.vars.n", "op": "lt", "value": 4}, "body": {"nodes": [act("inc", "set", {"values": {"n": "$.iteration"}})]}}],
        variables={"n": 0},
    )
    done = wait_for(start_execution(counting, {}))
    assert done.status == "completed" and done.variables["n"] == 4
    capped = make(
        alice,
        [{"id": "loop", "type": "loop", "mode": "while", "max_iterations": 3, "condition": {"var": "$.vars.n", "op": "gte", "value": 0}, "body": {"nodes": [act("noop", "noop")]}}],
        variables={"n": 0},
    )
    failed = wait_for(start_execution(capped, {}))
    assert failed.status == "failed" and failed.error["type"] == "LoopLimitExceeded"


def test_a_duplicate_delivery_of_a_step_message_runs_nothing_twice(worker, alice, settings):
    from apps.executions.tasks import run_step

    with RecordingServer() as remote:
        wf = make(alice, [act("call", "http.request", {"url": remote.url + "/effect", "method": "POST"})])
        execution = wait_for(start_execution(wf, {}))
        assert execution.status == "completed"
        step = execution.steps.get(node_id="call")
        events_before = execution.events.count()
        run_step.apply_async((step.pk,))  # the same message again, as a broker might redeliver it
        run_step.apply_async((step.pk,))
        # the worker has handled both messages once this later run has finished
        wait_for(start_execution(make(alice, [act("x", "noop")]), {}))
        assert remote.hits("/effect") == 1
        assert execution.events.count() == events_before


def test_a_malformed_definition_is_rejected_with_every_problem_listed(api, alice):
    definition = {
        "format_version": 1,
        "nodes": [
            {"id": "a", "type": "activity", "activity": "no.such.thing"},
            {"id": "b", "type": "teleport"},
            {"id": "c", "type": "condition", "cases": [{"when": {"var": "x", "op": "approximately", "value": 1}, "to": "a"}]},
            {"id": "d", "type": "activity", "activity": "log", "params": {"message": "$.nowhere[ok"}, "retry": {"max_attempts": 0}},
            {"id": "a", "type": "activity", "activity": "noop"},
        ],
        "edges": [{"from": "a", "to": "ghost"}, {"from": "a", "to": "d"}, {"from": "a", "to": "d"}],
    }
    wf = create_workflow(owner=alice, name="broken", definition=definition)
    body = api.post(f"/api/v1/workflows/{wf.pk}/validate").json()
    assert body["valid"] is False
    found = {(p["node"], p["field"], p["code"]) for p in body["problems"]}
    assert ("a", "activity", "unknown_activity") in found
    assert ("b", "type", "unknown_type") in found
    assert ("c", "cases[0].when", "schema") in found
    assert ("d", "retry.max_attempts", "schema") in found
    assert ("a", "nodes[4].id", "duplicate_id") in found
    assert any(code == "dangling_edge" and "ghost" in p["message"] for p in body["problems"] for code in [p["code"]])
    assert any(code == "duplicate_edge" for _, _, code in found)
    response = api.post(f"/api/v1/workflows/{wf.pk}/runs", {"input": {}}, format="json")
    assert response.status_code == 400 and response.json()["code"] == "invalid_definition"


def test_output_map_sets_variables_from_any_activity_output(worker, alice):
    wf = make(alice, [
        act("fetch", "noop", {"value": {"user": {"name": "ada", "langs": ["py", "ml", "py"]}}},
            output_map={"who": {"fn": "upper", "args": ["@.user.name"]}, "langs": {"fn": "unique", "args": ["@.user.langs"]}, "age": {"path": "@.user.age", "default": 36}}),
        act("broken", "noop", {"value": {}}, output_map={"must": "@.missing"}),
    ], [("fetch", "broken")])
    execution = wait_for(start_execution(wf, {}))
    assert execution.variables["who"] == "ADA" and execution.variables["langs"] == ["py", "ml"] and execution.variables["age"] == 36
    assert execution.status == "failed" and execution.error["type"] == "MappingError" and "'must'" in execution.error["message"]


def test_transform_reads_its_mapping_relative_to_source_with_defaults(worker, alice):
    wf = make(
        alice,
        [
            act("load", "set", {"values": {"order": {"id": 7, "lines": [{"sku": "A1"}]}}}),
            act("pick", "transform", {"source": "$.vars", "mapping": {"id": "$.order.id", "first_sku": "$.order.lines[0].sku", "region": {"path": "$.order.region", "default": "EU"}, "kind": "retail"}}, output="picked"),
            act("strict", "transform", {"source": "$.vars.order", "mapping": {"region": "$.region"}}),
        ],
        [("load", "pick"), ("pick", "strict")],
    )
    execution = wait_for(start_execution(wf, {}))
    assert execution.steps.get(node_id="pick").output == {"id": 7, "first_sku": "A1", "region": "EU", "kind": "retail"}
    strict = execution.steps.get(node_id="strict")
    assert execution.status == "failed" and strict.error["type"] == "MappingError"
    assert "mapping 'region': $.region matched nothing" in strict.error["message"]


def test_an_until_loop_whose_body_ends_in_inline_steps_runs_one_iteration_at_a_time(worker, alice):
    """A worker-run step whose successor is a local step run inline, the body's last: the loop
    heard of the iteration's end twice and started two next iterations (5 instead of 3)."""
    body = {
        "nodes": [act("probe", "noop", {"value": "$.iteration"}), act("count", "set", {"values": {"checks": "$.iteration"}})],
        "edges": [{"from": "probe", "to": "count"}],
    }
    wf = make(
        alice,
        [{"id": "poll", "type": "loop", "mode": "until", "max_iterations": 20, "condition": {"var": "checks", "op": "gte", "value": 2}, "body": body}],
        variables={"checks": -1},
    )
    execution = wait_for(start_execution(wf, {}))
    assert execution.status == "completed"
    poll = execution.steps.get(node_id="poll")
    assert poll.output["iterations"] == 3
    assert sorted(execution.steps.filter(node_id="probe").values_list("scope", flat=True)) == ["poll[0]/", "poll[1]/", "poll[2]/"]
    last = execution.events.order_by("-seq").first()
    assert last.type == "execution_completed"


def test_an_api_run_gets_the_input_schemas_defaults_and_bad_input_is_named(worker, alice, api):
    wf = make(
        alice,
        [act("greet", "log", {"message": "Hello {{ $.input.name }}, {{ $.input.times }}x"})],
        input_schema={"type": "object", "properties": {"name": {"type": "string", "default": "world"}, "times": {"type": "integer", "minimum": 1, "default": 2}}, "required": ["name"]},
    )
    response = api.post(f"/api/v1/workflows/{wf.pk}/runs", {"input": {"times": 3}}, format="json")
    assert response.status_code == 201, response.content
    execution = wait_for(Execution.objects.get(pk=response.json()["id"]))
    assert execution.status == "completed" and execution.input == {"name": "world", "times": 3}
    assert execution.steps.get(node_id="greet").output == {"message": "Hello world, 3x"}
    response = api.post(f"/api/v1/workflows/{wf.pk}/runs", {"input": {"times": 0}}, format="json")
    assert response.status_code == 400 and "input.times" in response.content.decode()


def test_a_step_is_cancelled_once_however_many_scopes_give_up_on_it(worker, alice):
    """A parallel join that can no longer be met cancels its last branch; the node then fails and
    the run fails: each layer used to cancel the same step again (three step_cancelled events)."""
    branches = [
        {"nodes": [act("y1", "fail", {"retryable": False})]},
        {"nodes": [act("y2", "fail", {"retryable": False})]},
        {"nodes": [act("y3", "delay", {"seconds": 5})]},
    ]
    wf = make(alice, [{"id": "p", "type": "parallel", "join": {"count": 2}, "branches": branches}])
    execution = wait_for(start_execution(wf, {}))
    assert execution.status == "failed"
    assert execution.events.filter(type="step_cancelled", node_id="y3").count() == 1
    assert execution.events.order_by("-seq").first().type == "execution_failed"
