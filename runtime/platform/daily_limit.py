"""A per-client daily quota, in memory: registrations a client address may make a day.

A token bucket of ``per_day`` tokens refilling at ``per_day`` a day, like the per-minute limits
(:mod:`runtime.features.rate_limits`) on a day's scale. A client whose bucket is full again is
forgotten at the next pass, so memory stays bounded by the clients of the last day.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

__all__ = ["DailyLimit"]

DAY = 86_400.0


class DailyLimit:
    def __init__(self, per_day: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._per_day = per_day
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # client → (tokens, when counted)
        self._swept = clock()

    def take(self, client: str) -> int | None:
        """Spend one of ``client``'s tokens: None if it had one, else seconds until it has."""
        if not self._per_day:
            return None
        now = self._clock()
        self._sweep(now)
        tokens = self._tokens(client, now)
        if tokens < 1:
            self._buckets[client] = (tokens, now)
            return max(1, math.ceil((1 - tokens) * DAY / self._per_day))
        self._buckets[client] = (tokens - 1, now)
        return None

    def _tokens(self, client: str, now: float) -> float:
        tokens, counted = self._buckets.get(client, (float(self._per_day), now))
        return min(float(self._per_day), tokens + (now - counted) * self._per_day / DAY)

    def _sweep(self, now: float) -> None:
        if now - self._swept < 3600:
            return
        self._swept = now
        for client in list(self._buckets):
            if self._tokens(client, now) >= self._per_day:
                del self._buckets[client]
