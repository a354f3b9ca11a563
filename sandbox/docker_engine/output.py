"""Bounded capture of one output stream: the head and the tail survive, the middle is counted.

A command can print gigabytes; the model needs the start (what ran) and the end (how it ended),
and the worker must not hold more than a fixed budget per stream however much arrives.
"""

from __future__ import annotations

import codecs

from sandbox.base import StreamOutput

__all__ = ["BoundedOutput"]

_MAX_UTF8_CONTINUATION = 3  # a UTF-8 sequence is at most 4 bytes: 1 lead + 3 continuation


class BoundedOutput:
    """Keeps the first ``limit // 2`` and the last ``limit - limit // 2`` bytes fed to it."""

    def __init__(self, limit: int) -> None:
        if limit < 2:
            raise ValueError(f"limit must be at least 2 bytes, got {limit}")
        self._head_cap = limit // 2
        self._tail_cap = limit - self._head_cap
        self._head = bytearray()
        self._tail = bytearray()
        self.total_bytes = 0

    def feed(self, data: bytes) -> None:
        self.total_bytes += len(data)
        room = self._head_cap - len(self._head)
        if room > 0:
            self._head += data[:room]
            data = data[room:]
        if not data:
            return
        if len(data) >= self._tail_cap:
            self._tail[:] = data[-self._tail_cap :]
            return
        # Trim before appending so the buffer never grows past its cap, even for a moment.
        excess = len(self._tail) + len(data) - self._tail_cap
        if excess > 0:
            del self._tail[:excess]
        self._tail += data

    @property
    def truncated_bytes(self) -> int:
        return self.total_bytes - len(self._head) - len(self._tail)

    def result(self) -> StreamOutput:
        cut = self.truncated_bytes
        if not cut:
            text = bytes(self._head + self._tail).decode("utf-8", errors="replace")
        else:
            text = f"{_decode_head(self._head)}\n…[{cut} bytes truncated]…\n{_decode_tail(self._tail)}"
        return StreamOutput(text=text, total_bytes=self.total_bytes, truncated_bytes=cut)


def _decode_head(head: bytes | bytearray) -> str:
    # A character split by the cut is dropped rather than shown as U+FFFD: it was not invalid.
    return codecs.getincrementaldecoder("utf-8")(errors="replace").decode(bytes(head), final=False)


def _decode_tail(tail: bytes | bytearray) -> str:
    skip = 0
    while skip < min(len(tail), _MAX_UTF8_CONTINUATION) and tail[skip] & 0xC0 == 0x80:
        skip += 1
    return bytes(tail[skip:]).decode("utf-8", errors="replace")
