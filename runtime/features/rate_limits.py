"""Per-client request limits, in memory: a token bucket for the rate, a counter for concurrency.

Each client (an API user, or a client address on the public endpoints) has a bucket of
``per_minute`` tokens that refills continuously at ``per_minute / 60`` tokens a second: a client may
spend its whole minute's quota in a burst, then goes on at the sustained rate. At most
``concurrency`` of its requests may be open at once. ``0`` turns either limit off.

A refused request takes neither a token nor a slot, so a client that keeps retrying too early is
not locked out for longer. State lives in this process only (one worker per data directory); a
client whose bucket is full again and who has nothing open is forgotten, so memory stays bounded by
the clients seen in the last minute.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel, Field

__all__ = ["Admission", "Quota", "RateLimit", "RateLimiter"]

_SWEEP_INTERVAL = 60.0  # seconds between two passes that forget idle clients
_CONCURRENCY_RETRY_AFTER = 1  # seconds: when a slot frees cannot be known


class RateLimit(BaseModel):
    per_minute: int = Field(ge=0, description="Requests a minute (token bucket); 0: no limit.")
    concurrency: int = Field(ge=0, description="Requests open at once; 0: no limit.")


@dataclass(frozen=True)
class Quota:
    """The rate limit as a client sees it after this request (the RateLimit-* headers)."""

    limit: int
    remaining: int
    reset: int  # seconds until the bucket is full again


@dataclass(frozen=True)
class Admission:
    quota: Quota | None  # None: the rate is not limited
    refused: str | None = None  # why the request is refused; None: admitted, release() it after
    retry_after: int = 0  # seconds, when refused


@dataclass
class _Client:
    tokens: float
    updated: float
    open: int = 0


class RateLimiter:
    def __init__(self, limit: RateLimit, clock: Callable[[], float] = time.monotonic) -> None:
        self._limit = limit
        self._clock = clock
        self._rate = limit.per_minute / 60.0
        self._clients: dict[str, _Client] = {}
        self._swept = clock()

    def admit(self, client: str) -> Admission:
        """Admits one request of ``client`` or says why not; an admitted one must be released."""
        now = self._clock()
        self._sweep(now)
        state = self._clients.get(client)
        if state is None:
            state = self._clients[client] = _Client(tokens=float(self._limit.per_minute), updated=now)
        self._refill(state, now)
        concurrency = self._limit.concurrency
        if concurrency and state.open >= concurrency:
            return Admission(
                self._quota(state),
                f"too many concurrent requests: at most {concurrency} may be open at once",
                _CONCURRENCY_RETRY_AFTER,
            )
        if self._limit.per_minute and state.tokens < 1:
            wait = math.ceil((1 - state.tokens) / self._rate)
            return Admission(
                self._quota(state),
                f"rate limit exceeded: at most {self._limit.per_minute} requests a minute",
                max(wait, 1),
            )
        if self._limit.per_minute:
            state.tokens -= 1
        state.open += 1
        return Admission(self._quota(state))

    def release(self, client: str) -> None:
        """An admitted request of ``client`` has ended."""
        state = self._clients.get(client)
        if state is not None and state.open > 0:
            state.open -= 1

    def _refill(self, state: _Client, now: float) -> None:
        state.tokens = min(float(self._limit.per_minute), state.tokens + (now - state.updated) * self._rate)
        state.updated = now

    def _quota(self, state: _Client) -> Quota | None:
        if not self._limit.per_minute:
            return None
        missing = self._limit.per_minute - state.tokens
        return Quota(
            limit=self._limit.per_minute,
            remaining=math.floor(state.tokens),
            reset=math.ceil(missing / self._rate) if missing > 0 else 0,
        )

    def _sweep(self, now: float) -> None:
        if now - self._swept < _SWEEP_INTERVAL:
            return
        self._swept = now
        for client, state in list(self._clients.items()):
            self._refill(state, now)
            if state.open == 0 and state.tokens >= self._limit.per_minute:
                del self._clients[client]
