"""Shared fixtures: personas (alice owns, bob is her team mate, charlie is a stranger),
API clients, and a real Celery worker process bound to the test database.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import socket
import time
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.contrib.auth.models import Group, User
from rest_framework.test import APIClient

ROOT = Path(__file__).resolve().parent.parent


#
# Personas
#


@pytest.fixture
def team(db) -> Group:
    return Group.objects.create(name="builders")


@pytest.fixture
def alice(db, team) -> User:
    user = User.objects.create_user("alice", "alice@example.com", "alice-password-1")
    user.groups.add(team)
    return user


@pytest.fixture
def bob(db, team) -> User:
    user = User.objects.create_user("bob", "bob@example.com", "bob-password-1")
    user.groups.add(team)
    return user


@pytest.fixture
def charlie(db) -> User:
    """Should have no access to Alice's stuff."""
    return User.objects.create_user("charlie", "charlie@example.com", "charlie-password-1")


@pytest.fixture
def admin_user(db) -> User:
    return User.objects.create_superuser("root", "root@example.com", "root-password-1")


def _client_for(user: User | None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


@pytest.fixture
def api(alice) -> APIClient:
    """An API client authenticated as alice."""
    return _client_for(alice)


@pytest.fixture
def api_as():
    return _client_for


@pytest.fixture
def anon_api() -> APIClient:
    return APIClient()


#
# A real Celery worker
#


def _worker_env(queue: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    from django.db import connection

    name = connection.settings_dict["NAME"]
    url = urlsplit(os.environ["DATABASE_URL"])
    database_url = urlunsplit((url.scheme, url.netloc, "/" + name, url.query, url.fragment))
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "WB_CELERY_QUEUE": queue,
        "WB_TESTING": "true",
        # Recover fast in tests: sweep every second, reap after 5 s without a heartbeat.
        "WB_SWEEP_INTERVAL": "1",
        # The metrics collector records finished runs every second.
        "WB_METRICS_INTERVAL": "1",
        "WB_STEP_HEARTBEAT_GRACE": "5",
        # Tests stand remote APIs up on 127.0.0.1 (other loopback addresses stay refused).
        "WB_HTTP_ALLOWED_HOSTS": "127.0.0.1",
        **(extra or {}),
    }
    env.pop("WB_TEST_DB_NAME", None)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WebProcess:
    """The web server `make run` starts (deploy/local/run.py's command) in a subprocess on a free port,
    with `env`; ready when `ready_path` answers 200."""

    def __init__(self, env: dict[str, str], log_name: str, *, ready_path: str = "/healthz"):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = env
        self.ready_path = ready_path
        self.log_path = ROOT / ".data" / "logs" / log_name.format(port=self.port)
        self.application_name = ""  # set by a test that names the server's database connections
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        sys.path.insert(0, str(ROOT / "deploy" / "local"))
        import run  # deploy/local/run.py (not a package): the same server command as `make run`

        argv = run.web_argv(sys.executable, "127.0.0.1", self.port, workers=1)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the web server exited; see {self.log_path}")
            try:
                with urllib.request.urlopen(self.url + self.ready_path, timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"the web server did not answer within 60 s; see {self.log_path}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class WorkerProcess:
    """A `celery worker` subprocess consuming this test session's own queue."""

    def __init__(self, queue: str, *, concurrency: int = 8, env: dict[str, str] | None = None):
        self.queue = queue
        self.concurrency = concurrency
        self.extra_env = env
        self.proc: subprocess.Popen | None = None
        self.log_path = ROOT / ".data" / "logs" / f"test-worker-{queue}.log"

    def start(self) -> None:
        from workflowsite.celery import app

        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        # A new node name per start: a restarted worker must not heartbeat its predecessor's steps.
        self.name = f"{self.queue}-{uuid.uuid4().hex[:4]}"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "workflowsite",
                "worker",
                "-P",
                "threads",
                "-c",
                str(self.concurrency),
                "-Q",
                self.queue,
                "-n",
                f"{self.name}@%h",
                "--without-gossip",
                "--without-mingle",
                "-l",
                "INFO",
            ],
            cwd=ROOT,
            env=_worker_env(self.queue, self.extra_env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"celery worker exited; see {self.log_path}")
            replies = app.control.inspect(destination=[f"{self.name}@{os.uname().nodename}"], timeout=0.5).ping()
            if replies:
                return
        raise RuntimeError(f"celery worker did not answer within 60 s; see {self.log_path}")

    def kill(self) -> None:
        """SIGKILL: the worker dies mid-task, as on a lost machine."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture(scope="session")
def worker_queue() -> str:
    from django.conf import settings

    from workflowsite.celery import app

    queue = f"wbtest-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}-{uuid.uuid4().hex[:6]}"
    settings.CELERY_TASK_DEFAULT_QUEUE = queue
    app.conf.task_default_queue = queue
    return queue


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker, worker_queue):
    """One real worker for the session (tests using it need `transactional_db`)."""
    worker = WorkerProcess(worker_queue)
    with django_db_blocker.unblock():
        worker.start()
    yield worker
    worker.stop()


@pytest.fixture
def worker(celery_worker, transactional_db):
    """The session's worker, restarted if an earlier test killed it."""
    if celery_worker.proc is None or celery_worker.proc.poll() is not None:
        celery_worker.start()
    return celery_worker


@pytest.fixture(autouse=True, scope="session")
def _flush_retries_a_deadlock():
    """A transactional test ends with Django's flush (one TRUNCATE of every table) while the real
    worker's background thread may be in a transaction of its own (the sweep, the metrics
    collector): PostgreSQL can pick the TRUNCATE as a deadlock victim, and the next test then
    starts on the last one's rows. Try the flush again, as a client retries a deadlock victim."""
    from django.core.management.base import CommandError
    from django.core.management.commands import flush

    original = flush.Command.handle

    def handle(self, **options):
        for attempt in range(1, 6):
            try:
                return original(self, **options)
            except CommandError as exc:
                if "deadlock" not in str(exc.__cause__) or attempt == 5:
                    raise
                time.sleep(0.2 * attempt)

    flush.Command.handle = handle
    yield
    flush.Command.handle = original
