"""Which errors answer 503 (and name which resource) rather than 500: the drivers' own exceptions, as
they arrive wrapped by Django or raised by Celery."""

from __future__ import annotations

import django.db
import psycopg
import pytest
import redis
from kombu.exceptions import OperationalError as KombuOperationalError
from psycopg_pool import PoolTimeout

from apps.accounts.overload import DATABASE, REDIS, classify


def _wrapped(driver_error: Exception) -> Exception:
    """What Django raises: its own OperationalError, caused by the driver's."""
    try:
        try:
            raise driver_error
        except Exception as exc:
            raise django.db.OperationalError(str(exc)) from exc
    except django.db.OperationalError as wrapped:
        return wrapped


@pytest.mark.parametrize(
    "error",
    [
        PoolTimeout("couldn't get a connection after 5.00 sec"),
        psycopg.OperationalError('connection failed: FATAL:  sorry, too many clients already'),
        psycopg.OperationalError("FATAL:  remaining connection slots are reserved for roles with the SUPERUSER attribute"),
        psycopg.OperationalError('FATAL:  too many connections for role "workflow"'),
    ],
)
def test_no_database_connection_is_a_database_outage(error):
    assert classify(_wrapped(error)) == DATABASE
    assert classify(error) == DATABASE


@pytest.mark.parametrize(
    "error",
    [redis.exceptions.ConnectionError("Error 2 connecting to unix socket"), redis.exceptions.TimeoutError("Timeout reading"),
     KombuOperationalError("Error 111 connecting to localhost:6379. Connection refused.")],
)
def test_an_unreachable_redis_is_a_redis_outage(error):
    assert classify(error) == REDIS


@pytest.mark.parametrize(
    "error",
    [
        _wrapped(psycopg.OperationalError("FATAL: password authentication failed")),
        django.db.IntegrityError("duplicate key value violates unique constraint"),
        redis.exceptions.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"),
        ValueError("a bug"),
    ],
)
def test_other_errors_stay_errors(error):
    assert classify(error) is None
