"""Event triggers (type, condition, permission) and inbound webhooks (HMAC signature)."""

from __future__ import annotations

import json
import time

import pytest
from django.test import Client

from apps.connectors.activities.notify import sign
from apps.executions.models import Execution
from apps.sharing.services import share_workflow
from apps.triggers.api.views import WebhookThrottle
from apps.triggers.models import EventTrigger, WebhookEndpoint
from tests.helpers import wait_for


@pytest.mark.worker
def test_an_event_starts_only_the_matching_workflows(worker, make_workflow, alice, bob, charlie, api):
    big = make_workflow()
    EventTrigger.objects.create(workflow=big, event_type="order.created", condition={"var": "$.event.payload.total", "op": "gt", "value": 100}, input_mapping={"order": "$.event.payload.id"})
    every = make_workflow()
    EventTrigger.objects.create(workflow=every, event_type="order.created", input_mapping={"order": "$.event.payload.id"})
    other_type = make_workflow()
    EventTrigger.objects.create(workflow=other_type, event_type="order.shipped")
    inactive = make_workflow(is_active=False)
    EventTrigger.objects.create(workflow=inactive, event_type="order.created")
    disabled = make_workflow()
    EventTrigger.objects.create(workflow=disabled, event_type="order.created", enabled=False)
    strangers = make_workflow(owner=charlie)
    EventTrigger.objects.create(workflow=strangers, event_type="order.created")
    view_only = make_workflow(owner=bob)
    EventTrigger.objects.create(workflow=view_only, event_type="order.created")
    share_workflow(view_only, alice, "view", acting_user=bob)

    small = api.post("/api/v1/events", {"type": "order.created", "payload": {"id": 7, "total": 50}}, format="json")
    assert small.status_code == 202, small.content
    result = small.json()
    assert len(result["started"]) == 1
    started = Execution.objects.get(pk=result["started"][0])
    assert started.workflow == every and started.trigger == "event" and started.input == {"order": 7}
    assert {s["workflow"]: s["reason"] for s in result["skipped"]} == {
        big.pk: "the trigger's condition does not hold",
        view_only.pk: "you may not run this workflow (it needs the change permission)",
    }  # charlie's workflow is not even mentioned
    large = api.post("/api/v1/events", {"type": "order.created", "payload": {"id": 8, "total": 500}}, format="json").json()
    runs = {Execution.objects.get(pk=pk).workflow_id: Execution.objects.get(pk=pk) for pk in large["started"]}
    assert set(runs) == {big.pk, every.pk}
    assert wait_for(runs[big.pk]).variables["seen"] == {"order": 8}
    assert Execution.objects.filter(workflow__in=[other_type, inactive, disabled, strangers, view_only]).count() == 0
    for execution in Execution.objects.filter(pk__in=result["started"] + large["started"]):
        assert wait_for(execution).status == "completed"  # and nothing is left running at teardown
    assert api.post("/api/v1/events", {"payload": {}}, format="json").json().keys() >= {"type"}


def test_events_need_an_authenticated_caller(db, anon_api):
    assert anon_api.post("/api/v1/events", {"type": "x"}, format="json").status_code in (401, 403)


def test_event_triggers_are_validated(db, make_workflow, api, api_as, charlie):
    wf = make_workflow()
    bad = api.post(f"/api/v1/workflows/{wf.pk}/event-triggers", {"event_type": "a", "condition": {"var": "x", "op": "between"}}, format="json")
    assert bad.status_code == 400 and "condition" in bad.json()
    bad = api.post(f"/api/v1/workflows/{wf.pk}/event-triggers", {"event_type": "a", "input_mapping": {"x": "$.input.y"}}, format="json")
    assert bad.status_code == 400 and "input_mapping" in bad.json()
    ok = api.post(f"/api/v1/workflows/{wf.pk}/event-triggers", {"event_type": "a", "condition": {"any": [{"var": "$.event.payload.n", "op": "exists"}]}}, format="json")
    assert ok.status_code == 201, ok.content
    assert api_as(charlie).get(f"/api/v1/workflows/{wf.pk}/event-triggers").status_code == 404


def _post(client, endpoint_token: str, body: bytes, signed: tuple[str, int] | None):
    """`signed` is (signature, timestamp), as `_sign` makes."""
    headers = {"HTTP_X_WORKFLOW_SIGNATURE": signed[0], "HTTP_X_WORKFLOW_TIMESTAMP": str(signed[1])} if signed is not None else {}
    return client.post(f"/api/v1/hooks/{endpoint_token}", body, content_type="application/json", **headers)


def _sign(secret: str, body: bytes, timestamp: int | None = None) -> tuple[str, int]:
    timestamp = int(time.time()) if timestamp is None else timestamp
    return sign(secret, body, timestamp), timestamp


