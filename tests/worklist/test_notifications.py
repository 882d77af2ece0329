"""Work-item notifications to a webhook and a Slack-compatible webhook on 127.0.0.1."""

from __future__ import annotations

import json

import pytest

from apps.connectors.activities.notify import verify
from apps.connectors.models import Delivery
from tests.conftest import WorkerProcess
from tests.helpers import RecordingServer, wait_until

pytestmark = pytest.mark.worker

SECRET = "worklist-signing-secret"


def test_an_offer_is_posted_signed_and_failures_are_recorded(worker, approval_workflow, offered, bob):
    with RecordingServer(statuses={"/hook": [503], "/slack": [500, 500, 500]}) as server:
        worker.stop()  # a worker that knows where to post
        posting = WorkerProcess(worker.queue, env={
            "WB_WORKLIST_WEBHOOK_URL": server.url + "/hook", "WB_WORKLIST_WEBHOOK_SECRET": SECRET,
            "WB_WORKLIST_SLACK_URL": server.url + "/slack", "WB_WORKLIST_NOTIFY_ATTEMPTS": "2", "WB_WORKLIST_NOTIFY_BACKOFF": "0",
        })
        posting.start()
        try:
            execution, item = offered(approval_workflow(users=["bob"], groups=["builders"]), order="B-7")
            wait_until(lambda: server.hits("/hook") == 2 and server.hits("/slack") == 2, message="the posts and their retries")
            wait_until(lambda: Delivery.objects.filter(execution=execution, finished_at__isnull=False).count() == 2, message="deliveries recorded")
        finally:
            posting.stop()
    hook = [r for r in server.requests if r["path"] == "/hook"][-1]
    body = json.loads(hook["body"])
    assert body["event"] == "work_item.offered"
    assert body["work_item"]["id"] == item.pk and body["work_item"]["title"] == "Approve order B-7"
    assert body["work_item"]["outcomes"] == ["approve", "reject"]
    assert body["work_item"]["offered_users"] == ["bob"] and body["work_item"]["offered_groups"] == ["builders"]
    assert body["work_item"]["execution"] == execution.pk and body["work_item"]["url"].endswith("/inbox/")
    assert verify(SECRET, hook["body"].encode(), hook["headers"]["X-Workflow-Signature"], hook["headers"]["X-Workflow-Timestamp"])
    slack = json.loads([r for r in server.requests if r["path"] == "/slack"][0]["body"])
    assert "Approve order B-7" in slack["text"]
    webhook_delivery = Delivery.objects.get(execution=execution, channel="webhook")
    assert (webhook_delivery.status, webhook_delivery.attempts, webhook_delivery.response_code) == ("delivered", 2, 200)
    slack_delivery = Delivery.objects.get(execution=execution, channel="slack")
    assert (slack_delivery.status, slack_delivery.attempts, slack_delivery.response_code) == ("failed", 2, 500)
    assert "/slack" not in slack_delivery.target  # Slack paths are secrets
    execution.refresh_from_db()
    assert execution.status in ("running", "waiting")  # failed posts never touch the run
