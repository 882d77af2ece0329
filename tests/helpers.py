"""Small helpers shared by tests that run workflows on the real worker."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from apps.executions.models import Execution


def wait_for(execution: Execution, *, timeout: float = 30.0, statuses: tuple[str, ...] | None = None) -> Execution:
    """Poll until the run has finished (or reached one of `statuses`); fail the test on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        execution.refresh_from_db()
        if (statuses and execution.status in statuses) or (not statuses and execution.is_finished):
            return execution
        if time.monotonic() > deadline:
            steps = [(s.scope + s.node_id, s.attempt, s.status) for s in execution.steps.order_by("id")]
            raise AssertionError(f"execution {execution.pk} still {execution.status} after {timeout} s; steps: {steps}")
        time.sleep(0.05)


def wait_until(predicate, *, timeout: float = 30.0, message: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {message}")
        time.sleep(0.05)


class RecordingServer:
    """A real HTTP server on 127.0.0.1 that records every request; stands in for a remote API.

    `delay` seconds of latency per request (set per path with `delays`), JSON answers.
    """

    def __init__(self, *, delays: dict[str, float] | None = None, statuses: dict[str, list[int]] | None = None):
        self.requests: list[dict] = []
        self.delays = delays or {}
        self.statuses = {k: list(v) for k, v in (statuses or {}).items()}
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self):
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path.split("?")[0]
                with server.lock:
                    server.requests.append({"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body.decode()})
                    codes = server.statuses.get(path)
                    code = codes.pop(0) if codes else 200
                time.sleep(server.delays.get(path, 0))
                payload = json.dumps({"ok": code < 400, "path": self.path}).encode()
                try:
                    self.send_response(code)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def hits(self, path: str) -> int:
        with self.lock:
            return sum(1 for r in self.requests if r["path"].split("?")[0] == path)

    def __enter__(self) -> "RecordingServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def wait_until_idle(worker, *, timeout: float = 10.0) -> None:
    """Wait until the worker runs no task (checked twice in a row), so a test's teardown does
    not truncate tables under side effects still in flight (notifications, deliveries)."""
    import os

    from workflowsite.celery import app

    destination = [f"{worker.name}@{os.uname().nodename}"]
    deadline = time.monotonic() + timeout
    quiet = 0
    while quiet < 2 and time.monotonic() < deadline:
        active = app.control.inspect(destination=destination, timeout=0.5).active() or {}
        quiet = 0 if any(active.values()) else quiet + 1
        time.sleep(0.1)
