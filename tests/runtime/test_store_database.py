"""The store's connection handling that tests of the aggregates do not reach."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from runtime.engine.events import TextChunk
from runtime.store import Store


@pytest.mark.both_engines
async def test_a_query_canceled_midway_leaves_the_store_usable(store_target: str | Path) -> None:
    # A client that goes away cancels its handler wherever it is, inside a statement too; SQLite's
    # one connection is then invalidated by SQLAlchemy and must be replaced, not left broken.
    async with Store.open(store_target) as store:
        await store.create_run("r", "alice", "task")
        for _ in range(20):
            query = asyncio.create_task(store.list_tasks("alice"))
            for _ in range(3):
                await asyncio.sleep(0)  # into the statement, waiting on the driver
            query.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await query

        assert (await store.get_run("r")).owner == "alice"
        assert (await store.append("r", TextChunk(iteration=1, content="x"))).offset == 0
        assert [t.id for t in (await store.list_tasks("alice"))[0]] == ["r"]


@pytest.mark.both_engines
async def test_a_read_on_the_driver_canceled_midway_leaves_the_store_usable(store_target: str | Path) -> None:
    # The hot reads and writes run on the driver itself (Database.fetch), outside SQLAlchemy's
    # handling of a canceled statement: a pooled asyncpg connection still busy with one must not
    # be handed out again.
    async with Store.open(store_target) as store:
        await store.create_run("r", "alice", "task")
        await store.append("r", TextChunk(iteration=1, content="x"))
        for _ in range(20):
            read = asyncio.create_task(store.events("r"))
            for _ in range(3):
                await asyncio.sleep(0)
            read.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await read

        assert [e.offset for e in await store.events("r")] == [0]
        assert (await store.get_run("r")).owner == "alice"
        assert (await store.append("r", TextChunk(iteration=1, content="y"))).offset == 1
