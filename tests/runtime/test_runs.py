"""The run's plumbing: StoreSink (batched, ordered writes with barriers) and LazySandbox (prefetch)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import pytest

from runtime.engine.events import Event, ModelResponse, RunCompleted, TextChunk, ToolCall, Usage
from runtime.engine.loop import LoopConfig, run_agent
from runtime.engine.model_client import ModelConfig, OpenAIChatModel
from runtime.engine.runs import LazySandbox, StoreSink
from runtime.store import Store
from sandbox.base import Sandbox
from tests.fakes import Call, Reply, ScriptedModelServer, ToolCalls

pytestmark = pytest.mark.both_engines


@pytest.fixture
async def store(store_target: str | Path) -> AsyncIterator[Store]:
    async with Store.open(store_target) as store:
        await store.create_run("r", "alice", "chat")
        yield store


def chunks(n: int) -> list[Event]:
    return [TextChunk(iteration=1, content=f"part {i}") for i in range(n)]


async def test_a_tool_call_is_stored_after_everything_before_it_and_before_emit_returns(store: Store) -> None:
    sink = StoreSink(store, "r")
    for event in chunks(30):
        await sink.emit(event)
    await sink.emit(ToolCall(iteration=1, id="c1", name="execute_bash", arguments="{}"))
    stored = await store.events("r")
    assert [e.offset for e in stored] == list(range(31))
    assert [e.event for e in stored] == [
        *chunks(30),
        ToolCall(iteration=1, id="c1", name="execute_bash", arguments="{}"),
    ]


async def test_the_block_ends_with_every_event_stored(store: Store) -> None:
    async with StoreSink(store, "r") as sink:
        for event in chunks(5):
            await sink.emit(event)
    assert [e.event for e in await store.events("r")] == chunks(5)


async def test_a_failed_write_is_raised_at_the_next_barrier_and_the_next_batch_still_lands(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = store.append_batch
    failures = [RuntimeError("disk full")]

    async def flaky(run_id: str, events: Sequence[Event]) -> None:
        if failures:
            raise failures.pop()
        await real(run_id, events)

    monkeypatch.setattr(store, "append_batch", flaky)
    sink = StoreSink(store, "r")
    await sink.emit(chunks(1)[0])  # queued: the failure is not this emit's to report
    with pytest.raises(RuntimeError, match="disk full"):
        await sink.emit(ToolCall(iteration=1, id="c1", name="execute_bash", arguments="{}"))
    final = RunCompleted(response="done", iterations=1, usage=Usage())
    await sink.emit(final)  # raised once; the store took the next batch
    assert [e.event for e in await store.events("r")] == [final]


class Opened:
    """A LazySandbox opener that records when it was entered and exited."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.entered: list[float] = []
        self.exited = 0

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[Sandbox]:
        await asyncio.sleep(self.delay)
        self.entered.append(time.monotonic())
        try:
            yield cast(Sandbox, object())
        finally:
            self.exited += 1


async def test_prefetch_opens_once_and_the_call_gets_that_sandbox() -> None:
    opener = Opened(delay=0.05)
    async with LazySandbox(opener) as lazy:
        lazy.prefetch()
        lazy.prefetch()
        first, second = await asyncio.gather(lazy(), lazy())
        assert first is second and len(opener.entered) == 1
    assert opener.exited == 1


async def test_a_prefetch_still_opening_at_the_end_is_canceled_and_leaves_nothing_open() -> None:
    opener = Opened(delay=10.0)
    async with LazySandbox(opener) as lazy:
        lazy.prefetch()
        await asyncio.sleep(0.05)
    assert opener.entered == [] and opener.exited == 0


class TimedSink:
    def __init__(self) -> None:
        self.events: list[tuple[float, Event]] = []

    async def emit(self, event: Event) -> None:
        self.events.append((time.monotonic(), event))


async def run_with(turns: list[Any], opener: Opened) -> TimedSink:
    sink = TimedSink()
    async with ScriptedModelServer() as server:
        server.extend(turns)
        model = OpenAIChatModel(ModelConfig(base_url=server.base_url, model="scripted-model", max_retries=0))
        try:
            async with LazySandbox(opener) as lazy:
                outcome = await run_agent(
                    [{"role": "user", "content": "go"}],
                    model=model,
                    get_sandbox=lazy,
                    config=LoopConfig(),
                    max_iterations=3,
                    sink=sink,
                )
        finally:
            await model.aclose()
        server.assert_script_consumed()
    assert outcome.error is None, outcome
    return sink


async def test_the_sandbox_opens_while_the_model_still_streams_the_call() -> None:
    opener = Opened()
    # Invalid arguments: the call itself is refused, so only the prefetch can have opened it.
    slow_call = ToolCalls([Call("execute_bash", "not json {")], chunk_delay=0.1)
    sink = await run_with([slow_call, Reply("done")], opener)
    responded = next(t for t, e in sink.events if isinstance(e, ModelResponse))
    assert len(opener.entered) == 1 and opener.entered[0] < responded
    assert opener.exited == 1


async def test_a_call_to_a_tool_we_do_not_offer_opens_nothing() -> None:
    opener = Opened()
    sink = await run_with([ToolCalls([Call("web_search", {"q": "x"})]), Reply("done")], opener)
    assert opener.entered == []
    assert any(isinstance(e, RunCompleted) for _, e in sink.events)
