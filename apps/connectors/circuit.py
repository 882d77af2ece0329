"""A circuit breaker per destination (host:port), kept in Redis so every worker shares it.

closed     requests pass; each failure (connection error, timeout, 5xx, 429) adds to a
           counter that a success resets.
open       after `threshold` failures in a row: requests fail at once with CircuitOpen
           (retryable, so the engine's retry policy backs off) for `reset_after` seconds.
half-open  then one trial request passes (the others still fail fast); its success
           closes the circuit, its failure opens it again.

When Redis is unreachable the breaker lets requests through (it protects remote
services; it must not take ours down with it) and logs a warning.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis
from django.conf import settings

from apps.common import redis_store

logger = logging.getLogger("workflow.connectors")


def client() -> redis.Redis:
    return redis_store.client(getattr(settings, "WB_HTTP_CIRCUIT_REDIS_URL", "") or settings.REDIS_URL, timeout=2.0)


@dataclass(frozen=True)
class Breaker:
    key: str
    threshold: int
    reset_after: float
    # A trial request holds the half-open slot at most this long.
    trial_ttl: float = 60.0

    @property
    def _failures(self) -> str:
        return redis_store.key("circuit", f"{self.key}:failures")

    @property
    def _open(self) -> str:
        return redis_store.key("circuit", f"{self.key}:open")

    @property
    def _tripped(self) -> str:
        return redis_store.key("circuit", f"{self.key}:tripped")

    @property
    def _trial(self) -> str:
        return redis_store.key("circuit", f"{self.key}:trial")

    def allow(self) -> bool:
        """May a request go out now? (Claims the trial slot when half-open.)"""
        try:
            r = client()
            if r.exists(self._open):
                return False
            if r.exists(self._tripped):
                return bool(r.set(self._trial, 1, nx=True, px=int(self.trial_ttl * 1000)))
            return True
        except redis.RedisError as exc:
            logger.warning("circuit breaker unavailable (%s): letting the request through", exc)
            return True

    def record_success(self) -> None:
        try:
            client().delete(self._failures, self._tripped, self._trial, self._open)
        except redis.RedisError as exc:
            logger.warning("circuit breaker unavailable (%s)", exc)

    def record_failure(self) -> bool:
        """Count a failure; return True when this opened the circuit."""
        try:
            r = client()
            if r.exists(self._tripped):
                # A failed trial (or a late failure while open): open again.
                self._trip(r)
                return True
            pipe = r.pipeline()
            pipe.incr(self._failures)
            # Failures long apart are not "in a row": the counter forgets after a while.
            pipe.expire(self._failures, max(60, int(self.reset_after * 4)))
            count, _ = pipe.execute()
            if int(count) >= self.threshold:
                self._trip(r)
                return True
            return False
        except redis.RedisError as exc:
            logger.warning("circuit breaker unavailable (%s)", exc)
            return False

    def _trip(self, r: redis.Redis) -> None:
        pipe = r.pipeline()
        pipe.set(self._open, 1, px=max(1, int(self.reset_after * 1000)))
        pipe.set(self._tripped, 1, ex=max(3600, int(self.reset_after * 10)))
        pipe.delete(self._failures, self._trial)
        pipe.execute()

    def state(self) -> str:
        try:
            r = client()
            if r.exists(self._open):
                return "open"
            if r.exists(self._tripped):
                return "half_open"
            return "closed"
        except redis.RedisError:
            return "unknown"

    def reset(self) -> None:
        self.record_success()


def breaker_for(host: str, port: int, *, threshold: int | None = None, reset_after: float | None = None) -> Breaker:
    return Breaker(
        key=f"{host}:{port}",
        threshold=threshold or settings.WB_HTTP_CIRCUIT_THRESHOLD,
        reset_after=reset_after if reset_after is not None else settings.WB_HTTP_CIRCUIT_RESET_SECONDS,
    )
