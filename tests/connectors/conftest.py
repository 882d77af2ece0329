"""Fixtures for the connectors tests: real HTTP servers on 127.0.0.1 standing in for remote
APIs, Slack, webhook receivers and an OpenAI-compatible provider, and a Celery worker of
our own whose environment allows 127.0.0.1 as an outbound destination."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable
from unittest import mock

import pytest

from apps.connectors.circuit import breaker_for
from apps.executions.activities import ActivityContext

from ..conftest import WorkerProcess

#
# Local HTTP servers
#


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Reply = tuple[int, dict[str, str], bytes | str | dict | list]


@dataclass
class LocalServer:
    """routes: "METHOD /path" or "/path" -> callable(Received) -> (status, headers, body)."""

    httpd: ThreadingHTTPServer
    routes: dict[str, Callable[[Received], Reply]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def hits(self, path: str) -> int:
        return sum(1 for r in self.received if r.path.split("?")[0] == path)


def _handler(server_ref: list[LocalServer]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            server = server_ref[0]
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            received = Received(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            server.received.append(received)
            route = server.routes.get(f"{self.command} {self.path.split('?')[0]}") or server.routes.get(self.path.split("?")[0])
            if route is None:
                status, headers, payload = 404, {}, {"error": "not found"}
            else:
                status, headers, payload = route(received)
            if isinstance(payload, (dict, list)):
                data = json.dumps(payload).encode()
                headers = {"Content-Type": "application/json", **headers}
            elif isinstance(payload, str):
                data = payload.encode()
            else:
                data = payload
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped reading (size limit, timeout): that is the point

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

    return Handler


def _start_server() -> LocalServer:
    ref: list[LocalServer] = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(ref))
    httpd.daemon_threads = True
    server = LocalServer(httpd)
    ref.append(server)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


@pytest.fixture
def local_server():
    """Start HTTP servers on 127.0.0.1 (call it for each one); all stop after the test."""
    servers: list[LocalServer] = []

    def start() -> LocalServer:
        server = _start_server()
        breaker_for("127.0.0.1", server.port).reset()  # ports are reused across tests
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.httpd.shutdown()
        server.httpd.server_close()


@pytest.fixture
def server(local_server) -> LocalServer:
    return local_server()


#
# An OpenAI-compatible provider
#

AI_KEY = "sk-local-test"


def completion(content: str, usage: dict | None = None) -> dict:
    return {
        "id": "cmpl-1", "object": "chat.completion", "model": "stand-in-1",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": usage or {"prompt_tokens": 10, "completion_tokens": 5},
    }


def _serve_answers(server: LocalServer) -> None:
    """`server.answers` is the queue of message contents the provider answers with."""
    server.answers = []  # type: ignore[attr-defined]

    def reply(received):
        if received.headers.get("authorization") != f"Bearer {AI_KEY}":
            return 401, {}, {"error": {"message": "bad key"}}
        return 200, {}, completion(server.answers.pop(0))  # type: ignore[attr-defined]

    server.routes["POST /v1/chat/completions"] = reply


@pytest.fixture
def provider(server, settings):
    """A local OpenAI-compatible server configured as this process's provider."""
    settings.AI_BASE_URL = server.url("/v1")
    settings.AI_MODEL = "stand-in-1"
    settings.AI_API_KEY = AI_KEY
    _serve_answers(server)
    return server


@pytest.fixture(scope="session")
def session_provider() -> LocalServer:
    """The provider the connectors worker is configured with (its settings come from the environment)."""
    server = _start_server()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


@pytest.fixture
def worker_provider(session_provider, settings) -> LocalServer:
    """The worker's provider, emptied for this test, and configured for this process too."""
    session_provider.received.clear()
    session_provider.routes.clear()
    _serve_answers(session_provider)
    settings.AI_BASE_URL = session_provider.url("/v1")
    settings.AI_MODEL = "stand-in-1"
    settings.AI_API_KEY = AI_KEY
    return session_provider


#
# Runs and activity contexts
#


@pytest.fixture
def run_context(alice):
    """An ActivityContext for a real execution of a workflow owned by alice (credentials resolve
    among those granted to `run_context.workflow`)."""
    from apps.executions.models import Execution
    from apps.workflows.services import create_workflow

    workflow = create_workflow(owner=alice, name=f"ctx-{uuid.uuid4().hex[:6]}", definition={"format_version": 1, "nodes": [{"id": "a", "type": "activity", "activity": "noop"}]})
    execution = Execution.objects.create(workflow=workflow, definition=workflow.definition)

    def make(node_id: str = "call") -> ActivityContext:
        return ActivityContext(execution_id=execution.pk, step_id=0, node_id=node_id, attempt=1)

    make.execution = execution  # type: ignore[attr-defined]
    make.workflow = workflow  # type: ignore[attr-defined]
    return make


def wait_for_run(execution, timeout: float = 20.0):
    """Poll until the run finishes; return it refreshed."""
    from apps.executions.choices import FINISHED_EXECUTION

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        execution.refresh_from_db()
        if execution.status in FINISHED_EXECUTION:
            return execution
        time.sleep(0.05)
    raise AssertionError(f"execution {execution.pk} still {execution.status} after {timeout} s")


#
# A worker that may call 127.0.0.1
#

EMAIL_DIR = Path(__file__).resolve().parents[2] / ".data" / "test-mail"


@pytest.fixture(scope="session")
def connectors_worker(django_db_setup, django_db_blocker, session_provider):
    queue = f"wbconn-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}-{uuid.uuid4().hex[:6]}"
    mail_dir = EMAIL_DIR / queue
    mail_dir.mkdir(parents=True, exist_ok=True)
    extra_env = {
        "WB_HTTP_ALLOWED_HOSTS": "127.0.0.1",
        "WB_ACTIVITY_MODULES": "tests.connectors.thirdparty_activity",
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(mail_dir),
        "AI_BASE_URL": session_provider.url("/v1"), "AI_MODEL": "stand-in-1", "AI_API_KEY": AI_KEY,
    }
    worker = WorkerProcess(queue, concurrency=4, env=extra_env)  # kept for restarts
    with django_db_blocker.unblock(), mock.patch.dict(os.environ, extra_env):
        worker.start()
    worker.mail_dir = mail_dir  # type: ignore[attr-defined]
    yield worker
    worker.stop()


@pytest.fixture
def conn_worker(connectors_worker, transactional_db, settings):
    """Our worker, with this test's dispatches sent to its queue."""
    from workflowsite.celery import app

    if connectors_worker.proc is None or connectors_worker.proc.poll() is not None:
        with mock.patch.dict(os.environ, {"WB_HTTP_ALLOWED_HOSTS": "127.0.0.1", "WB_ACTIVITY_MODULES": "tests.connectors.thirdparty_activity"}):
            connectors_worker.start()
    previous = app.conf.task_default_queue
    app.conf.task_default_queue = connectors_worker.queue
    settings.CELERY_TASK_DEFAULT_QUEUE = connectors_worker.queue
    yield connectors_worker
    app.conf.task_default_queue = previous
