"""What following a task over SSE with resume needs, shared by the sync and async clients.

The events endpoint closes after the task's final event; any other end (a dropped connection, a
proxy's idle timeout, a worker restart) is resumed with ``Last-Event-ID`` set to the last offset
received, so no event is missed or repeated. A stream that closes cleanly without the final
event is checked with one poll: a task that has ended (the stream started past its last event)
ends the follow instead of reconnecting forever.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from httpx_sse import ServerSentEvent

from client._errors import ServerError, TransportError
from client._models import TaskEvent

__all__ = ["RETRYABLE", "STREAM_TIMEOUT", "Cursor", "EndedEarly", "decode"]

# Reads may wait for the next event as long as a task thinks: the server sends a comment every
# 15 s, so 60 s without a byte means the connection is gone.
STREAM_TIMEOUT = httpx.Timeout(30.0, read=60.0)


class EndedEarly(Exception):
    """The stream closed cleanly before the final event, and a poll found nothing new either."""


RETRYABLE = (httpx.TransportError, ServerError, TransportError, EndedEarly)


def decode(sse: ServerSentEvent) -> TaskEvent:
    return TaskEvent.model_validate_json(sse.data)


@dataclass
class Cursor:
    """Where a follow is in the task's log, and how many reconnects in a row found nothing new."""

    next_offset: int
    max_reconnects: int
    failures: int = 0

    def headers(self) -> dict[str, str]:
        return {"Last-Event-ID": str(self.next_offset - 1)}

    def take(self, event: TaskEvent) -> bool:
        """Whether ``event`` is new (a repeat after a resume is skipped); if so, move past it."""
        if event.offset < self.next_offset:
            return False
        self.next_offset = event.offset + 1
        self.failures = 0
        return True

    def failed(self, error: BaseException) -> float:
        """Count a broken stream; the seconds to wait before the next try, or raise when out of tries."""
        self.failures += 1
        if self.failures > self.max_reconnects:
            raise TransportError(
                f"lost the task's event stream {self.failures} times in a row: {error}"
            ) from error
        return min(0.25 * 2 ** (self.failures - 1), 5.0)
