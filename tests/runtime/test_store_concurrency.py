"""The store under concurrent writers, on PostgreSQL: separate Store instances, as separate workers.

SQLite has one writer per file, which hides races; here each Store has its own connection pool
on one PostgreSQL database, so every statement that must be atomic is raced for real.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import pytest

from runtime.engine.events import RunStarted, TextChunk
from runtime.errors import ConflictError
from runtime.features.idempotency import IdempotencyStore
from runtime.store import Store

WORKERS = 3
WAKE_TIMEOUT = 10.0  # generous: this is a bound on a hang, not a latency figure


@pytest.fixture
async def stores(postgres_url: str) -> AsyncIterator[list[Store]]:
    """``WORKERS`` stores on one fresh PostgreSQL database, as many workers would open it."""
    async with AsyncExitStack() as stack:
        opened = [await stack.enter_async_context(Store.open(postgres_url)) for _ in range(WORKERS)]
        yield opened


async def test_concurrent_appenders_get_every_offset_once_in_each_writers_order(stores: list[Store]) -> None:
    await stores[0].create_run("run", "alice", "task")
    writers, rounds = 4, 15

    async def writer(store: Store, name: str) -> None:
        for i in range(rounds):
            # Batches of 1, 2 and 3 events: offsets are taken in ranges, not one at a time.
            batch = [TextChunk(iteration=1, content=f"{name}:{i}:{part}") for part in range(i % 3 + 1)]
            if len(batch) == 1:
                await store.append("run", batch[0])
            else:
                await store.append_batch("run", batch)

    await asyncio.gather(
        *(writer(store, f"{n}-{w}") for n, store in enumerate(stores) for w in range(writers))
    )

    stored = await stores[-1].events("run")
    total = len(stores) * writers * sum(i % 3 + 1 for i in range(rounds))
    assert [e.offset for e in stored] == list(range(total))
    contents = [e.event.content for e in stored if isinstance(e.event, TextChunk)]
    for n in range(len(stores)):
        for w in range(writers):
            # Each writer's events appear in the order it wrote them, each batch contiguous.
            mine = [c for c in contents if c.startswith(f"{n}-{w}:")]
            expected = [f"{n}-{w}:{i}:{part}" for i in range(rounds) for part in range(i % 3 + 1)]
            assert mine == expected


async def test_two_workers_racing_to_admit_tasks_for_one_user_admit_exactly_one(stores: list[Store]) -> None:
    attempts = 12

    async def admit(n: int) -> bool:
        try:
            await stores[n % 2].admit_task(
                f"task-{n}",
                "alice",
                workspace_id="ws",
                conversation_id=f"conv-{n}",  # one per attempt: only the user's limit can refuse
                max_active=1,
                request="{}",
                first=RunStarted(message="go", max_iterations=1, model="m"),
                queued=True,
            )
        except ConflictError:
            return False
        return True

    admitted = await asyncio.gather(*(admit(n) for n in range(attempts)))

    assert admitted.count(True) == 1
    tasks, total = await stores[2].list_tasks("alice")
    assert total == 1 and [t.id for t in tasks] == [f"task-{admitted.index(True)}"]


async def test_concurrent_claims_of_one_idempotency_key_have_exactly_one_winner(stores: list[Store]) -> None:
    claimants = 12

    async def claim(n: int) -> bool:
        keys = IdempotencyStore(stores[n % len(stores)], ttl=60)
        try:
            stored = await keys.begin("alice", "key-1", "same-request")
        except ConflictError:  # the first request is still in flight
            return False
        assert stored is None  # nothing was ever completed, so nothing can be replayed
        return True

    won = await asyncio.gather(*(claim(n) for n in range(claimants)))

    assert won.count(True) == 1


async def test_a_waiter_on_one_store_is_woken_by_an_append_on_another(stores: list[Store]) -> None:
    writer, reader = stores[0], stores[1]
    await writer.create_run("run", "alice", "task")
    woken = reader.watch("run")  # taken before reading, as a long-poll does
    assert await reader.events("run") == []

    await writer.append("run", TextChunk(iteration=1, content="hello"))

    await asyncio.wait_for(woken.wait(), WAKE_TIMEOUT)
    assert [e.event for e in await reader.events("run")] == [TextChunk(iteration=1, content="hello")]


async def test_a_waiter_on_one_store_is_woken_when_another_ends_the_run(stores: list[Store]) -> None:
    writer, reader = stores[0], stores[1]
    await writer.create_run("run", "alice", "task")
    woken = reader.watch("run")

    await writer.set_status("run", "completed")

    await asyncio.wait_for(woken.wait(), WAKE_TIMEOUT)
    assert (await reader.get_run("run")).status == "completed"
