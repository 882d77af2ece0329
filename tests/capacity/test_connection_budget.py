"""The connection budget holds with a worker and a web server busy together: each stays within its pool,
and every run completes.

The worker is started with WB_DB_POOL_MAX_SIZE=1, the web's size: it must widen its own pool to its
concurrency + 2 (workflowsite/celery.py), or its three threads would queue for one connection. A delay
step keeps its connection while it sleeps, so three steps at once show as three connections or more.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
import uuid
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from django.db import connection
from apps.accounts.services import issue_token

from apps.executions.models import Execution
from apps.workflows.services import create_workflow
from tests.conftest import WorkerProcess
from tests.helpers import wait_until
from workflowsite.celery import WORKER_EXTRA_CONNECTIONS

CONCURRENCY = 3
WEB_POOL = 3
RUNS = 12

DEFINITION = {
    "format_version": 1,
    "nodes": [{"id": f"s{i}", "type": "activity", "activity": "delay", "params": {"seconds": 0.2}} for i in range(3)],
    "edges": [{"from": "s0", "to": "s1"}, {"from": "s1", "to": "s2"}],
}


def _named(database_url: str, application_name: str) -> str:
    url = urlsplit(database_url)
    query = (url.query + "&" if url.query else "") + f"application_name={application_name}"
    return urlunsplit((url.scheme, url.netloc, url.path, query, url.fragment))


@pytest.mark.xdist_group("capacity")
def test_web_and_worker_stay_within_their_pools_while_busy(web_server, worker_queue, alice):
    from tests.conftest import _worker_env

    queue = f"{worker_queue}-budget"
    worker_name = f"wbcapw-{uuid.uuid4().hex[:8]}"
    worker = WorkerProcess(queue, concurrency=CONCURRENCY, env={
        "DATABASE_URL": _named(_worker_env(queue)["DATABASE_URL"], worker_name), "WB_DB_POOL_MAX_SIZE": "1", "WB_DB_POOL_MIN_SIZE": "0",
    })
    worker.start()
    try:
        server = web_server(WB_CELERY_QUEUE=queue, WB_DB_POOL_MAX_SIZE=str(WEB_POOL), WB_DB_POOL_TIMEOUT="30")
        workflow = create_workflow(owner=alice, name="Budget", definition=DEFINITION)
        token = issue_token(alice)[1]
        params = {k: v for k, v in connection.get_connection_params().items() if k in ("dbname", "user", "host", "port", "password")}
        watcher = psycopg.connect(**params, autocommit=True)
        peaks = {"web": 0, "worker": 0}
        stop = threading.Event()

        def watch() -> None:
            while not stop.is_set():
                rows = dict(watcher.execute(
                    "SELECT application_name, count(*) FROM pg_stat_activity WHERE application_name IN (%s, %s) GROUP BY 1",
                    [server.application_name, worker_name],
                ).fetchall())
                peaks["web"] = max(peaks["web"], rows.get(server.application_name, 0))
                peaks["worker"] = max(peaks["worker"], rows.get(worker_name, 0))
                time.sleep(0.02)

        sampler = threading.Thread(target=watch, daemon=True)
        sampler.start()
        answers: list[int] = []

        def start_run() -> None:
            request = urllib.request.Request(
                f"{server.url}/api/v1/workflows/{workflow.pk}/runs", data=b'{"input": {}}', method="POST",
                headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=60) as response:
                answers.append(response.status)
                json.loads(response.read())

        clients = [threading.Thread(target=start_run) for _ in range(RUNS)]
        for client in clients:
            client.start()
        for client in clients:
            client.join(60)
        assert answers == [201] * RUNS
        runs = Execution.objects.filter(workflow=workflow)
        wait_until(lambda: runs.filter(finished_at__isnull=False).count() == RUNS, timeout=120, message="every run to finish")
        stop.set()
        sampler.join(5)
        watcher.close()
        assert set(runs.values_list("status", flat=True)) == {"completed"}
        # Neither went past its pool; the worker's pool grew past the 1 it was configured with.
        assert 1 <= peaks["web"] <= WEB_POOL
        assert 2 <= peaks["worker"] <= CONCURRENCY + WORKER_EXTRA_CONNECTIONS
    finally:
        worker.stop()
