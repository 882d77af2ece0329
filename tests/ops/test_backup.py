"""deploy/backup.py: a dump restored into a fresh database is a working installation. A real worker on
the restored database runs a workflow that exists only in the dump, and the run history came along."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from apps.executions.engine.orchestrator import start_execution
from apps.workflows.services import create_workflow
from tests.conftest import ROOT, WorkerProcess, _worker_env
from tests.helpers import wait_until

DEFINITION = {
    "format_version": 1,
    "nodes": [
        {"id": "greet", "type": "activity", "activity": "set", "params": {"values": {"greeting": "restored"}}},
        {"id": "done", "type": "activity", "activity": "noop", "params": {}},
    ],
    "edges": [{"from": "greet", "to": "done"}],
}


def _backup(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "deploy/backup.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


@pytest.fixture
def fresh_database_url(worker):
    """The URL of a database that does not exist yet; dropped (with its connections) afterwards."""
    base = _worker_env(worker.queue)["DATABASE_URL"]
    name = f"wb_restore_{uuid.uuid4().hex[:8]}"
    yield _with_database(base, name)
    with psycopg.connect(_with_database(base, "postgres"), autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [name])
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


@pytest.mark.worker
def test_a_dump_restored_into_a_fresh_database_runs_a_workflow(worker, alice, tmp_path, fresh_database_url):
    workflow = create_workflow(owner=alice, name=f"backup {uuid.uuid4().hex[:6]}", definition=DEFINITION)
    before = start_execution(workflow, {}, acting_user=alice)
    wait_until(lambda: before.__class__.objects.filter(pk=before.pk, status="completed").exists(), timeout=60, message="the run before the dump")

    env = _worker_env(worker.queue)
    dump_file = tmp_path / "wb.dump"
    dumped = _backup("dump", str(dump_file), env=env)
    assert dumped.returncode == 0, dumped.stderr
    assert dump_file.stat().st_size > 0 and not dump_file.with_name("wb.dump.partial").exists()

    restored = _backup("restore", str(dump_file), "--database-url", fresh_database_url, "--create", env=env)
    assert restored.returncode == 0, restored.stderr

    # A worker and a command on the restored database only, on a queue of their own.
    queue = f"{worker.queue}-restored"
    restored_env = {"DATABASE_URL": fresh_database_url}
    restored_worker = WorkerProcess(queue, concurrency=2, env=restored_env)
    restored_worker.start()
    try:
        run = subprocess.run(
            [sys.executable, "manage.py", "run_workflow", workflow.slug, "--wait", "--json", "--timeout", "90"],
            cwd=ROOT, env=_worker_env(queue, restored_env), capture_output=True, text=True, timeout=150,
        )
    finally:
        restored_worker.stop()
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["status"] == "completed" and result["workflow"] == workflow.slug

    # The history came along, and the new run went only into the restored database.
    with psycopg.connect(fresh_database_url) as conn:
        statuses = dict(conn.execute("SELECT id, status FROM executions_execution WHERE workflow_id = %s", [workflow.pk]).fetchall())
    assert statuses[before.pk] == "completed" and statuses[result["execution_id"]] == "completed"
    assert not before.__class__.objects.filter(pk=result["execution_id"], workflow=workflow).exists()


def test_restoring_a_missing_file_says_so(tmp_path):
    result = _backup("restore", str(tmp_path / "nope.dump"), "--database-url", "postgresql://nobody@/nowhere", env={"PATH": "/usr/bin:/bin"})
    assert result.returncode != 0 and "no such file" in result.stderr
