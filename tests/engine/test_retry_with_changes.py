"""Retry with changes re-runs from the earliest top-level step the changes reach (issue 18): a
condition upstream of the failure that read the input is evaluated again, and the dialog and the
API say which step that is before anything starts."""

from __future__ import annotations

import uuid

import pytest
from django.urls import reverse

from apps.executions.models import Execution
from apps.workflows.services import create_workflow
from tests.helpers import wait_for

pytestmark = pytest.mark.worker


@pytest.fixture
def routed(alice):
    """prep -> route (on $.input.tier) -> gold fails for "gold"; silver completes."""
    return create_workflow(owner=alice, name=f"route {uuid.uuid4().hex[:6]}", definition={
        "format_version": 1,
        "nodes": [
            {"id": "prep", "type": "activity", "activity": "noop", "params": {}},
            {"id": "route", "type": "condition", "cases": [{"when": {"var": "$.input.tier", "op": "eq", "value": "gold"}, "to": "gold"}], "default": "silver"},
            {"id": "gold", "type": "activity", "activity": "fail", "params": {"error_type": "GoldClosed"}},
            {"id": "silver", "type": "activity", "activity": "set", "params": {"values": {"served": "{{ $.input.tier }}"}}},
        ],
        "edges": [{"from": "prep", "to": "route"}],
    })


def _failed(api, workflow) -> Execution:
    response = api.post(f"/api/v1/workflows/{workflow.pk}/runs", {"input": {"tier": "gold"}}, format="json")
    assert response.status_code == 201, response.content
    run = wait_for(Execution.objects.get(pk=response.json()["id"]))
    assert run.status == "failed" and run.error["type"] == "GoldClosed"
    return run


def test_a_changed_input_re_evaluates_the_condition_that_read_it(worker, api, routed):
    run = _failed(api, routed)
    preview = api.post(f"/api/v1/executions/{run.pk}/retry-with-changes", {"input": {"tier": "silver"}, "preview": True}, format="json")
    assert preview.status_code == 200, preview.content
    assert preview.json() == {"rerun_from": "route", "reason": "it now chooses silver", "kept_steps": ["prep"]}
    assert Execution.objects.count() == 1  # a preview starts nothing

    response = api.post(f"/api/v1/executions/{run.pk}/retry-with-changes", {"input": {"tier": "silver"}}, format="json")
    assert response.status_code == 201, response.content
    retry = wait_for(Execution.objects.get(pk=response.json()["id"]))
    assert retry.status == "completed", retry.error  # before, it resumed at `gold` and failed the same way
    assert retry.variables["served"] == "silver"
    assert list(retry.steps.filter(node_id="prep").values_list("state__kept_from", flat=True)) == [run.steps.get(node_id="prep").pk]
    started = retry.events.get(type="execution_started").payload
    assert started["rerun_from"] == "route" and started["kept_steps"] == ["prep"]


def test_with_nothing_changed_it_resumes_at_the_failed_step(worker, api, routed):
    run = _failed(api, routed)
    preview = api.post(f"/api/v1/executions/{run.pk}/retry-with-changes", {"preview": True}, format="json").json()
    # The same input takes the same way: the condition and the path it skipped are kept.
    assert preview == {"rerun_from": "gold", "reason": "it failed", "kept_steps": ["prep", "route", "silver"]}


def test_the_dialog_shows_where_it_re_runs_from_before_confirming(worker, api, routed, alice, client):
    run = _failed(api, routed)
    client.force_login(alice)
    url = reverse("executions:retry-with-changes", args=[run.pk])
    page = " ".join(client.get(url).content.decode().split())
    assert "Re-runs from <code>gold</code> (it failed)" in page
    response = client.post(url, {"input": '{"tier": "silver"}', "params": "{}", "preview": "1"})
    html = " ".join(response.content.decode().split())
    assert response.status_code == 200
    assert "Re-runs from <code>route</code> (it now chooses silver); keeps 1 step: <code>prep</code>." in html
    assert Execution.objects.count() == 1
