"""The recommendation feed with 100,000 public capabilities and 100,000 open tasks.

    .venv/bin/python bench/market_feed.py [--items 100000] [--samples 200] [--engine both|sqlite|postgresql]

On SQLite (a file in a temporary directory) and on PostgreSQL (a throwaway local cluster,
tests/postgres.py), the store is migrated as the worker does it and seeded in bulk: 20,000 owner
nodes with trust spread over 0-1, ``--items`` public capabilities (one of 50 categories) and
``--items`` open tasks (one to three of 50 capabilities), inserted through the tables' triggers
that copy the feed's sort keys. The caller has two of the capabilities. Timed, one call after
another on a warm cache, what ``GET /api/v1/recommendations/feed?page_size=20`` calls
(:meth:`Feed.page`): the first page, a page 50 pages into the matching tier, and a page of the
other items; then the plan of every statement those calls send (``EXPLAIN QUERY PLAN`` on SQLite,
``EXPLAIN`` on PostgreSQL). A plan line naming a table with no index ("SCAN capabilities",
"Seq Scan on platform_tasks") is a full scan.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

# The repository instead of this script's folder, for the runtime, bench and tests packages.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

from sqlalchemy import insert, text  # noqa: E402

from bench.platform_queries import pct, plans, timed  # noqa: E402
from runtime.platform.feed import Feed  # noqa: E402
from runtime.platform.feed_cursor import CursorSigner  # noqa: E402
from runtime.store import Store  # noqa: E402
from runtime.store.platform_nodes import set_capabilities  # noqa: E402
from runtime.store.schema import capabilities, nodes, platform_tasks, task_capabilities  # noqa: E402
from tests.postgres import running_cluster  # noqa: E402

TAGS = [f"cap_{i}" for i in range(50)]
CALLER, CALLER_TAGS = "caller", ["cap_3", "cap_17"]
OWNERS = 20_000
CHUNK = 5_000
PAGE = 20


async def seed(store: Store, items: int) -> None:
    rng = random.Random(7)
    now = time.time()
    async with store.transaction() as conn:
        await conn.execute(
            insert(nodes),
            [
                {
                    "id": f"node_{i:05d}",
                    "kind": "registered",
                    "nickname": "n",
                    "created_at": now,
                    "trust_score": round(rng.random(), 2),
                }
                for i in range(OWNERS)
            ]
            + [
                {
                    "id": CALLER,
                    "kind": "registered",
                    "nickname": CALLER,
                    "created_at": now,
                    "trust_score": 0.5,
                }
            ],
        )
        await set_capabilities(conn, CALLER, CALLER_TAGS)
    for start in range(0, items, CHUNK):
        numbers = range(start, min(start + CHUNK, items))
        capability_rows = [
            {
                "owner": f"node_{rng.randrange(OWNERS):05d}",
                "id": f"cap_item_{i:06d}",
                "spec": json.dumps({"id": f"cap_item_{i:06d}", "name": "c", "category": rng.choice(TAGS)}),
                "created_at": now - i,
                "visibility": "public",
                "price_cents": rng.randint(0, 10_000),
            }
            for i in numbers
        ]
        task_rows = [
            {
                "id": f"task_{i:06d}",
                "publisher": f"node_{rng.randrange(OWNERS):05d}",
                "title": "t",
                "description": "d",
                "budget": rng.randint(100, 100_000),
                "status": "open",
                "created_at": now - i - 0.5,
                "updated_at": now,
            }
            for i in numbers
        ]
        tag_rows = [
            {"task_id": row["id"], "capability": c, "created_at": row["created_at"], "status": "open"}
            for row in task_rows
            for c in dict.fromkeys(rng.choices(TAGS, k=rng.randint(1, 3)))
        ]
        async with store.transaction() as conn:
            await conn.execute(insert(capabilities), capability_rows)
            await conn.execute(insert(platform_tasks), task_rows)
            await conn.execute(insert(task_capabilities), tag_rows)
    if store.dialect == "sqlite":
        async with store.transaction() as conn:
            await conn.execute(text("ANALYZE"))
        return
    async with store.transaction() as conn:
        engine = conn.engine
    async with engine.connect() as conn:
        autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.execute(text("VACUUM ANALYZE"))


async def measure(name: str, target: str | Path, items: int, samples: int) -> list[str]:
    out = [f"{name}: {items:,} public capabilities + {items:,} open tasks"]
    async with Store.open(target) as store:
        started = time.perf_counter()
        await seed(store, items)
        out.append(f"  seeded in {time.perf_counter() - started:.1f} s")
        feed = Feed(store, CursorSigner(os.urandom(32)))
        deep = None
        for _ in range(50):
            deep = (await feed.page(CALLER, PAGE, deep)).next_cursor
        others = None
        while True:  # the first cursor past the matching tier
            page = await feed.page(CALLER, 100, others)
            others = page.next_cursor
            if not page.items[-1].matched or others is None:
                break
        calls = {
            "first page": lambda: feed.page(CALLER, PAGE, None),
            "50 pages in": lambda: feed.page(CALLER, PAGE, deep),
            "other items": lambda: feed.page(CALLER, PAGE, others),
        }
        for label, call in calls.items():
            durations = await timed(call, samples)
            out.append(
                f"  {label:12s} p50 {pct(durations, 0.5) * 1000:7.2f} ms"
                f"  p95 {pct(durations, 0.95) * 1000:7.2f} ms  (n={samples})"
            )
        for label, call in calls.items():
            out.append(f"  plans, {label}:")
            out += await plans(store, call)
    return out


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--engine", choices=["both", "sqlite", "postgresql"], default="both")
    args = parser.parse_args()
    print(f"machine: {os.uname().machine} {os.cpu_count()} cores, python {sys.version.split()[0]}")
    if args.engine in ("both", "sqlite"):
        with tempfile.TemporaryDirectory(prefix="aw-bench-") as workdir:
            rows = await measure("SQLite", Path(workdir) / "agent-worker.sqlite3", args.items, args.samples)
            print("\n".join(rows), flush=True)
    if args.engine in ("both", "postgresql"):
        with running_cluster(()) as cluster:
            async with cluster.fresh_database() as url:
                print("\n".join(await measure("PostgreSQL", url, args.items, args.samples)), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
