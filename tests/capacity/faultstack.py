"""A stack of its own for the fault tests: a throwaway PostgreSQL and Redis (benchmarks/chaos/run.py's
`OwnServers`, the ones its full-size scenarios use), migrated once, and Celery workers on them.

Nothing here touches the session's servers or test database, so a test may kill a worker, restart
PostgreSQL or restart Redis while the other xdist processes run their tests. The test process reads the
private database with psycopg (Django in the test process stays bound to the session's test database);
runs are started by a Django subprocess on the private stack.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid

import psycopg
from psycopg.rows import dict_row

from benchmarks.chaos.run import OwnServers
from tests.conftest import ROOT

LOGS = ROOT / ".data" / "logs"


class FaultStack:
    def __init__(self) -> None:
        self.servers = OwnServers()
        self.queue = f"wbfault-{uuid.uuid4().hex[:6]}"
        self.workers: list[subprocess.Popen] = []
        self.log_path = LOGS / f"test-faults-{self.queue}.log"
        self.database_url = ""
        self.redis_url = ""

    # The servers

    def start(self) -> None:
        LOGS.mkdir(parents=True, exist_ok=True)
        self.database_url = self.servers.start_postgres()
        self.redis_url = self.servers.start_redis()
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=self.env(), check=True, timeout=180)

    def env(self) -> dict[str, str]:
        env = {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "WB_CELERY_QUEUE": self.queue,
            "DJANGO_SETTINGS_MODULE": "workflowsite.settings",
            "WB_TESTING": "true",
            # As tests/conftest.py's worker: sweep every second, reap after 5 s without a heartbeat.
            "WB_SWEEP_INTERVAL": "1",
            "WB_STEP_HEARTBEAT_GRACE": "5",
            # A message lost with a killed worker or a stopped Redis is sent again after 5 s (20 s by default).
            "WB_REDISPATCH_AFTER": "5",
            "WB_METRICS_INTERVAL": "1",
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("WB_TEST_DB_NAME", None)
        return env

    def restart_postgres(self, down: float) -> None:
        self.servers.stop_postgres()
        time.sleep(down)
        self.servers.start_postgres()

    def restart_redis(self, down: float) -> None:
        self.servers.stop_redis()
        time.sleep(down)
        self.servers.start_redis()

    def stop(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        self.servers.cleanup()

    # Workers

    def start_worker(self, concurrency: int = 8) -> subprocess.Popen:
        name = f"{self.queue}-{len(self.workers)}"
        with open(self.log_path, "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "workflowsite", "worker", "-P", "threads", "-c", str(concurrency),
                 "-Q", self.queue, "-n", f"{name}@%h", "--without-gossip", "--without-mingle", "-l", "INFO"],
                cwd=ROOT, env=self.env(), stdout=log, stderr=subprocess.STDOUT,
            )
        self.workers.append(proc)
        # Ready when it heartbeats in the private database's view: its background thread started.
        deadline = time.monotonic() + 60
        marker = f"{name}@"
        while marker + os.uname().nodename + " ready." not in self.log_path.read_text(errors="replace"):
            assert proc.poll() is None, f"the worker exited; see {self.log_path}"
            assert time.monotonic() < deadline, f"the worker did not start within 60 s; see {self.log_path}"
            time.sleep(0.2)
        return proc

    @staticmethod
    def kill(proc: subprocess.Popen) -> None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    # Runs

    def start_runs(self, definition: dict, count: int) -> list[int]:
        """Create a workflow and start `count` runs of it, as the API does, in a Django process on this stack."""
        code = textwrap.dedent(f"""
            import json, django
            django.setup()
            from django.contrib.auth.models import User
            from apps.executions.engine.orchestrator import start_execution
            from apps.workflows.services import create_workflow
            user, _ = User.objects.get_or_create(username="operator", defaults={{"is_superuser": True, "is_staff": True}})
            workflow = create_workflow(owner=user, name="faults {uuid.uuid4().hex[:6]}", definition=json.loads({json.dumps(json.dumps(definition))}))
            print(json.dumps([start_execution(workflow, {{}}, acting_user=user, trigger="api").pk for _ in range({count})]))
        """)
        result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=self.env(), capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode == 0, result.stderr[-3000:]
        return json.loads(result.stdout.strip().splitlines()[-1])

    def query(self, sql: str, params: list | None = None) -> list[dict]:
        """Read the private database; retried while PostgreSQL is coming back."""
        deadline = time.monotonic() + 60
        while True:
            try:
                with psycopg.connect(self.database_url, connect_timeout=5, row_factory=dict_row) as conn:
                    return conn.execute(sql, params or []).fetchall()
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def wait(self, predicate, *, timeout: float, message: str):
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            assert time.monotonic() < deadline, f"timed out after {timeout:.0f} s waiting for {message}; worker log: {self.log_path}"
            time.sleep(0.25)

    def runs(self, ids: list[int]) -> list[dict]:
        return self.query("SELECT id, status, error, finished_at FROM executions_execution WHERE id = ANY(%s) ORDER BY id", [ids])

    def running_steps(self, ids: list[int]) -> list[dict]:
        return self.query("SELECT id, execution_id, node_id, attempt FROM executions_steprun WHERE execution_id = ANY(%s) AND status = 'running'", [ids])

    def wait_finished(self, ids: list[int], timeout: float) -> list[dict]:
        self.wait(lambda: all(r["finished_at"] for r in self.runs(ids)), timeout=timeout, message=f"runs {ids} to finish")
        return self.runs(ids)

    def steps_completed_twice(self, ids: list[int]) -> list[dict]:
        return self.query(
            "SELECT execution_id, node_id, count(*) AS n FROM executions_executionevent WHERE execution_id = ANY(%s) AND type = 'step_completed' "
            "GROUP BY execution_id, node_id HAVING count(*) > 1", [ids])

    def attempts_recorded_twice(self, ids: list[int]) -> list[dict]:
        """A step attempt is one StepRun row; two rows for one (run, scope, node, attempt) would be an attempt recorded twice."""
        return self.query(
            "SELECT execution_id, scope, node_id, attempt, count(*) AS n FROM executions_steprun WHERE execution_id = ANY(%s) "
            "GROUP BY execution_id, scope, node_id, attempt HAVING count(*) > 1", [ids])

    def events(self, execution_id: int) -> list[dict]:
        return self.query("SELECT seq, type, node_id, payload FROM executions_executionevent WHERE execution_id = %s ORDER BY seq", [execution_id])
