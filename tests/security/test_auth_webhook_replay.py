"""Inbound webhook signatures cover a timestamp and the body: an old delivery, a copy of one
already received, and a body-only signature are refused; managing endpoints is audited."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest
from django.test import Client

from apps.accounts.models import AuditLog
from apps.connectors.activities.notify import sign
from apps.executions.models import Execution
from apps.workflows.services import create_workflow

pytestmark = pytest.mark.django_db
DEFINITION = {"format_version": 1, "nodes": [{"id": "note", "type": "activity", "activity": "set", "params": {"values": {"seen": "$.input"}}}]}
BODY = json.dumps({"order": 5}).encode()


@pytest.fixture
def hook(api, alice):
    workflow = create_workflow(owner=alice, name="hooked", definition=DEFINITION)
    created = api.post(f"/api/v1/workflows/{workflow.pk}/webhooks", {"name": "shop"}, format="json").json()
    return workflow, created["token"], created["secret"], created["id"]


def _post(token: str, body: bytes, signature: str, timestamp: int | str | None):
    headers = {"HTTP_X_WORKFLOW_SIGNATURE": signature}
    if timestamp is not None:
        headers["HTTP_X_WORKFLOW_TIMESTAMP"] = str(timestamp)
    return Client().post(f"/api/v1/hooks/{token}", body, content_type="application/json", **headers)


def test_a_fresh_signed_delivery_is_accepted_once(hook):
    workflow, token, secret, _ = hook
    now = int(time.time())
    first = _post(token, BODY, sign(secret, BODY, now), now)
    assert first.status_code == 202, first.content
    replay = _post(token, BODY, sign(secret, BODY, now), now)
    assert replay.status_code == 409 and "already received" in replay.json()["detail"]
    assert Execution.objects.filter(workflow=workflow).count() == 1
    assert AuditLog.objects.filter(action="webhook_refused", detail__reason="replay").exists()


def test_an_old_delivery_is_refused_even_when_correctly_signed(hook, settings):
    workflow, token, secret, _ = hook
    old = int(time.time()) - settings.WB_WEBHOOK_TOLERANCE_SECONDS - 5
    response = _post(token, BODY, sign(secret, BODY, old), old)
    assert response.status_code == 401 and "X-Workflow-Timestamp" in response.json()["detail"]
    assert not Execution.objects.filter(workflow=workflow).exists()


def test_a_timestamp_changed_after_signing_is_refused(hook):
    _, token, secret, _ = hook
    now = int(time.time())
    assert _post(token, BODY, sign(secret, BODY, now - 60), now).status_code == 401


def test_a_body_only_signature_is_refused(hook):
    workflow, token, secret, _ = hook
    body_only = "sha256=" + hmac.new(secret.encode(), BODY, hashlib.sha256).hexdigest()
    assert _post(token, BODY, body_only, None).status_code == 401
    assert _post(token, BODY, body_only, int(time.time())).status_code == 401
    assert not Execution.objects.filter(workflow=workflow).exists()


def test_managing_endpoints_is_audited(api, alice, hook):
    workflow, _, secret, endpoint_id = hook
    assert AuditLog.objects.filter(action="webhook_created", actor=alice, target=f"webhook {endpoint_id}").exists()
    api.post(f"/api/v1/workflows/{workflow.pk}/webhooks/{endpoint_id}/rotate-secret")
    api.patch(f"/api/v1/workflows/{workflow.pk}/webhooks/{endpoint_id}", {"enabled": False}, format="json")
    assert api.delete(f"/api/v1/workflows/{workflow.pk}/webhooks/{endpoint_id}").status_code == 204
    actions = list(AuditLog.objects.filter(target=f"webhook {endpoint_id}").order_by("created_at", "pk").values_list("action", flat=True))
    assert actions == ["webhook_created", "webhook_changed", "webhook_changed", "webhook_deleted"]
    assert secret not in str(list(AuditLog.objects.values_list("detail", flat=True)))
