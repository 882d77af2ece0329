"""Who gets what from the endpoints issue 15 added or changed: anonymous, a stranger, a viewer
share, an editor share and the owner. No data without the right."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from apps.connectors import services as connectors
from apps.executions.engine.orchestrator import start_execution
from apps.sharing.services import share_workflow
from apps.workflows.services import create_workflow

pytestmark = pytest.mark.django_db
WAITING = {"format_version": 1, "signals": [{"name": "go"}], "nodes": [{"id": "wait", "type": "signal_wait", "signal": "go"}]}
DENIED = (401, 403)


@pytest.fixture
def world(alice, bob, charlie, db):
    from django.contrib.auth.models import User

    vic = User.objects.create_user("vic", "vic@example.com", "vic-password-1")
    workflow = create_workflow(owner=alice, name="matrix", definition=WAITING)
    share_workflow(workflow, vic, "view", acting_user=alice)
    share_workflow(workflow, bob, "change", acting_user=alice)
    run = start_execution(workflow, {}, acting_user=alice)
    credential = connectors.create_credential(owner=alice, name="svc", kind="bearer", secret="matrix-secret-1", workflows=[workflow])
    clients = {"anonymous": APIClient()}
    for name, user in (("stranger", charlie), ("viewer", vic), ("editor", bob), ("owner", alice)):
        clients[name] = APIClient()
        clients[name].force_authenticate(user)
    return {"workflow": workflow, "run": run, "credential": credential, "clients": clients}


CASES = [
    # (method, path template, body, status per persona)
    ("get", "/api/v1/credentials/{credential}/", None, {"anonymous": DENIED, "stranger": 404, "viewer": 404, "editor": 404, "owner": 200}),
    ("post", "/api/v1/workflows/{workflow}/save-as-template", {"is_public": True}, {"anonymous": DENIED, "stranger": 404, "viewer": 403, "editor": 403, "owner": 201}),
    ("post", "/api/v1/executions/{run}/cancel", None, {"anonymous": DENIED, "stranger": 404, "viewer": 403, "editor": 403, "owner": 200}),
    ("post", "/api/v1/auth/token/rotate", None, {"anonymous": DENIED}),
    ("post", "/api/v1/auth/token/revoke", None, {"anonymous": DENIED}),
]


@pytest.mark.parametrize(("method", "template", "body", "expected"), CASES, ids=[f"{c[0]} {c[1]}" for c in CASES])
def test_each_persona_gets_only_what_it_may(world, method, template, body, expected):
    path = template.format(workflow=world["workflow"].pk, run=world["run"].pk, credential=world["credential"].pk)
    for persona in ("anonymous", "stranger", "viewer", "editor", "owner"):
        if persona not in expected:
            continue
        response = getattr(world["clients"][persona], method)(path, body, format="json")
        wanted = expected[persona]
        assert response.status_code in (wanted if isinstance(wanted, tuple) else (wanted,)), f"{persona}: {response.status_code} {response.content[:200]!r}"
        if response.status_code >= 400:
            assert b"matrix-secret-1" not in response.content
