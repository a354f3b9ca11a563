"""What every run is made of, whoever starts it (``/chat`` or the task manager).

:class:`StoreSink` records the run's events in its log; :class:`LazySandbox` gives the run a
sandbox on its first valid tool call and removes it when the run ends whatever happened, so a run
whose model answers straight away never starts a container.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from types import TracebackType
from typing import Self

import structlog

from runtime.engine.events import FINAL_EVENT_TYPES, Event, ToolCall
from runtime.store import Store
from runtime.telemetry import Telemetry, no_telemetry
from sandbox.base import Sandbox

__all__ = ["LazySandbox", "StoreSink"]

log = structlog.get_logger(__name__)


class StoreSink:
    """An :class:`~runtime.engine.loop.EventSink` that appends to a run's event log, in order, in batches.

    ``emit`` queues the event and returns; a background writer stores what is queued, all of it
    in one transaction, while the loop goes on (each awaited write cost the loop ~0.5 ms, a
    dozen per ``/chat`` run). Emitting a tool call or a final event waits until everything emitted
    so far is stored: the log holds every action before it is taken and the whole run before the
    run is said to be over. A crash can lose the last few milliseconds of text or output, never
    a tool call that ran. ``async with`` waits for the writer at the end; a batch the store
    refused is logged and raised by the next waiting ``emit`` or by :meth:`flush`. Each batch's
    write time goes to ``telemetry``.
    """

    def __init__(self, store: Store, run_id: str, telemetry: Telemetry | None = None) -> None:
        self._store = store
        self._run_id = run_id
        self._telemetry = telemetry or no_telemetry()
        self._queued: list[Event] = []
        self._writer: asyncio.Task[None] | None = None
        self._failure: BaseException | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            await self.flush()
        elif self._writer is not None:
            await asyncio.shield(self._writer)  # the run failed already: let its events land, quietly

    async def emit(self, event: Event) -> None:
        self._queued.append(event)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name=f"events-{self._run_id}")
        if isinstance(event, ToolCall) or event.type in FINAL_EVENT_TYPES:
            await self.flush()

    async def flush(self) -> None:
        """Wait until every event emitted so far is stored."""
        if self._writer is not None:
            await asyncio.shield(self._writer)  # a canceled run still gets its events written
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure

    async def _write(self) -> None:
        while self._queued:
            batch, self._queued = self._queued, []
            started = time.monotonic()
            try:
                await self._store.append_batch(self._run_id, batch)
            except Exception as e:
                log.exception("events_not_stored", count=len(batch))
                self._failure = e
                return
            self._telemetry.stored(len(batch), time.monotonic() - started)


class LazySandbox:
    """Opens the sandbox on first use; the ``async with`` block owns (and releases) it.

    ``open_sandbox`` is any async context manager factory: an ephemeral sandbox of a factory, or
    a lease on a workspace's long-lived one. :meth:`prefetch` starts opening it in the
    background: the loop does so as soon as the model's stream names a tool, so a pool claim or
    a cold start overlaps the rest of the stream (the arguments of a real model's call take
    hundreds of ms to arrive).
    """

    def __init__(self, open_sandbox: Callable[[], AbstractAsyncContextManager[Sandbox]]) -> None:
        self._open = open_sandbox
        self._stack = AsyncExitStack()
        self._opening: asyncio.Task[Sandbox] | None = None

    async def __aenter__(self) -> LazySandbox:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        opening = self._opening
        if opening is not None:
            opening.cancel()  # a no-op once it is open; a half-open sandbox cleans itself up
            await asyncio.wait([opening])
            if not opening.cancelled():
                opening.exception()  # retrieved: a failure to open was the tool call's to report
        await self._stack.aclose()

    def prefetch(self) -> None:
        if self._opening is None:
            self._opening = asyncio.create_task(self._stack.enter_async_context(self._open()))

    async def __call__(self) -> Sandbox:
        self.prefetch()
        assert self._opening is not None
        return await asyncio.shield(self._opening)  # a canceled call leaves the opening to __aexit__
