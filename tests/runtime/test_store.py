"""The event store: ordered per-run offsets, typed round trip, durability across reopen."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from runtime.engine.events import IterationStarted, RunFailed, RunStarted, TextChunk, Usage
from runtime.errors import NotFoundError
from runtime.store import Store

pytestmark = pytest.mark.both_engines


async def test_offsets_are_per_run_and_events_round_trip(store_target: str | Path) -> None:
    async with Store.open(store_target) as store:
        await store.create_run("a", "alice", "chat")
        await store.create_run("b", "bob", "chat")
        await store.append("a", RunStarted(message="hi", max_iterations=3, model="m"))
        await store.append("b", IterationStarted(iteration=1))
        stored = await store.append("a", TextChunk(iteration=1, content="hé"))
        assert stored.offset == 1
        events = await store.events("a")
        assert [e.offset for e in events] == [0, 1]
        assert events[1].event == TextChunk(iteration=1, content="hé")
        assert [e.offset for e in await store.events("b")] == [0]
        assert [e.offset for e in await store.events("a", from_offset=1)] == [1]
        assert await store.events("a", from_offset=5) == []


async def test_concurrent_appends_never_share_an_offset(store_target: str | Path) -> None:
    async with Store.open(store_target) as store:
        await store.create_run("r", "u", "chat")
        await asyncio.gather(*(store.append("r", IterationStarted(iteration=i)) for i in range(50)))
        offsets = [e.offset for e in await store.events("r")]
        assert offsets == list(range(50))


async def test_get_run_hides_other_owners(store_target: str | Path) -> None:
    async with Store.open(store_target) as store:
        await store.create_run("r", "alice", "chat")
        assert (await store.get_run("r", owner="alice")).status == "running"
        with pytest.raises(NotFoundError):
            await store.get_run("r", owner="mallory")
        with pytest.raises(NotFoundError):
            await store.get_run("missing")


async def test_reopen_keeps_events_and_fails_interrupted_runs(store_target: str | Path) -> None:
    async with Store.open(store_target) as store:
        await store.create_run("done", "u", "chat")
        await store.append("done", IterationStarted(iteration=1))
        await store.set_status("done", "completed")
        await store.create_run("live", "u", "chat")
        await store.append("live", IterationStarted(iteration=2))
    async with Store.open(store_target) as store:
        assert await store.fail_interrupted_runs("interrupted") == ["live"]
        assert (await store.get_run("done")).status == "completed"
        assert len(await store.events("done")) == 1
        live = await store.get_run("live")
        assert (live.status, live.error) == ("failed", "interrupted")
        last = (await store.events("live"))[-1].event
        assert last == RunFailed(error="interrupted", response="", iterations=2, usage=Usage())
