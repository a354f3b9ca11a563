"""The worker's end of a sandbox's control stream: requests out, events in, over the Engine API.

The executor is the container's main process; the worker reaches its stdin and stdout by
attaching to the container (no ``docker exec``, no socket of ours, no network: it works the same
with a remote engine). Two attach connections, one per direction, each served by a thread of its
own: a TLS connection to a remote engine must not be read and written by two threads at once.
With no TTY the engine multiplexes stdout and stderr into frames (an 8-byte header: stream id,
3 zero bytes, big-endian length); stdout carries the event lines, stderr only the executor's own
complaints, of which the tail is kept for error messages.

Output events are bounded in flight: the reader thread waits while more than ``_BUDGET`` bytes of
output sit with the event loop unconsumed, so a slow ``on_output`` slows the command (its pipe
fills) instead of filling the worker's memory.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import queue
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from typing import Any

import docker
import docker.utils.socket
from pydantic import ValidationError

from sandbox.docker_engine.wire import Event, OutputEvent, Request, decode_event, encode_request
from sandbox.errors import SandboxExecError

__all__ = ["Channel"]

_CHUNK = 65536
_MAX_LINE = 1 << 20  # an output event of a 64 KiB chunk is ~88 KB of base64
_BUDGET = 8 << 20
_STDERR_TAIL = 2000
_JOIN_TIMEOUT = 5.0


class Channel:
    """Requests to the executor and the events it answers with, routed by request id."""

    def __init__(self, reader: Any, writer: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._reader_sock = reader
        self._writer_sock = writer
        self._loop = loop
        self._ids = itertools.count(1)
        self._subscribers: dict[str, asyncio.Queue[Event | None]] = {}
        self._outbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._budget = _Budget(_BUDGET)
        self._stderr = bytearray()
        self._closing = False
        self.closed: str | None = None  # why the stream is gone, once it is
        self._threads = [
            threading.Thread(target=self._read_loop, name="sandbox-channel-reader", daemon=True),
            threading.Thread(target=self._write_loop, name="sandbox-channel-writer", daemon=True),
        ]

    @classmethod
    async def attach(cls, api: docker.APIClient, container_id: str) -> Channel:
        """Attach to a created (not yet started, so nothing is missed) container."""
        reader = await asyncio.to_thread(
            api.attach_socket, container_id, {"stdin": 0, "stdout": 1, "stderr": 1, "stream": 1}
        )
        try:
            writer = await asyncio.to_thread(
                api.attach_socket, container_id, {"stdin": 1, "stdout": 0, "stderr": 0, "stream": 1}
            )
        except BaseException:
            _close(reader)
            raise
        return cls.over(reader, writer)

    @classmethod
    def over(cls, reader: Any, writer: Any) -> Channel:
        """A channel over two connected streams, its threads started: the engine's attach sockets,
        or any socket pair (the unit tests play the executor's end of one)."""
        channel = cls(reader, writer, asyncio.get_running_loop())
        for thread in channel._threads:
            thread.start()
        return channel

    def next_id(self) -> str:
        return str(next(self._ids))

    def send(self, request: Request) -> None:
        """Queue ``request`` for the executor; requests leave in the order they were sent."""
        if self.closed is not None:
            raise self.failure()
        self._outbox.put(encode_request(request))

    def subscribe(self, request_id: str) -> asyncio.Queue[Event | None]:
        """The events answering ``request_id``; ``None`` in the queue means the stream is gone."""
        events: asyncio.Queue[Event | None] = asyncio.Queue()
        if self.closed is not None:
            events.put_nowait(None)
        self._subscribers[request_id] = events
        return events

    def unsubscribe(self, request_id: str) -> None:
        events = self._subscribers.pop(request_id, None)
        while events is not None and not events.empty():
            self.consumed(events.get_nowait())

    def consumed(self, event: Event | None) -> None:
        """Give back the budget an output event held; call once per event taken from a queue."""
        if isinstance(event, OutputEvent):
            self._budget.give(len(event.data))

    async def ask(self, request: Request, timeout: float) -> Event:
        """Send a request answered by one event; raises :class:`SandboxExecError` on no answer."""
        events = self.subscribe(request.id)
        try:
            self.send(request)
            try:
                event = await asyncio.wait_for(events.get(), timeout)
            except TimeoutError:
                raise SandboxExecError(
                    f"the sandbox executor did not answer a {request.kind} request within {timeout:g} s"
                ) from None
            if event is None:
                raise self.failure()
            return event
        finally:
            self.unsubscribe(request.id)

    def failure(self) -> SandboxExecError:
        """The error for a call that needs a stream which is gone."""
        stderr = self._stderr.decode("utf-8", errors="replace").strip()
        detail = f"; its last words: {stderr}" if stderr else ""
        return SandboxExecError(f"the sandbox executor is gone ({self.closed}){detail}")

    async def aclose(self) -> None:
        """Shut both connections and wait for their threads; pending requests see the stream gone."""
        self._closing = True
        for sock in (self._reader_sock, self._writer_sock):
            _shutdown(sock)
        self._outbox.put(None)
        self._budget.close()
        await asyncio.to_thread(self._join)
        for sock in (self._reader_sock, self._writer_sock):
            _close(sock)
        self._on_closed("closed by the worker")

    def _join(self) -> None:
        for thread in self._threads:
            thread.join(_JOIN_TIMEOUT)

    # --- threads --------------------------------------------------------------------------------

    def _read_loop(self) -> None:
        reason = "its output stream ended: the executor or its container died"
        try:
            lines = bytearray()
            for stream, chunk in _frames(_reader_for(self._reader_sock)):
                if stream == docker.utils.socket.STDERR:
                    self._stderr = (self._stderr + chunk)[-_STDERR_TAIL:]
                    continue
                start = len(lines)
                lines += chunk
                while (end := lines.find(b"\n", start)) >= 0:
                    self._deliver(decode_event(bytes(lines[:end])))
                    del lines[: end + 1]
                    start = 0
                if len(lines) > _MAX_LINE:
                    raise ValueError(f"an event line longer than {_MAX_LINE} bytes")
        except (ValidationError, ValueError) as e:
            reason = f"it sent something that is not an event: {e}"
        except Exception as e:  # the thread must always report the end, or calls would hang
            reason = f"reading its stream failed: {e}"
        self._post(self._on_closed, "closed by the worker" if self._closing else reason)

    def _deliver(self, event: Event) -> None:
        if isinstance(event, OutputEvent):
            self._budget.take(len(event.data))
        self._post(self._dispatch, event)

    def _write_loop(self) -> None:
        raw = getattr(self._writer_sock, "_sock", self._writer_sock)
        try:
            while (data := self._outbox.get()) is not None:
                raw.sendall(data)
        except Exception as e:
            self._post(self._on_closed, "closed by the worker" if self._closing else f"writing failed: {e}")

    def _post(self, callback: Callable[..., None], *args: Any) -> None:
        try:
            self._loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:
            pass  # the loop is closed: nobody is waiting any more

    # --- event loop side ------------------------------------------------------------------------

    def _dispatch(self, event: Event) -> None:
        events = self._subscribers.get(event.id) if event.id is not None else None
        if events is None:
            self.consumed(event)  # a late event of a call that is over
            return
        events.put_nowait(event)

    def _on_closed(self, reason: str) -> None:
        if self.closed is not None:
            return
        self.closed = reason
        self._outbox.put(None)
        self._budget.close()
        for events in self._subscribers.values():
            events.put_nowait(None)


class _Budget:
    """Bytes of output handed to the event loop and not consumed yet; the reader waits above it."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._used = 0
        self._open = True
        self._changed = threading.Condition()

    def take(self, n: int) -> None:
        with self._changed:
            while self._open and self._used and self._used + n > self._limit:
                self._changed.wait()
            self._used += n

    def give(self, n: int) -> None:
        with self._changed:
            self._used -= n
            self._changed.notify_all()

    def close(self) -> None:
        with self._changed:
            self._open = False
            self._changed.notify_all()


def _reader_for(sock: Any) -> Callable[[int], bytes]:
    """A ``read(n)`` over an attach stream that loses nothing the HTTP parser already buffered.

    docker-py hands out the raw socket under the response's buffered reader; if data arrived
    together with the upgrade headers, it sits in that buffer, so read through it. Over TLS (an
    engine on ``tcp://``) it hands out the TLS socket under that reader's socket file: reading
    through the reader there is also what keeps bytes the TLS layer already decrypted from waiting
    behind a ``poll`` that only sees the network.
    """
    raw = getattr(sock, "_sock", sock)
    if hasattr(raw, "settimeout"):
        raw.settimeout(None)  # the client's API timeout must not cut a quiet stream
    response = getattr(sock, "_response", None)
    buffered = getattr(getattr(getattr(response, "raw", None), "_fp", None), "fp", None)
    if isinstance(buffered, io.BufferedReader) and sock in (
        buffered.raw,
        getattr(buffered.raw, "_sock", None),
    ):
        return buffered.read1

    def read(n: int) -> bytes:
        data = None
        while data is None:  # None: interrupted before any data, try again
            data = docker.utils.socket.read(sock, n)
        return data or b""

    return read


def _frames(read: Callable[[int], bytes]) -> Iterator[tuple[int, bytes]]:
    while True:
        header = _read_exactly(read, 8)
        if header is None:
            return
        stream, size = struct.unpack(">BxxxL", header)
        while size > 0:
            chunk = read(min(size, _CHUNK))
            if not chunk:
                return
            size -= len(chunk)
            yield stream, chunk


def _read_exactly(read: Callable[[int], bytes], n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        chunk = read(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _shutdown(sock: Any) -> None:
    try:
        getattr(sock, "_sock", sock).shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed by the engine


def _close(sock: Any) -> None:
    response = getattr(sock, "_response", None)
    for closeable in (response, sock, getattr(sock, "_sock", None)):
        try:
            if closeable is not None:
                closeable.close()
        except Exception:  # closing is best effort; the next one may still release the fd
            pass