@pytest.mark.worker
def test_a_webhook_with_a_bad_signature_is_refused_and_a_good_one_starts_a_run(worker, make_workflow, api, api_as, bob, alice):
    wf = make_workflow()
    created = api.post(f"/api/v1/workflows/{wf.pk}/webhooks", {"name": "shop"}, format="json")
    assert created.status_code == 201, created.content
    secret, token = created.json()["secret"], created.json()["token"]
    assert secret and created.json()["url"].endswith(f"/api/v1/hooks/{token}")
    endpoint = WebhookEndpoint.objects.get(token=token)
    assert secret not in endpoint.secret_encrypted and endpoint.get_secret() == secret
    assert api.get(f"/api/v1/workflows/{wf.pk}/webhooks").json()["results"][0]["secret"] is None  # shown once

    client = Client()
    body = json.dumps({"order": 5}).encode()
    assert _post(client, token, body, None).status_code == 401
    assert _post(client, token, body, _sign("wrong-secret", body)).status_code == 401
    assert _post(client, token, body, _sign(secret, body + b" ")).status_code == 401
    assert _post(client, "no-such-token", body, _sign(secret, body)).status_code == 404
    assert Execution.objects.filter(workflow=wf).count() == 0
    not_object = b"[1, 2]"
    assert _post(client, token, not_object, _sign(secret, not_object)).status_code == 400
    wrong_input = json.dumps({"order": "five"}).encode()
    refused = _post(client, token, wrong_input, _sign(secret, wrong_input))
    assert refused.status_code == 400 and "input.order" in refused.json()

    response = _post(client, token, body, _sign(secret, body))
    assert response.status_code == 202, response.content
    execution = wait_for(Execution.objects.get(pk=response.json()["execution"]))
    assert execution.trigger == "webhook" and execution.status == "completed" and execution.variables["seen"] == {"order": 5}
    assert execution.created_by == alice

    rotated = api.post(f"/api/v1/workflows/{wf.pk}/webhooks/{endpoint.pk}/rotate-secret").json()["secret"]
    assert _post(client, token, body, _sign(secret, body)).status_code == 401
    assert _post(client, token, body, _sign(rotated, body)).status_code == 202
    api.patch(f"/api/v1/workflows/{wf.pk}/webhooks/{endpoint.pk}", {"enabled": False}, format="json")
    assert _post(client, token, body, _sign(rotated, body)).status_code == 404
    # A viewer sees the webhook exists but not its token.
    share_workflow(wf, bob, "view", acting_user=alice)
    assert api_as(bob).get(f"/api/v1/workflows/{wf.pk}/webhooks").json()["results"][0]["token"] is None
    assert api_as(bob).post(f"/api/v1/workflows/{wf.pk}/webhooks", {}, format="json").status_code == 403


def test_webhooks_are_rate_limited_per_endpoint(db, make_workflow, api, monkeypatch):
    monkeypatch.setattr(WebhookThrottle, "THROTTLE_RATES", {"webhook": "2/minute"})
    wf = make_workflow()
    token = api.post(f"/api/v1/workflows/{wf.pk}/webhooks", {}, format="json").json()["token"]
    client = Client()
    codes = [_post(client, token, b"{}", "sha256=bad").status_code for _ in range(3)]
    assert codes == [401, 401, 429]


def test_the_triggers_page_lists_them_for_those_who_may_see(db, make_workflow, alice, charlie, api):
    wf = make_workflow()
    api.post(f"/api/v1/workflows/{wf.pk}/schedules", {"cron": "15 6 * * *", "timezone": "Asia/Tokyo"}, format="json")
    api.post(f"/api/v1/workflows/{wf.pk}/event-triggers", {"event_type": "invoice.paid"}, format="json")
    api.post(f"/api/v1/workflows/{wf.pk}/webhooks", {"name": "billing"}, format="json")
    client = Client()
    client.force_login(alice)
    html = client.get(f"/workflows/{wf.pk}/triggers/").content.decode()
    assert "15 6 * * *" in html and "Asia/Tokyo" in html and "invoice.paid" in html and "/api/v1/hooks/" in html
    client.force_login(charlie)
    assert client.get(f"/workflows/{wf.pk}/triggers/").status_code == 404


def test_the_triggers_page_links_staff_to_the_admin_forms_for_this_workflow(db, make_workflow, admin_user, alice):
    wf = make_workflow()
    client = Client()
    client.force_login(admin_user)
    html = client.get(f"/workflows/{wf.pk}/triggers/").content.decode()
    assert f'href="/admin/triggers/schedule/add/?workflow={wf.pk}"' in html and 'href="/api/docs/"' in html
    form = client.get(f"/admin/triggers/schedule/add/?workflow={wf.pk}").content.decode()
    assert f'name="workflow" value="{wf.pk}"' in form
    client.force_login(alice)
    assert "/admin/triggers/" not in client.get(f"/workflows/{wf.pk}/triggers/").content.decode()
