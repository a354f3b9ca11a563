"""The worker's end of the executor's control stream, over a socket pair: no Docker engine.

The test plays the executor and the engine between them: it reads the request lines the channel
writes, and writes event lines wrapped in the engine's attach frames (an 8-byte header: stream id,
3 zero bytes, big-endian length), split and joined in the ways a real stream may deliver them.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import struct
from collections.abc import AsyncIterator
from typing import Any

import pytest

from sandbox.docker_engine.channel import Channel
from sandbox.docker_engine.wire import (
    CancelRequest,
    ExitEvent,
    HelloEvent,
    HelloRequest,
    OutputEvent,
    Request,
    RunRequest,
)
from sandbox.errors import SandboxExecError

STDOUT, STDERR = 1, 2
# Waits that end at once when the code works get this bound, so a regression fails, not hangs.
GUARD = 10.0


def frame(data: bytes, stream: int = STDOUT) -> bytes:
    return struct.pack(">BxxxL", stream, len(data)) + data


def line(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode() + b"\n"


def output(request_id: str, data: bytes) -> dict[str, Any]:
    return {"kind": "output", "id": request_id, "stream": "stdout", "data": base64.b64encode(data).decode()}


def exit_event(request_id: str, exit_code: int = 0) -> dict[str, Any]:
    return {
        "kind": "exit",
        "id": request_id,
        "exit_code": exit_code,
        "duration": 0.5,
        "timed_out": False,
        "canceled": False,
    }


class Executor:
    """The far end: the executor's stdout (framed by the engine) and its stdin."""

    def __init__(self, stdout: socket.socket, stdin: socket.socket) -> None:
        self.stdout = stdout
        self._stdin = stdin
        self._buffer = b""

    async def write(self, *pieces: bytes) -> None:
        for piece in pieces:  # separate sends: the channel may see them as separate reads
            await asyncio.to_thread(self.stdout.sendall, piece)

    async def emit(self, *events: dict[str, Any], stream: int = STDOUT) -> None:
        await self.write(frame(b"".join(line(e) for e in events), stream))

    async def request(self) -> dict[str, Any]:
        while b"\n" not in self._buffer:
            chunk = await asyncio.wait_for(asyncio.to_thread(self._stdin.recv, 65536), GUARD)
            assert chunk, "the channel closed its writing end"
            self._buffer += chunk
        first, self._buffer = self._buffer.split(b"\n", 1)
        parsed: dict[str, Any] = json.loads(first)
        return parsed


@pytest.fixture
async def pair() -> AsyncIterator[tuple[Channel, Executor]]:
    worker_reads, executor_stdout = socket.socketpair()
    worker_writes, executor_stdin = socket.socketpair()
    channel = Channel.over(worker_reads, worker_writes)
    try:
        yield channel, Executor(executor_stdout, executor_stdin)
    finally:
        await channel.aclose()
        executor_stdout.close()
        executor_stdin.close()


async def next_event(events: asyncio.Queue[Any]) -> Any:
    return await asyncio.wait_for(events.get(), GUARD)


async def test_requests_leave_in_order_as_json_lines(pair: tuple[Channel, Executor]) -> None:
    channel, executor = pair
    requests: list[Request] = [
        HelloRequest(id="1"),
        RunRequest(id="2", argv=["bash", "-c", "echo hi"], timeout=5),
        CancelRequest(id="2"),
    ]
    for request in requests:
        channel.send(request)
    assert [await executor.request() for _ in requests] == [r.model_dump() for r in requests]


async def test_ask_gets_the_event_answering_its_id_and_late_events_are_dropped(
    pair: tuple[Channel, Executor],
) -> None:
    channel, executor = pair
    request_id = channel.next_id()
    answer = asyncio.create_task(channel.ask(HelloRequest(id=request_id), GUARD))
    assert await executor.request() == {"kind": "hello", "id": request_id}
    # An answer to a call that is over (nobody subscribed) must not reach this one.
    await executor.emit(exit_event("999"), {"kind": "hello", "id": request_id, "version": 1})
    assert await answer == HelloEvent(kind="hello", id=request_id, version=1)
    assert channel.closed is None


