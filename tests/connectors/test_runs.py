"""Connectors in real runs on a real worker: credentials never leak, responses map into
variables, notifications are delivered and recorded, third-party activities run."""

from __future__ import annotations

import json

import pytest

from apps.connectors import services
from apps.connectors.activities.notify import verify
from apps.connectors.models import Delivery
from apps.executions.engine.orchestrator import start_execution
from apps.executions.models import ExecutionEvent, StepRun
from apps.workflows.services import create_workflow

from .conftest import wait_for_run

pytestmark = pytest.mark.worker
TOKEN = "ghp-very-secret-token-abcdef123456"
SIGNING = "signing-secret-xyz-987654"


def run(owner, definition, input=None):
    workflow = create_workflow(owner=owner, name=f"wf-{definition['nodes'][0]['id']}", definition=definition)
    for credential in owner.credentials.all():  # the owner grants their credentials to this workflow
        credential.workflows.add(workflow)
    return wait_for_run(start_execution(workflow, input or {}, acting_user=owner))


def everything_stored(execution) -> str:
    rows = [
        list(ExecutionEvent.objects.filter(execution=execution).values("type", "payload")),
        list(StepRun.objects.filter(execution=execution).values("input", "output", "error", "logs", "state")),
        [execution.input, execution.variables, execution.output, execution.error],
    ]
    return json.dumps(rows, default=str)


def test_a_run_calls_an_api_with_a_stored_credential_maps_the_answer_and_leaks_nothing(conn_worker, server, alice, api):
    services.create_credential(owner=alice, name="github", kind="bearer", secret=TOKEN, allowed_hosts=["127.0.0.1"])
    server.routes["/user"] = lambda r: (200, {}, {"login": "ada", "plan": {"name": "pro"}, "repos": [{"stars": 5}, {"stars": 7}]})
    definition = {
        "format_version": 1,
        "nodes": [
            {
                "id": "fetch", "type": "activity", "activity": "http.request", "output": "user",
                "params": {
                    "url": server.url("/user"), "auth": {"credential": "github"}, "result": "mapped",
                    "map": {"login": "@.body.login", "plan": {"path": "@.body.plan.name", "default": "free"}, "email": {"path": "@.body.email", "default": None}, "stars": {"fn": "sum", "args": ["@.body.repos[*].stars"]}},
                },
            },
            {"id": "shout", "type": "activity", "activity": "map", "params": {"source": "$.vars.user", "values": {"name": {"fn": "upper", "args": ["@.login"]}}}, "output": "shouted"},
        ],
        "edges": [{"from": "fetch", "to": "shout"}],
    }
    execution = run(alice, definition)
    assert execution.status == "completed", execution.error
    assert execution.variables["user"] == {"login": "ada", "plan": "pro", "email": None, "stars": 12}
    assert execution.variables["shouted"] == {"name": "ADA"}
    assert server.received[-1].headers["authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in everything_stored(execution)
    for url in (f"/api/v1/executions/{execution.pk}/", f"/api/v1/executions/{execution.pk}/events/", "/api/v1/credentials/"):
        response = api.get(url)
        assert response.status_code == 200
        assert TOKEN not in response.content.decode()


def test_the_engine_retries_a_step_whose_api_stays_down(conn_worker, server, alice):
    answers = iter([(503, {}, "busy")] * 2 + [(200, {}, {"ok": True})] * 10)
    server.routes["/flaky"] = lambda r: next(answers)
    definition = {"format_version": 1, "nodes": [{
        "id": "call", "type": "activity", "activity": "http.request", "output": "result",
        "params": {"url": server.url("/flaky"), "circuit_breaker": False, "map": {"ok": "@.body.ok"}},
        "retry": {"max_attempts": 3, "backoff": "fixed", "interval": 0.05},
    }]}
    execution = run(alice, definition)
    assert execution.status == "completed", execution.error
    assert execution.variables["result"]["mapped"] == {"ok": True}
    assert list(StepRun.objects.filter(execution=execution, node_id="call").values_list("status", flat=True)) == ["failed", "failed", "completed"]


def test_a_signed_webhook_is_delivered_and_recorded(conn_worker, server, alice):
    services.create_credential(owner=alice, name="hook", kind="secret", secret=SIGNING, allowed_hosts=["127.0.0.1"])
    server.routes["POST /hook"] = lambda r: (200, {}, {"received": True})
    definition = {"format_version": 1, "nodes": [{
        "id": "notify", "type": "activity", "activity": "notify.webhook",
        "params": {"url": server.url("/hook"), "payload": {"order": "$.input.order", "text": "Order {{ $.input.order }} shipped"}, "signing_credential": "hook"},
    }]}
    execution = run(alice, definition, {"order": 42})
    assert execution.status == "completed", execution.error
    received = server.received[-1]
    assert received.json() == {"order": 42, "text": "Order 42 shipped"}
    assert verify(SIGNING, received.body, received.headers["x-workflow-signature"], received.headers["x-workflow-timestamp"])
    delivery = Delivery.objects.get(execution=execution)
    assert delivery.status == "delivered" and delivery.step.node_id == "notify" and delivery.response_code == 200
    assert SIGNING not in everything_stored(execution)


def test_an_email_step_sends_through_the_configured_backend(conn_worker, alice):
    before = set(conn_worker.mail_dir.iterdir())
    definition = {"format_version": 1, "nodes": [{
        "id": "mail", "type": "activity", "activity": "notify.email",
        "params": {"to": "$.input.to", "subject": "Hello {{ $.input.name }}", "body": "Dear {{ $.input.name }}, your order is ready."},
    }]}
    execution = run(alice, definition, {"to": "ada@example.com", "name": "Ada"})
    assert execution.status == "completed", execution.error
    written = set(conn_worker.mail_dir.iterdir()) - before
    text = "".join(p.read_text() for p in written)
    assert "Subject: Hello Ada" in text and "Dear Ada, your order is ready." in text and "ada@example.com" in text
    assert Delivery.objects.get(execution=execution).status == "delivered"


def test_a_third_party_activity_runs_in_a_real_run(conn_worker, alice):
    definition = {"format_version": 1, "nodes": [
        {"id": "greet", "type": "activity", "activity": "acme.greet", "params": {"name": "$.input.who", "shout": True}, "output": "hello"},
    ]}
    execution = run(alice, definition, {"who": "Ada"})
    assert execution.status == "completed", execution.error
    assert execution.variables["hello"] == {"greeting": "HELLO, ADA!"}
    failed = run(alice, {"format_version": 1, "nodes": [{"id": "greet2", "type": "activity", "activity": "acme.greet", "params": {"name": "nobody"}}]})
    assert failed.status == "failed" and failed.error["type"] == "NoOne"


def test_a_private_address_fails_the_run_without_retrying(conn_worker, alice):
    definition = {"format_version": 1, "nodes": [{
        "id": "meta", "type": "activity", "activity": "http.request", "params": {"url": "http://169.254.169.254/latest/meta-data/"},
        "retry": {"max_attempts": 5, "interval": 0.05},
    }]}
    execution = run(alice, definition)
    assert execution.status == "failed" and execution.error["type"] == "DestinationNotAllowed"
    assert StepRun.objects.filter(execution=execution, node_id="meta").count() == 1
