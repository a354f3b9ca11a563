"""The store on both engines, side by side, in one run on this machine.

    .venv/bin/python bench/store_engines.py [--events 5000] [--deliveries 300]

SQLite is a file in a temporary directory, opened as the worker opens it (WAL,
``synchronous=NORMAL``). PostgreSQL is a throwaway local cluster (``tests/postgres.py``; as root
it runs as the ``postgres`` user) with the server's default durability (``fsync``,
``synchronous_commit`` on), reached over TCP on 127.0.0.1, and once more with
``synchronous_commit=off``, which like SQLite's ``NORMAL`` may lose the last commits to a machine
crash but never corrupts. For each:

1. Events stored per second: the bare driver (aiosqlite, asyncpg: one plain INSERT per event,
   autocommit) as the baseline; ``Store.append`` (one event per statement and transaction), one
   writer; four concurrent writers on four runs (one Store); one writer in batches of 20
   (``Store.append_batch``, how a run's events are written).
2. Append → long-poll delivery: a reader does what a long-poll does (take the run's wake-up,
   read from its offset, wait if there is nothing, read again) while a writer appends one event
   every 5 ms; the latency is the reader's clock when it has the event minus the writer's just
   before the append (one process, one clock). On the same Store, and on PostgreSQL also from a
   second Store, as another worker would read (woken by ``LISTEN/NOTIFY``).
3. Time per call of the store's hot paths, one at a time (1,000 calls after 200 to warm up):
   ``events()`` (10 events of a run's 20), ``get_run()``, ``set_status()``, ``append()``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import aiosqlite
import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runtime.engine.events import TextChunk
from runtime.store import Store
from tests.postgres import running_cluster

BATCH = 20
GAP = 0.005  # between the writer's appends: each is read alone, not in a batch of several


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def chunk(i: int) -> TextChunk:
    return TextChunk(iteration=1, content=f"chunk {i}")


async def driver_alone(target: str | Path, count: int) -> float:
    """The baseline: one INSERT per event through the bare driver (aiosqlite, asyncpg), autocommit."""
    create = "CREATE TABLE bare (run_id TEXT, seq INTEGER, type TEXT, data TEXT, created_at REAL, PRIMARY KEY (run_id, seq))"
    data = chunk(0).model_dump_json(exclude={"type"})
    if isinstance(target, Path):
        async with aiosqlite.connect(target.with_name("bare.sqlite3"), isolation_level=None) as lite:
            for pragma in ("journal_mode=WAL", "synchronous=NORMAL"):
                await lite.execute(f"PRAGMA {pragma}")
            await lite.execute(create)
            started = time.perf_counter()
            for i in range(count):
                await lite.execute_fetchall(
                    "INSERT INTO bare VALUES (?, ?, ?, ?, ?)", ("one", i, "text_chunk", data, time.time())
                )
            return count / (time.perf_counter() - started)
    pg = await asyncpg.connect(target)
    try:
        await pg.execute(create)
        started = time.perf_counter()
        for i in range(count):
            await pg.execute(
                "INSERT INTO bare VALUES ($1, $2, $3, $4, $5)", "one", i, "text_chunk", data, time.time()
            )
        return count / (time.perf_counter() - started)
    finally:
        await pg.close()


async def one_writer(store: Store, count: int) -> float:
    await store.create_run("one", "bench", "task")
    started = time.perf_counter()
    for i in range(count):
        await store.append("one", chunk(i))
    return count / (time.perf_counter() - started)


async def four_writers(store: Store, count: int) -> float:
    for n in range(4):
        await store.create_run(f"c{n}", "bench", "task")

    async def writer(run_id: str) -> None:
        for i in range(count // 4):
            await store.append(run_id, chunk(i))

    started = time.perf_counter()
    await asyncio.gather(*(writer(f"c{n}") for n in range(4)))
    return count // 4 * 4 / (time.perf_counter() - started)


async def batches(store: Store, count: int) -> float:
    await store.create_run("batched", "bench", "task")
    started = time.perf_counter()
    for start in range(0, count - count % BATCH, BATCH):
        await store.append_batch("batched", [chunk(i) for i in range(start, start + BATCH)])
    return (count - count % BATCH) / (time.perf_counter() - started)


async def deliveries(writer: Store, reader: Store, run_id: str, count: int) -> list[float]:
    """Latencies of ``count`` events appended on ``writer`` and long-polled on ``reader``."""
    await writer.create_run(run_id, "bench", "task")
    appended: dict[int, float] = {}
    latencies: list[float] = []

    async def read() -> None:
        offset = 0
        while offset < count:
            woken = reader.watch(run_id)  # before reading, as TaskManager.events takes it
            stored = await reader.events(run_id, offset)
            if not stored:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), 25)
                stored = await reader.events(run_id, offset)
            now = time.perf_counter()
            for event in stored:
                latencies.append(now - appended[event.offset])
            offset += len(stored)

    async def write() -> None:
        for i in range(count):
            appended[i] = time.perf_counter()
            await writer.append(run_id, chunk(i))
            await asyncio.sleep(GAP)

    await asyncio.gather(read(), write())
    return latencies


async def per_call(store: Store) -> list[tuple[str, float]]:
    """Milliseconds per call of the hot paths, each called alone in a loop."""
    await store.create_run("calls", "bench", "task")
    for i in range(20):
        await store.append("calls", chunk(i))

    async def timed(call: Callable[[], Awaitable[object]]) -> float:
        for _ in range(200):
            await call()
        started = time.perf_counter()
        for _ in range(1000):
            await call()
        return (time.perf_counter() - started) / 1000 * 1000

    return [
        ("events()", await timed(lambda: store.events("calls", 10))),
        ("get_run()", await timed(lambda: store.get_run("calls", "bench"))),
        ("set_status()", await timed(lambda: store.set_status("calls", "running"))),
        ("append()", await timed(lambda: store.append("calls", chunk(0)))),
    ]


async def measure(name: str, target: str | Path, count: int, delivered: int) -> list[str]:
    rows = [f"{name:44s} events/s, bare driver (baseline)    {await driver_alone(target, count):9.0f}"]
    async with Store.open(target) as store:
        rows.append(f"{name:44s} events/s, one writer             {await one_writer(store, count):9.0f}")
        rows.append(f"{name:44s} events/s, 4 concurrent writers   {await four_writers(store, count):9.0f}")
        rows.append(f"{name:44s} events/s, batches of {BATCH}         {await batches(store, count):9.0f}")
        calls = await per_call(store)
        rows.append(f"{name:44s} ms per call: " + ", ".join(f"{call} {ms:.3f}" for call, ms in calls))
        same = await deliveries(store, store, "same", delivered)
        rows.append(latency_row(name, "append → long-poll, same store", same))
        if store.dialect == "postgresql":
            async with Store.open(target) as other:
                across = await deliveries(store, other, "across", delivered)
            rows.append(latency_row(name, "append → long-poll, other store", across))
    return rows


def latency_row(name: str, label: str, samples: list[float]) -> str:
    return (
        f"{name:44s} {label:32s} p50 {pct(samples, 0.5) * 1000:6.2f} ms"
        f"  p95 {pct(samples, 0.95) * 1000:6.2f} ms  (n={len(samples)})"
    )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--deliveries", type=int, default=300)
    args = parser.parse_args()
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, python {platform.python_version()}")
    rows: list[str] = []
    with tempfile.TemporaryDirectory(prefix="aw-bench-") as workdir:
        rows += await measure(
            "SQLite (WAL, synchronous=NORMAL)", Path(workdir) / "store.sqlite3", args.events, args.deliveries
        )
    variants: Sequence[tuple[str, tuple[str, ...]]] = (
        ("PostgreSQL (defaults: synchronous_commit=on)", ()),
        ("PostgreSQL (synchronous_commit=off)", ("synchronous_commit=off",)),
    )
    for name, settings in variants:
        with running_cluster(settings) as cluster:
            async with cluster.fresh_database() as url:
                rows += await measure(name, url, args.events, args.deliveries)
    print("\n".join(rows))


if __name__ == "__main__":
    asyncio.run(main())
