"""Waking the readers of a run when it changes, and carrying cancel requests between workers.

A reader takes its wake-up handle (:meth:`Wakeups.watch`) *before* it reads the store, so a change
committed between the read and the wait still wakes it. The writer wakes this process's readers
itself once its statement is committed. On PostgreSQL the same statement also sends ``NOTIFY``
(delivered at commit), and every store listens on a connection of its own, so a reader in another
process, or on another connection, is woken within milliseconds too.

The listening connection is reconnected when it drops; once it is back every reader is woken to
read again, since notifications sent meanwhile were lost. Cancel requests travel on a channel of
their own (:data:`CANCEL_CHANNEL`): the worker running the task cancels it, the others ignore it.
A task stored in the queue (pending, no worker) is announced on :data:`QUEUE_CHANNEL`: every
worker's dispatcher wakes and the one with a free slot that claims it first runs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import structlog
from sqlalchemy.engine import URL

__all__ = [
    "CANCEL_CHANNEL",
    "CHANNEL",
    "QUEUE_CHANNEL",
    "CancelHandler",
    "QueueHandler",
    "Wakeups",
    "cancel_payload",
]

log = structlog.get_logger(__name__)

CHANNEL = "agent_runs"
"""The PostgreSQL notification channel; a notification's payload is the run id."""
CANCEL_CHANNEL = "agent_cancels"
"""Cancel requests; a notification's payload is :func:`cancel_payload`'s JSON."""

QUEUE_CHANNEL = "agent_queue"
"""A task was queued; the payload is its run id (a wake-up only: the queue is the runs table)."""

CancelHandler = Callable[[str, str], None]
"""Called with a run id and a reason for each cancel request."""
QueueHandler = Callable[[], None]
"""Called when a task may be waiting in the queue."""

_RECONNECT_DELAYS = (0.2, 0.5, 1.0, 2.0, 5.0)


def cancel_payload(run_id: str, reason: str) -> str:
    # NOTIFY payloads are at most 8,000 bytes; a run id is short and reasons are our own sentences.
    return json.dumps({"run_id": run_id, "reason": reason[:1000]})


class Wakeups:
    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}
        self.on_cancel: CancelHandler | None = None
        self.on_queued: list[QueueHandler] = []  # every task manager of the process on this store

    def watch(self, run_id: str) -> asyncio.Event:
        """Set at the next change of the run after this call."""
        return self._events.setdefault(run_id, asyncio.Event())

    def wake(self, run_id: str) -> None:
        event = self._events.pop(run_id, None)
        if event is not None:
            event.set()

    def wake_all(self) -> None:
        events, self._events = self._events, {}
        for event in events.values():
            event.set()

    def cancel_requested(self, run_id: str, reason: str) -> None:
        if self.on_cancel is not None:
            self.on_cancel(run_id, reason)

    def queued(self) -> None:
        for handler in self.on_queued:
            handler()

    @asynccontextmanager
    async def listening(self, url: URL) -> AsyncIterator[None]:
        """Wake readers on the notifications of PostgreSQL at ``url`` while the block runs.

        The first connection must succeed (a wrong URL fails start-up); a later drop is retried
        in the background until the block ends.
        """
        dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        current = [await self._listen(dsn)]
        keeper = asyncio.create_task(self._reconnect(dsn, current), name="store-listener")
        try:
            yield
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
            with contextlib.suppress(Exception):
                await current[0][0].close(timeout=5)

    async def _listen(self, dsn: str) -> tuple[asyncpg.Connection, asyncio.Event]:
        """A listening connection, and an event set when it closes."""
        conn = await asyncpg.connect(dsn)
        lost = asyncio.Event()

        def on_notify(_conn: Any, _pid: int, channel: str, payload: str) -> None:
            if channel == CHANNEL:
                self.wake(payload)
                return
            if channel == QUEUE_CHANNEL:
                self.queued()
                return
            try:
                request = json.loads(payload)
                self.cancel_requested(str(request["run_id"]), str(request["reason"]))
            except (ValueError, KeyError, TypeError):
                log.warning("bad_cancel_request", payload=payload[:200])

        def on_lost(_conn: Any) -> None:
            lost.set()

        conn.add_termination_listener(on_lost)
        await conn.add_listener(CHANNEL, on_notify)
        await conn.add_listener(CANCEL_CHANNEL, on_notify)
        await conn.add_listener(QUEUE_CHANNEL, on_notify)
        return conn, lost

    async def _reconnect(self, dsn: str, current: list[tuple[asyncpg.Connection, asyncio.Event]]) -> None:
        while True:
            conn, lost = current[0]
            await lost.wait()
            log.error("store_listener_lost", channel=CHANNEL)
            conn.terminate()
            attempt = 0
            while True:
                await asyncio.sleep(_RECONNECT_DELAYS[min(attempt, len(_RECONNECT_DELAYS) - 1)])
                try:
                    current[0] = await self._listen(dsn)
                    break
                except (OSError, asyncpg.PostgresError) as e:
                    attempt += 1
                    log.warning("store_listener_reconnect_failed", attempt=attempt, error=repr(e))
            log.info("store_listener_back", attempts=attempt + 1)
            self.wake_all()  # notifications sent while it was away are lost: every reader reads again
            self.queued()
