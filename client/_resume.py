"""What following a task over SSE with resume needs, shared by the sync and async clients.

The events endpoint closes after the task's final event; any other end (a dropped connection, a
proxy's idle timeout, a worker restart) is resumed with ``Last-Event-ID`` set to the last offset
received, so no event is missed or repeated. A stream that closes cleanly without the final
event is checked with one poll: a task that has ended (the stream started past its last event)
ends the follow instead of reconnecting forever.
"""

from __future__ import annotations

from urllib.parse import quote

import httpx
from httpx_sse import ServerSentEvent

from client._calls import Call, Calls
from client._errors import ServerError, TransportError
from client._models import TaskEvent, TaskState

__all__ = ["RETRYABLE", "STREAM_TIMEOUT", "EndedEarly", "Follow", "decode"]

# Reads may wait for the next event as long as a task thinks: the server sends a comment every
# 15 s, so 60 s without a byte means the connection is gone.
STREAM_TIMEOUT = httpx.Timeout(30.0, read=60.0)


class EndedEarly(Exception):
    """The stream closed cleanly before the final event, and a poll found nothing new either."""


RETRYABLE = (httpx.TransportError, ServerError, TransportError, EndedEarly)


def decode(sse: ServerSentEvent) -> TaskEvent:
    return TaskEvent.model_validate_json(sse.data)


class Follow:
    """Where a follow is in the task's log, and what to do next: the clients do only the I/O.

    Each client loops: open the stream at :attr:`path` with :meth:`headers`, hand each event to
    :meth:`received`; when the stream closes before the end, send :meth:`poll` and hand its answer
    to :meth:`polled`; on a :data:`RETRYABLE` error, sleep :meth:`failed` seconds; until :attr:`ended`.
    """

    def __init__(self, task_id: str, from_offset: int, max_reconnects: int) -> None:
        self.task_id = task_id
        self.path = f"/api/v1/tasks/{quote(task_id, safe='')}/events"
        self.next_offset = from_offset
        self.max_reconnects = max_reconnects
        self.failures = 0  # reconnects in a row that found nothing new
        self.ended = False

    def headers(self) -> dict[str, str]:
        return {"Last-Event-ID": str(self.next_offset - 1)}

    def received(self, events: list[TaskEvent]) -> list[TaskEvent]:
        """The new ones of ``events`` (a repeat after a resume is skipped), up to the final one."""
        new: list[TaskEvent] = []
        for event in events:
            if self.ended or event.offset < self.next_offset:
                continue
            self.next_offset = event.offset + 1
            self.failures = 0
            new.append(event)
            self.ended = event.is_final
        return new

    def poll(self) -> Call[TaskState]:
        """The stream closed before the final event: a poll says whether the task has ended meanwhile."""
        return Calls.get_task(self.task_id, self.next_offset, 0.0, None)

    def polled(self, state: TaskState) -> list[TaskEvent]:
        """The poll's new events; :class:`EndedEarly` when it found nothing at all (reconnect)."""
        new = self.received(state.events)
        if state.is_over and not state.has_more:
            self.ended = True
        if not self.ended and not state.events:
            raise EndedEarly(f"the event stream of {self.task_id} closed before its final event")
        return new

    def failed(self, error: BaseException) -> float:
        """Count a broken stream; the seconds to wait before the next try, or raise when out of tries."""
        self.failures += 1
        if self.failures > self.max_reconnects:
            raise TransportError(
                f"lost the task's event stream {self.failures} times in a row: {error}"
            ) from error
        return min(0.25 * 2 ** (self.failures - 1), 5.0)
