"""Waking the readers of a run when it changes (an event appended, its status set).

A reader takes its wake-up handle (:meth:`Wakeups.watch`) *before* it reads the store, so a change
committed between the read and the wait still wakes it. The writer wakes this process's readers
itself once its statement is committed. On PostgreSQL the same statement also sends ``NOTIFY``
(delivered at commit), and every store listens on a connection of its own, so a reader in another
process, or on another connection, is woken within milliseconds too.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import structlog
from sqlalchemy.engine import URL

__all__ = ["CHANNEL", "Wakeups"]

log = structlog.get_logger(__name__)

CHANNEL = "agent_runs"
"""The PostgreSQL notification channel; a notification's payload is the run id."""


class Wakeups:
    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

    def watch(self, run_id: str) -> asyncio.Event:
        """Set at the next change of the run after this call."""
        return self._events.setdefault(run_id, asyncio.Event())

    def wake(self, run_id: str) -> None:
        event = self._events.pop(run_id, None)
        if event is not None:
            event.set()

    @asynccontextmanager
    async def listening(self, url: URL) -> AsyncIterator[None]:
        """Wake readers on the notifications of PostgreSQL at ``url`` while the block runs."""
        conn = await asyncpg.connect(url.set(drivername="postgresql").render_as_string(hide_password=False))

        def on_notify(_conn: Any, _pid: int, _channel: str, run_id: str) -> None:
            self.wake(run_id)

        def on_lost(_conn: Any) -> None:
            # Readers still wake for this process's own writes, and every wait is bounded.
            log.error("store_listener_lost", channel=CHANNEL)

        conn.add_termination_listener(on_lost)
        await conn.add_listener(CHANNEL, on_notify)
        try:
            yield
        finally:
            conn.remove_termination_listener(on_lost)
            await conn.close()
