"""Fixtures of the UI tests: alice's workflow (bob may view it, charlie is a stranger) and runs
written straight into the database, as the engine would have left them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from apps.executions.models import Execution, ExecutionEvent, StepRun
from apps.sharing.services import share_workflow
from apps.workflows.services import create_workflow

DEFINITION = {
    "format_version": 1,
    "input_schema": {
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": "Who to greet"},
            "count": {"type": "integer", "minimum": 1},
            "loud": {"type": "boolean"},
            "mood": {"enum": ["happy", "calm"]},
        },
        "required": ["name"],
    },
    "nodes": [
        {"id": "greet", "type": "activity", "activity": "log", "params": {"message": "Hello {{ $.input.name }}"}},
        {"id": "charge", "type": "activity", "activity": "fail", "params": {"error_type": "HTTP4xx", "message": "POST /charge answered 404"}},
    ],
    "edges": [{"from": "greet", "to": "charge"}],
}


@pytest.fixture
def workflow(alice, bob):
    wf = create_workflow(owner=alice, name="Greeter", description="Says hello", tags=["demo", "billing"], definition=DEFINITION)
    share_workflow(wf, bob, "view", acting_user=alice)
    return wf


def client_for(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def as_alice(alice) -> Client:
    return client_for(alice)


@pytest.fixture
def as_bob(bob) -> Client:
    return client_for(bob)


@pytest.fixture
def as_charlie(charlie) -> Client:
    return client_for(charlie)


def make_run(workflow, *, status="failed", pinned=False, age_days=0, secret="s3cr3t-value") -> Execution:
    """A finished run of `workflow` with two steps and its history; `greet` completed, `charge` failed."""
    now = timezone.now() - timedelta(days=age_days)
    failed = status == "failed"
    ex = Execution.objects.create(
        workflow=workflow,
        definition=workflow.definition,
        status=status,
        input={"name": "Ada", "api_key": secret},
        variables={"greeting": "hi"},
        error={"type": "HTTP4xx", "message": "POST /charge answered 404", "node": "charge"} if failed else None,
        output=None if failed else {"ok": True},
        started_at=now,
        finished_at=now + timedelta(seconds=2) if status in ("failed", "completed", "cancelled") else None,
        pinned=pinned,
    )
    Execution.objects.filter(pk=ex.pk).update(created_at=now)
    greet = StepRun.objects.create(
        execution=ex, node_id="greet", node_type="activity", activity="log", status="completed",
        input={"message": "Hello Ada"}, output={"message": "Hello Ada"},
        logs=[{"at": now.isoformat(), "level": "info", "message": "Hello Ada"}, {"at": now.isoformat(), "level": "info", "message": "Authorization: Bearer abcdefghijkl"}],
        started_at=now, finished_at=now + timedelta(milliseconds=20),
    )
    charge = StepRun.objects.create(
        execution=ex, node_id="charge", node_type="activity", activity="fail",
        status="failed" if failed else ("completed" if status == "completed" else "running"),
        input={"error_type": "HTTP4xx", "password": secret},
        error={"type": "HTTP4xx", "message": "POST /charge answered 404"} if failed else None,
        started_at=now,
    )
    events = [
        ("execution_started", "", None, {"input": {"name": "Ada", "api_key": secret}, "variables": {"greeting": "hi"}, "trigger": "manual"}),
        ("step_scheduled", "greet", greet, {"activity": "log", "attempt": 1, "input": {"message": "Hello Ada"}}),
        ("step_started", "greet", greet, {}),
        ("step_completed", "greet", greet, {"output": {"message": "Hello Ada"}}),
        ("variables_updated", "greet", greet, {"set": {"greeting": "hello", "token": secret}}),
        ("step_scheduled", "charge", charge, {"activity": "fail", "attempt": 1, "input": {"password": secret}}),
        ("step_started", "charge", charge, {}),
    ]
    if failed:
        events += [
            ("step_failed", "charge", charge, {"error": {"type": "HTTP4xx", "message": "POST /charge answered 404"}, "attempt": 1}),
            ("execution_failed", "", None, {"error": {"type": "HTTP4xx", "message": "POST /charge answered 404", "node": "charge"}}),
        ]
    elif status == "completed":
        events += [("step_completed", "charge", charge, {"output": None}), ("execution_completed", "", None, {"output": {"ok": True}})]
    for seq, (type_, node, step, payload) in enumerate(events, start=1):
        ExecutionEvent.objects.create(execution=ex, seq=seq, type=type_, node_id=node, step=step, payload=payload)
    Execution.objects.filter(pk=ex.pk).update(last_seq=len(events))
    ex.refresh_from_db()
    return ex


@pytest.fixture
def failed_run(workflow) -> Execution:
    return make_run(workflow, status="failed")


@pytest.fixture
def running_run(workflow) -> Execution:
    return make_run(workflow, status="running")
