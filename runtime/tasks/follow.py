"""Following a task's event log: the one way every surface reads a task as it runs.

A poll reads one page (:func:`read_page`); SSE, A2A streams and MCP's bounded wait read page
after page until the final event (:func:`follow`). Both wait through
:meth:`~runtime.tasks.manager.TaskManager.events`, which wakes as soon as an event is stored.
:func:`find_task` is the guard every surface applies first: a ``/chat`` run is not a task.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from pydantic import BaseModel, Field

from runtime.engine.events import FINAL_EVENT_TYPES, RunCanceled, RunCompleted, RunFailed
from runtime.errors import NotFoundError
from runtime.store import RunRecord, Store, StoredEvent
from runtime.tasks.manager import TaskManager

__all__ = [
    "HEARTBEAT",
    "PAGE_SIZE",
    "EventPage",
    "FinalEvent",
    "Heartbeat",
    "final_event",
    "find_task",
    "follow",
    "read_page",
]

PAGE_SIZE = 1000
"""Most events read from the store at once."""
HEARTBEAT = 15.0
"""Seconds without an event after which :func:`follow` yields a :class:`Heartbeat`."""


@dataclass(frozen=True)
class Heartbeat:
    """Yielded by :func:`follow` when nothing came for a while and the task still runs: a stream's
    cue to send a keep-alive."""


_HEARTBEAT = Heartbeat()


class EventPage(BaseModel):
    events: list[StoredEvent]
    has_more: bool = Field(description="More events are already stored past this page.")
    next_offset: int = Field(description="Where the next page starts.")


async def find_task(store: Store, owner: str, task_id: str) -> RunRecord:
    """The owner's task; another user's run, a ``/chat`` run or no run is a :class:`NotFoundError`."""
    record = await store.get_run(task_id, owner)
    if record.kind != "task":
        raise NotFoundError(f"task {task_id} not found")
    return record


async def read_page(
    tasks: TaskManager, task_id: str, offset: int, *, limit: int = PAGE_SIZE, wait: float = 0.0
) -> EventPage:
    """Up to ``limit`` events from ``offset``; with ``wait``, held until one arrives or the task ends."""
    events = await tasks.events(task_id, offset, limit + 1, wait)
    page = events[:limit]
    return EventPage(
        events=page, has_more=len(events) > limit, next_offset=page[-1].offset + 1 if page else offset
    )


async def follow(
    tasks: TaskManager,
    task_id: str,
    offset: int = 0,
    *,
    within: float | None = None,
    heartbeat: float = HEARTBEAT,
) -> AsyncIterator[StoredEvent | Heartbeat]:
    """The task's events from ``offset``, in order, until its final event (yielded last).

    A log without a final event (a task that crashed) ends once the task is no longer active and
    everything is read. While the task runs and nothing arrives for ``heartbeat`` seconds, this
    yields a :class:`Heartbeat`. With ``within``, it stops after that many seconds even if the task
    has not ended (a bounded wait; 0 reads what is stored and stops). The final event is yielded
    once the task has let go of its slot, so a client that answers it with its next message at
    once is not refused as busy.
    """
    deadline = None if within is None else time.monotonic() + within
    while True:
        active = await tasks.running(task_id)
        hold = heartbeat if active else 0.0
        expired = False
        if deadline is not None:
            remaining = deadline - time.monotonic()
            expired = remaining <= 0
            hold = min(hold, max(0.0, remaining))
        page = await read_page(tasks, task_id, offset, wait=hold)
        if not page.events:
            if not active or expired:
                return  # read to the end, and nothing more can come (or the caller's wait is over)
            yield _HEARTBEAT
            continue
        offset = page.next_offset
        for stored in page.events:
            if stored.event.type in FINAL_EVENT_TYPES:
                await tasks.wait_finished(task_id)
                yield stored
                return
            yield stored


FinalEvent = RunCompleted | RunFailed | RunCanceled


async def final_event(tasks: TaskManager, task_id: str, within: float | None) -> FinalEvent | None:
    """The task's final event, following its log for up to ``within`` seconds (``None``: until it ends).

    None when the log has no final event by then, also when no task has this id.
    """
    final = None
    async for item in follow(tasks, task_id, within=within):
        if isinstance(item, StoredEvent) and isinstance(item.event, FinalEvent):
            final = item.event
    return final
