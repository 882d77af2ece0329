"""With Redis down, everything that needs only PostgreSQL keeps working; what needs Redis answers 503 with a
message naming it (never 500); the probes say Redis is down.

The server under test uses a throwaway redis-server of its own (stopping the session's Redis would break
the other tests running meanwhile); the run it starts goes to that Redis, where no worker listens.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from django.test import Client
from apps.accounts.services import issue_token

from apps.executions.models import Execution
from apps.workflows.services import create_workflow

DEFINITION = {
    "format_version": 1,
    "nodes": [{"id": "wait", "type": "activity", "activity": "delay", "params": {"seconds": 1}}],
    "edges": [],
}


def _call(url: str, *, method: str = "GET", headers: dict[str, str] | None = None, body: dict | None = None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={**(headers or {}), **({"Content-Type": "application/json"} if data else {})})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


@pytest.mark.xdist_group("capacity")
def test_reads_keep_working_while_redis_is_down_and_writes_say_so(web_server, own_redis, alice, charlie):
    redis_url, stop_redis = own_redis
    workflow = create_workflow(owner=alice, name="Nightly import", definition=DEFINITION)
    api = {"Authorization": f"Token {issue_token(alice)[1]}"}
    stranger = {"Authorization": f"Token {issue_token(charlie)[1]}"}
    browser = Client()
    browser.force_login(alice)
    page = {"Cookie": f"sessionid={browser.cookies['sessionid'].value}"}
    server = web_server(REDIS_URL=redis_url, WB_RETRY_AFTER_SECONDS="5")

    status, _, body = _call(f"{server.url}/api/v1/workflows/{workflow.pk}/runs", method="POST", headers=api, body={"input": {}})
    assert status == 201, body
    run_id = json.loads(body)["id"]

    stop_redis()

    reads = [
        "/api/v1/workflows",
        f"/api/v1/workflows/{workflow.pk}",
        "/api/v1/executions",
        f"/api/v1/executions/{run_id}",
        f"/api/v1/executions/{run_id}/state",
        f"/api/v1/executions/{run_id}/events",
        "/api/v1/metrics/summary",
    ]
    for path in reads:
        status, _, body = _call(server.url + path, headers=api)
        assert status == 200, (path, status, body[:300])
    status, _, body = _call(f"{server.url}/api/v1/executions/{run_id}", headers=api)
    assert json.loads(body)["id"] == run_id
    for path in ("/workflows/", f"/workflows/{workflow.pk}/", f"/executions/{run_id}/"):
        status, _, body = _call(server.url + path, headers=page)
        assert status == 200, (path, status, body[:300])
        assert b"Nightly import" in body

    # Permissions still hold (throttles fail open; authentication and object permissions do not).
    status, _, _ = _call(f"{server.url}/api/v1/executions/{run_id}", headers=stranger)
    assert status == 404
    status, _, _ = _call(f"{server.url}/api/v1/workflows")
    assert status in (401, 403)

    # Starting a run is recorded (201): its first step waits, pending, until the broker is back and
    # the sweep sends it again; the client is not told to retry what was already saved.
    before = Execution.objects.filter(workflow=workflow).count()
    status, headers, body = _call(f"{server.url}/api/v1/workflows/{workflow.pk}/runs", method="POST", headers=api, body={"input": {}})
    assert status == 201, body
    started = Execution.objects.get(pk=json.loads(body)["id"])
    assert Execution.objects.filter(workflow=workflow).count() == before + 1
    assert started.status == "running" and started.steps.get().status == "pending"

    # The probes say what is down: liveness stays 200 (restarting web processes would not help).
    status, _, body = _call(server.url + "/healthz")
    health = json.loads(body)
    assert status == 200
    assert health["status"] == "degraded"
    assert health["down"][0].startswith("redis: ")
    status, _, body = _call(server.url + "/readyz")
    ready = json.loads(body)
    assert status == 503
    assert ready["checks"]["database"] == "ok"
    assert any(problem.startswith("redis: ") for problem in ready["down"])
