"""Subflows end to end: publish a shared sub-graph through the API, use it in a workflow pinned to a
version, run it on the real worker and find its steps in the parent's history; a new version
changes nothing until the workflow asks for it; strangers and non-owners are refused."""

from __future__ import annotations

import copy

import pytest

from apps.executions.models import Execution, ExecutionEvent
from tests.helpers import wait_for

GRAPH = {
    "nodes": [
        {"id": "score", "type": "activity", "activity": "set", "params": {"values": {"score": "$.vars.amount"}}},
        {"id": "big", "type": "condition", "cases": [{"when": {"var": "score", "op": "gt", "value": 100}, "to": "flag"}], "default": "pass"},
        {"id": "flag", "type": "activity", "activity": "set", "params": {"values": {"verdict": "review"}}},
        {"id": "pass", "type": "activity", "activity": "set", "params": {"values": {"verdict": "ok"}}},
    ],
    "edges": [{"from": "score", "to": "big"}],
    "result": "$.vars.verdict",
}


def parent(version: int = 1) -> dict:
    return {
        "format_version": 1,
        "input_schema": {"type": "object", "properties": {"amount": {"type": "number"}}},
        "nodes": [
            {"id": "prep", "type": "activity", "activity": "log", "params": {"message": "checking"}},
            {"id": "check", "type": "subflow", "subflow": "risk-check", "version": version, "with": {"amount": "$.input.amount"}, "output": "verdict_of_check"},
            {"id": "done", "type": "activity", "activity": "log", "params": {"message": "verdict {{ $.steps.check.output }}"}},
        ],
        "edges": [{"from": "prep", "to": "check"}, {"from": "check", "to": "done"}],
    }


def run(api, workflow_id: int, amount: int) -> Execution:
    response = api.post(f"/api/v1/workflows/{workflow_id}/runs", {"input": {"amount": amount}}, format="json")
    assert response.status_code == 201, response.content
    return wait_for(Execution.objects.get(pk=response.json()["id"]))


@pytest.mark.worker
def test_a_subflows_steps_run_in_the_parents_run_and_history(worker, api):
    assert api.post("/api/v1/subflows", {"slug": "risk-check", "name": "Risk check", "graph": GRAPH}, format="json").status_code == 201
    created = api.post("/api/v1/workflows/", {"name": "Orders", "definition": parent()}, format="json")
    assert created.status_code == 201, created.content
    wid = created.json()["id"]

    execution = run(api, wid, 500)
    assert execution.status == "completed", execution.error
    assert execution.variables["verdict"] == "review" and execution.variables["verdict_of_check"] == "review"
    steps = {s.node_id: s.status for s in execution.steps.all()}
    assert steps == {"prep": "completed", "check__start": "completed", "check__score": "completed", "check__big": "completed",
                     "check__flag": "completed", "check__pass": "skipped", "check": "completed", "done": "completed"}
    assert {"check__score", "check__flag"} <= set(ExecutionEvent.objects.filter(execution=execution).values_list("node_id", flat=True))
    assert Execution.objects.filter(workflow_id=wid).count() == 1  # no child run: the steps are the parent's
    assert run(api, wid, 5).variables["verdict"] == "ok"

    # Version 2 changes nothing for a workflow pinned to version 1, until it asks for version 2.
    graph2 = copy.deepcopy(GRAPH)
    graph2["nodes"][3]["params"]["values"]["verdict"] = "fine"
    published = api.post("/api/v1/subflows/risk-check/versions", {"graph": graph2, "note": "friendlier"}, format="json")
    assert published.status_code == 201 and published.json()["number"] == 2
    assert run(api, wid, 5).variables["verdict"] == "ok"
    assert api.patch(f"/api/v1/workflows/{wid}/", {"definition": parent(version=2)}, format="json").status_code == 200
    assert run(api, wid, 5).variables["verdict"] == "fine"


@pytest.mark.django_db
def test_a_bad_graph_or_reference_is_refused_naming_the_field(api):
    bad = {"nodes": [{"id": "x", "type": "activity", "activity": "nope"}]}
    response = api.post("/api/v1/subflows", {"slug": "broken", "name": "Broken", "graph": bad}, format="json")
    assert response.status_code == 400 and response.json()["graph"][0]["node"] == "x"
    response = api.post("/api/v1/subflows", {"slug": "Bad Slug", "name": "x", "graph": GRAPH}, format="json")
    assert response.status_code == 400 and "slug" in response.json()
    problems = api.post("/api/v1/ai/validate", {"definition": parent()}, format="json").json()["problems"]
    assert [(p["node"], p["field"]) for p in problems] == [("check", "subflow")]
    api.post("/api/v1/subflows", {"slug": "risk-check", "name": "Risk check", "graph": GRAPH}, format="json")
    problems = api.post("/api/v1/ai/validate", {"definition": parent(version=3)}, format="json").json()["problems"]
    assert [(p["node"], p["field"]) for p in problems] == [("check", "version")] and "versions 1 to 1, not 3" in problems[0]["message"]


@pytest.mark.django_db
def test_only_the_owner_publishes_and_strangers_are_refused(api, api_as, bob, anon_api):
    api.post("/api/v1/subflows", {"slug": "risk-check", "name": "Risk check", "graph": GRAPH}, format="json")
    assert api_as(bob).get("/api/v1/subflows/risk-check").json()["versions"][0]["number"] == 1  # shared: everyone may read and use
    assert api_as(bob).post("/api/v1/subflows/risk-check/versions", {"graph": GRAPH}, format="json").status_code == 403
    assert api.get("/api/v1/subflows/nope").status_code == 404
    for method, url in (("get", "/api/v1/subflows"), ("get", "/api/v1/subflows/risk-check"), ("post", "/api/v1/subflows/risk-check/versions")):
        assert getattr(anon_api, method)(url, {}, format="json").status_code in (401, 403)
