"""ToolOutputStream: incremental decoding, coalescing, the head cap, the final flush."""

from __future__ import annotations

import asyncio

import pytest

from runtime.engine.events import Event, ToolOutput
from runtime.engine.tool_output import ToolOutputStream


class Recorder:
    def __init__(self) -> None:
        self.events: list[ToolOutput] = []

    async def emit(self, event: Event) -> None:
        assert isinstance(event, ToolOutput)
        self.events.append(event)

    def text(self, stream: str) -> str:
        return "".join(e.content for e in self.events if e.stream == stream)


async def test_a_character_split_across_chunks_is_not_garbled() -> None:
    sink = Recorder()
    encoded = "héllo €uro\n".encode()
    async with ToolOutputStream(sink.emit, 1, "call_1", 1000) as output:
        for i in range(len(encoded)):
            await output.write("stdout", encoded[i : i + 1])

    assert sink.text("stdout") == "héllo €uro\n"
    assert "\ufffd" not in sink.text("stdout")
    assert all(e.iteration == 1 and e.tool_call_id == "call_1" for e in sink.events)


async def test_small_chunks_are_coalesced() -> None:
    sink = Recorder()
    async with ToolOutputStream(sink.emit, 1, "c", 100_000, flush_delay=10, flush_bytes=1024) as output:
        for _ in range(3000):
            await output.write("stdout", b"x")

    assert sink.text("stdout") == "x" * 3000
    assert len(sink.events) == 3  # two full batches and the rest at the end


async def test_waiting_output_is_flushed_after_the_delay() -> None:
    sink = Recorder()
    async with ToolOutputStream(sink.emit, 1, "c", 1000, flush_delay=0.01) as output:
        await output.write("stdout", b"building...\n")
        for _ in range(200):
            if sink.events:
                break
            await asyncio.sleep(0.01)
        assert sink.text("stdout") == "building...\n"  # before the call ended


async def test_a_switch_of_stream_keeps_the_order() -> None:
    sink = Recorder()
    async with ToolOutputStream(sink.emit, 2, "c", 1000, flush_delay=10) as output:
        await output.write("stdout", b"a")
        await output.write("stderr", b"b")
        await output.write("stdout", b"c")

    assert [(e.stream, e.content) for e in sink.events] == [("stdout", "a"), ("stderr", "b"), ("stdout", "c")]


async def test_only_the_head_part_of_the_cap_is_emitted_per_stream() -> None:
    sink = Recorder()
    async with ToolOutputStream(sink.emit, 1, "c", 1000) as output:
        for _ in range(100):
            await output.write("stdout", b"0123456789")
            await output.write("stderr", "é".encode() * 5)

    assert sink.text("stdout") == "0123456789" * 50  # 500 bytes: the head half of 1,000
    assert sink.text("stderr") == "é" * 250


async def test_a_character_cut_by_the_cap_is_dropped_and_a_broken_end_is_replaced() -> None:
    sink = Recorder()
    async with ToolOutputStream(sink.emit, 1, "c", 1000) as output:
        await output.write("stdout", b"a" * 499 + "é".encode())
        await output.write("stderr", b"ok\xc3")

    assert sink.text("stdout") == "a" * 499
    assert sink.text("stderr") == "ok\ufffd"


async def test_nothing_more_is_emitted_when_the_call_fails() -> None:
    sink = Recorder()
    with pytest.raises(RuntimeError):
        async with ToolOutputStream(sink.emit, 1, "c", 1000, flush_delay=10) as output:
            await output.write("stdout", b"partial")
            raise RuntimeError("sandbox gone")

    assert sink.events == []
