"""A web process never holds more database connections than its pool, and a request that finds the pool
exhausted answers 503 with Retry-After, never 500.

The server under test has a pool of 2 and waits 0.5 s for a connection. To hold both connections for as
long as the test likes, the test locks the API token table from its own connection: every
token-authenticated request then takes a connection and waits on the lock, so the third and later
concurrent requests find the pool empty. Nothing here depends on timing beyond "0.5 s passes".
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import psycopg
import pytest
from django.db import connection
from apps.accounts.services import issue_token

from tests.helpers import wait_until

POOL = 2
REQUESTS = 8


def _get(url: str, token: str | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Token {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _get_page(url: str) -> tuple[int, dict[str, str], bytes]:
    """A browser's GET with a session cookie (a well-formed key, so the session is looked up)."""
    request = urllib.request.Request(url, headers={"Cookie": "sessionid=" + "a" * 32, "Accept": "text/html"})
    try:
        with urllib.request.build_opener(_NoRedirect).open(request, timeout=60) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def _own_connection(*, autocommit: bool = False) -> psycopg.Connection:
    """A connection of the test's own (outside Django), on the test database."""
    params = {k: v for k, v in connection.get_connection_params().items() if k in ("dbname", "user", "host", "port", "password")}
    return psycopg.connect(**params, autocommit=autocommit)


def _server_connections(conn: psycopg.Connection, application_name: str) -> int:
    """The server's open connections (`conn` in autocommit: a transaction would keep showing its first snapshot)."""
    return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [application_name]).fetchone()[0]


@pytest.mark.xdist_group("capacity")
def test_more_requests_than_the_pool_holds_get_503_with_retry_after_and_never_500(web_server, alice):
    token = issue_token(alice)[1]
    server = web_server(WB_DB_POOL_MAX_SIZE=str(POOL), WB_DB_POOL_MIN_SIZE="0", WB_DB_POOL_TIMEOUT="0.5", WB_RETRY_AFTER_SECONDS="3")
    status, _, _ = _get(server.url + "/api/v1/workflows", token)
    assert status == 200

    results: list[tuple[int, dict[str, str], bytes]] = []
    lock = threading.Lock()

    def call() -> None:
        answer = _get(server.url + "/api/v1/workflows", token)
        with lock:
            results.append(answer)

    watcher = _own_connection(autocommit=True)
    holder = _own_connection()
    try:
        holder.execute("LOCK TABLE accounts_apitoken IN ACCESS EXCLUSIVE MODE")  # held until commit
        threads = [threading.Thread(target=call) for _ in range(REQUESTS)]
        for thread in threads:
            thread.start()
        # Two requests hold the pool's two connections (waiting on the lock); the rest give up after 0.5 s.
        wait_until(lambda: len(results) >= REQUESTS - POOL, timeout=60, message="the requests that found no connection")
        assert _server_connections(watcher, server.application_name) == POOL

        # Meanwhile the probes answer at once and say so; /readyz cannot get a connection either.
        status, _, body = _get(server.url + "/healthz")
        health = json.loads(body)
        assert status == 200
        assert health["database_pool"]["max"] == POOL
        assert health["database_pool"]["in_use"] == POOL
        status, _, body = _get(server.url + "/readyz")
        ready = json.loads(body)
        assert status == 503
        assert ready["checks"]["database"] == "database: PoolTimeout"
        assert ready["database_pool"]["timeouts"] >= REQUESTS - POOL
    finally:
        holder.commit()  # the lock goes: the two waiting requests finish
        holder.close()
    for thread in threads:
        thread.join(60)

    statuses = sorted(status for status, _, _ in results)
    assert 500 not in statuses
    assert statuses == [200] * POOL + [503] * (REQUESTS - POOL)
    for status, headers, body in results:
        if status == 503:
            assert headers["Retry-After"] == "3"
            problem = json.loads(body)
            assert problem["code"] == "database_unavailable"
            assert "at capacity" in problem["detail"]
    assert _server_connections(watcher, server.application_name) <= POOL
    watcher.close()

    # Afterwards the server serves normally again.
    status, _, _ = _get(server.url + "/api/v1/workflows", token)
    assert status == 200


@pytest.mark.xdist_group("capacity")
def test_a_page_that_finds_the_pool_exhausted_gets_a_plain_503_too(web_server, alice):
    """Not only the API: a session request to an HTML page waits for the session row like the API waited
    for the token, and answers 503 text (the middleware's path, not DRF's)."""
    server = web_server(WB_DB_POOL_MAX_SIZE="1", WB_DB_POOL_MIN_SIZE="0", WB_DB_POOL_TIMEOUT="0.5")
    holder = _own_connection()
    first: list[tuple[int, dict[str, str], bytes]] = []
    try:
        holder.execute("LOCK TABLE django_session IN ACCESS EXCLUSIVE MODE")
        # The first request holds the only connection, waiting on the lock; the second finds none.
        blocked = threading.Thread(target=lambda: first.append(_get_page(server.url + "/workflows/")))
        blocked.start()
        watcher = _own_connection(autocommit=True)
        wait_until(lambda: _server_connections(watcher, server.application_name) == 1, timeout=30, message="the first request's connection")
        watcher.close()
        status, headers, body = _get_page(server.url + "/workflows/")
        assert status == 503
        assert headers["Retry-After"] == "2"
        assert headers["Content-Type"].startswith("text/plain")
        assert b"at capacity" in body
    finally:
        holder.commit()
        holder.close()
    blocked.join(30)
    assert first and first[0][0] == 302  # to the login page: the made-up session does not exist
