"""Locust users for benchmarks/load/run.py (which prepares the data and passes it in the environment).

WB_LOAD_SCENARIO:
    api    : an API client's realistic mix (lists, details, /state, events, metrics summary, starting a run)
    starts : each user starts runs of one workflow as fast as answers come, until WB_LOAD_RUNS are started

This records every request's endpoint, time and status code, and every started run's id, in WB_LOAD_OUT
(JSON), from which run.py computes the percentiles, errors by status and lost runs.
"""

from __future__ import annotations

import json
import os
import random
import threading
from collections import Counter

import gevent
from locust import HttpUser, between, constant, events, task
from locust.exception import StopUser

SCENARIO = os.environ.get("WB_LOAD_SCENARIO", "api")
TOKEN = os.environ["WB_LOAD_TOKEN"]
WORKFLOWS: dict[str, int] = json.loads(os.environ["WB_LOAD_WORKFLOWS"])
TOTAL_RUNS = int(os.environ.get("WB_LOAD_RUNS", "0"))
OUT = os.environ["WB_LOAD_OUT"]

statuses: Counter[str] = Counter()  # "GET /api/v1/workflows 200" -> count
started_runs: list[int] = []
lock = threading.Lock()
known_runs: list[int] = json.loads(os.environ.get("WB_LOAD_SEED_RUNS", "[]"))


timings: dict[str, list[float]] = {}  # endpoint -> response times (ms), every request


@events.request.add_listener
def _count_status(request_type, name, response_time, response, exception, **kwargs):
    code = getattr(response, "status_code", 0) or 0
    with lock:
        statuses[f"{code}"] += 1
        timings.setdefault(name, []).append(response_time)


@events.quitting.add_listener
def _write_out(environment, **kwargs):
    # Our own record of every request: Locust's CSV is a snapshot taken up to a second before the end.
    with open(OUT, "w") as fh:
        json.dump({"statuses": dict(statuses), "started_runs": started_runs, "timings": timings}, fh)


class _Api(HttpUser):
    abstract = True

    def on_start(self) -> None:
        self.client.headers["Authorization"] = f"Token {TOKEN}"

    def start_run(self, workflow: str) -> int | None:
        with self.client.post(f"/api/v1/workflows/{WORKFLOWS[workflow]}/runs", json={"input": {"n": random.randint(1, 100)}},
                              name="POST /workflows/{id}/runs", catch_response=True) as response:
            if response.status_code == 201:
                run_id = response.json()["id"]
                with lock:
                    started_runs.append(run_id)
                    known_runs.append(run_id)
                response.success()
                return run_id
            response.failure(f"status {response.status_code}")
            return None


class ApiUser(_Api):
    """Someone's integration or the UI's API calls: mostly reads, now and then a run. Each waits 0.5-1.5 s
    between calls (a person or a polling integration); WB_LOAD_NO_WAIT=1 sends the next call at once, to
    measure the most a server answers (servers comparison)."""

    wait_time = constant(0) if os.environ.get("WB_LOAD_NO_WAIT") == "1" else between(0.5, 1.5)

    def a_run(self) -> int:
        with lock:
            return random.choice(known_runs[-200:])

    @task(3)
    def list_workflows(self) -> None:
        self.client.get("/api/v1/workflows", name="GET /workflows")

    @task(2)
    def workflow_detail(self) -> None:
        self.client.get(f"/api/v1/workflows/{WORKFLOWS['mix']}", name="GET /workflows/{id}")

    @task(3)
    def list_executions(self) -> None:
        self.client.get("/api/v1/executions?page_size=20", name="GET /executions")

    @task(2)
    def execution_detail(self) -> None:
        self.client.get(f"/api/v1/executions/{self.a_run()}", name="GET /executions/{id}")

    @task(2)
    def execution_state(self) -> None:
        self.client.get(f"/api/v1/executions/{self.a_run()}/state", name="GET /executions/{id}/state")

    @task(2)
    def execution_events(self) -> None:
        self.client.get(f"/api/v1/executions/{self.a_run()}/events", name="GET /executions/{id}/events")

    @task(1)
    def metrics_summary(self) -> None:
        self.client.get("/api/v1/metrics/summary?range=day", name="GET /metrics/summary")

    @task(1)
    def new_run(self) -> None:
        self.start_run("mix")


_claimed = 0
_quitting = False


def _quit_when_idle(runner, patience: float = 60.0) -> None:
    """Quit once every user has stopped (their last requests answered and counted), or after `patience`."""
    waited = 0.0
    while runner.user_count > 0 and waited < patience:
        gevent.sleep(0.1)
        waited += 0.1
    runner.quit()


class StartingUser(_Api):
    """Starts runs of WB_LOAD_WORKFLOW back to back; the whole swarm stops at WB_LOAD_RUNS."""

    wait_time = constant(0)

    @task
    def new_run(self) -> None:
        global _claimed
        with lock:
            if _claimed >= TOTAL_RUNS:
                claimed = False
            else:
                _claimed += 1
                claimed = True
        if not claimed:
            # Everything is started: the swarm quits (run.py then waits for the runs to finish). From a
            # greenlet of its own: quit() stops every user, this one too, which would cut it short.
            global _quitting
            if not _quitting:
                _quitting = True
                gevent.spawn(_quit_when_idle, self.environment.runner)
            raise StopUser()
        if self.start_run(os.environ["WB_LOAD_WORKFLOW"]) is None:
            with lock:
                _claimed -= 1  # a refused start is retried (and counted under its status)


if SCENARIO == "api":
    del StartingUser
else:
    del ApiUser
