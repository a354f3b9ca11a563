"""A tool call's output as ``tool_output`` events, while the call runs.

The sandbox hands over raw chunks as they come (:data:`sandbox.base.OnOutput`). Here they are
decoded incrementally (a character split across two chunks is joined, not replaced), coalesced
(a command printing a byte at a time must not write an event per byte: text is held for
``flush_delay`` seconds or until ``flush_bytes`` are waiting, and a switch of stream flushes), and
bounded: per stream at most the head part of the head+tail cap is emitted. What comes after it is
only counted, by the call's result, which also carries the tail.
"""

from __future__ import annotations

import asyncio
import codecs
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Literal, cast

from runtime.engine.events import Event, ToolOutput

__all__ = ["ToolOutputStream"]

Stream = Literal["stdout", "stderr"]


class ToolOutputStream:
    """Turns one call's output chunks into ``tool_output`` events; ``async with`` flushes the rest.

    ``limit_bytes`` is the per-stream head+tail cap (``AGENT_OUTPUT_LIMIT``); its head part,
    ``limit_bytes // 2``, is what each stream may emit. On an exception nothing more is emitted.
    """

    def __init__(
        self,
        emit: Callable[[Event], Awaitable[None]],
        iteration: int,
        tool_call_id: str,
        limit_bytes: int,
        *,
        flush_delay: float = 0.05,
        flush_bytes: int = 4096,
    ) -> None:
        self._emit = emit
        self._iteration = iteration
        self._tool_call_id = tool_call_id
        self._flush_delay = flush_delay
        self._flush_bytes = flush_bytes
        head = limit_bytes // 2
        self._budget: dict[Stream, int] = {"stdout": head, "stderr": head}
        self._decoders = {
            stream: codecs.getincrementaldecoder("utf-8")(errors="replace") for stream in self._budget
        }
        self._pending_stream: Stream = "stdout"
        self._pending: list[str] = []
        self._pending_bytes = 0
        self._timer: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> ToolOutputStream:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        timer, self._timer = self._timer, None
        if timer is not None and not timer.done():
            timer.cancel()
        if timer is not None:
            await asyncio.wait([timer])
            if exc_type is None and not timer.cancelled() and timer.exception() is not None:
                raise cast(BaseException, timer.exception())
        if exc_type is not None:
            return
        for stream, decoder in self._decoders.items():
            # A stream cut at its budget drops the character split by the cut, as the result does.
            if self._budget[stream] > 0:
                await self._add(stream, decoder.decode(b"", final=True), 0)
        await self._flush()

    async def write(self, stream: str, data: bytes) -> None:
        """The :data:`~sandbox.base.OnOutput` callback."""
        if stream not in self._budget:
            return
        name = cast(Stream, stream)
        budget = self._budget[name]
        if budget <= 0:
            return
        data = data[:budget]
        self._budget[name] = budget - len(data)
        await self._add(name, self._decoders[name].decode(data), len(data))

    async def _add(self, stream: Stream, text: str, size: int) -> None:
        if not text:
            return
        if stream != self._pending_stream:
            await self._flush()
            self._pending_stream = stream
        self._pending.append(text)
        self._pending_bytes += size
        if self._pending_bytes >= self._flush_bytes:
            await self._flush()
        elif self._timer is None or self._timer.done():
            self._timer = asyncio.create_task(self._flush_later())

    async def _flush_later(self) -> None:
        await asyncio.sleep(self._flush_delay)
        await self._flush()

    async def _flush(self) -> None:
        async with self._lock:
            if not self._pending:
                return
            content = "".join(self._pending)
            self._pending.clear()
            self._pending_bytes = 0
            await self._emit(
                ToolOutput(
                    iteration=self._iteration,
                    tool_call_id=self._tool_call_id,
                    stream=self._pending_stream,
                    content=content,
                )
            )