async def test_event_lines_split_across_frames_and_writes_are_reassembled(
    pair: tuple[Channel, Executor],
) -> None:
    channel, executor = pair
    events = channel.subscribe("7")
    stream = line(output("7", b"hello ")) + line(output("7", b"world\n")) + line(exit_event("7", 3))
    # Frames cut through the middle of lines; writes cut through the middle of frame headers.
    framed = frame(stream[:10]) + frame(stream[10:90]) + frame(stream[90:])
    await executor.write(*(framed[i : i + 7] for i in range(0, len(framed), 7)))
    received = [await next_event(events) for _ in range(3)]
    assert [e.data for e in received[:2] if isinstance(e, OutputEvent)] == [b"hello ", b"world\n"]
    assert received[2] == ExitEvent(**exit_event("7", 3))
    for event in received:
        channel.consumed(event)


async def test_stderr_is_not_events_but_the_last_words_once_the_stream_ends(
    pair: tuple[Channel, Executor],
) -> None:
    channel, executor = pair
    events = channel.subscribe("1")
    await executor.emit(output("1", b"partial"))
    await executor.write(frame(b"Traceback: executor crashed\n", STDERR))
    executor.stdout.shutdown(socket.SHUT_WR)  # the container died
    first = await next_event(events)
    assert isinstance(first, OutputEvent) and first.data == b"partial"
    channel.consumed(first)
    assert await next_event(events) is None  # the stream is gone
    assert channel.closed == "its output stream ended: the executor or its container died"
    with pytest.raises(SandboxExecError, match=r"its last words: Traceback: executor crashed$"):
        channel.send(HelloRequest(id="2"))
    with pytest.raises(SandboxExecError, match="is gone"):
        await channel.ask(HelloRequest(id="3"), GUARD)


@pytest.mark.parametrize(
    "payload",
    [
        b"not json\n",
        line({"kind": "exit", "id": "1"}),
        line({"kind": "launch", "id": "1"}),
        b"x" * (1 << 20 | 1),
    ],
    ids=["not-json", "missing-fields", "unknown-kind", "endless-line"],
)
async def test_anything_but_an_event_closes_the_channel(
    pair: tuple[Channel, Executor], payload: bytes
) -> None:
    channel, executor = pair
    events = channel.subscribe("1")
    await executor.write(frame(payload))
    assert await next_event(events) is None
    assert channel.closed is not None and channel.closed.startswith("it sent something that is not an event")


async def test_an_unanswered_ask_times_out_and_forgets_its_request(pair: tuple[Channel, Executor]) -> None:
    channel, executor = pair
    with pytest.raises(SandboxExecError, match=r"did not answer a hello request within 0\.05 s"):
        await channel.ask(HelloRequest(id="5"), 0.05)
    await executor.request()
    # The answer arrives too late: dropped, and the channel still serves the next call.
    late = {"kind": "hello", "id": "5", "version": 1}
    answer = asyncio.create_task(channel.ask(HelloRequest(id="6"), GUARD))
    await executor.request()
    await executor.emit(late, {"kind": "hello", "id": "6", "version": 1})
    assert (await answer).id == "6"


async def test_closing_wakes_every_waiting_call(pair: tuple[Channel, Executor]) -> None:
    channel, _ = pair
    events = channel.subscribe("1")
    answer = asyncio.create_task(channel.ask(HelloRequest(id="2"), GUARD))
    await asyncio.sleep(0)  # the ask has subscribed and is waiting
    await channel.aclose()
    assert await next_event(events) is None
    with pytest.raises(SandboxExecError, match=r"is gone \(closed by the worker\)"):
        await answer
    assert channel.closed == "closed by the worker"
