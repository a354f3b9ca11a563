"""``GET /api/v1/tasks``'s store call on a user with many tasks, some with very long event logs.

    .venv/bin/python bench/task_list.py [--tasks 1000] [--events 200] [--long 20] [--long-events 10000] \
        [--others 20000] [--samples 100] [--engine both|sqlite|postgresql]

The store is migrated as the worker does it and seeded in bulk: one user with ``--tasks`` task
runs of ``--events`` events each (a model response every 10th event, the final event last), the
newest ``--long`` of them with ``--long-events`` events (so the first page is the worst case: its
tasks' events are what the list's second statement reads), and ``--others`` runs of other users.
Then, p50 and p95 of :meth:`TaskSummaryQueries.page` (what the route calls), one call after
another on a warm cache: the first page of 20 and of 100, a page deep in the list, and a status
filter; and, as the baseline, the list's first version on the first page (one grouped read of all
the page's events).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path[0] = str(Path(__file__).resolve().parent.parent)

from sqlalchemy import Integer, case, cast, func, insert, select, text  # noqa: E402
from sqlalchemy.dialects.postgresql import JSONB  # noqa: E402

from runtime.store import Store  # noqa: E402
from runtime.store.schema import events, runs  # noqa: E402
from tests.postgres import running_cluster  # noqa: E402

USAGE = json.dumps(
    {"iteration": 1, "content": "", "tool_calls": [], "finish_reason": "stop", "duration": 0.1,
     "usage": {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110}}
)  # fmt: skip
CHUNK = 20_000


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def event_rows(run_id: str, count: int, start: float, final_type: str) -> list[dict[str, Any]]:
    rows = [{"run_id": run_id, "seq": 0, "type": "run_started", "data": "{}", "created_at": start}]
    for seq in range(1, count - 1):
        kind, data = (
            ("model_response", USAGE) if seq % 10 == 0 else ("text_chunk", '{"iteration": 1, "content": "x"}')
        )
        rows.append(
            {"run_id": run_id, "seq": seq, "type": kind, "data": data, "created_at": start + seq / 1000}
        )
    calls = (count - 2) // 10
    usage = {"prompt_tokens": 100 * calls, "completion_tokens": 10 * calls, "total_tokens": 110 * calls}
    final = json.dumps({"response": "", "iterations": calls, "usage": usage})
    rows.append(
        {"run_id": run_id, "seq": count - 1, "type": "run_completed", "data": final, "created_at": start + 1}
    )
    return rows


async def seed(store: Store, args: argparse.Namespace) -> None:
    now = time.time()
    pending: list[dict[str, Any]] = []

    async def flush(force: bool = False) -> None:
        if pending and (force or len(pending) >= CHUNK):
            async with store.transaction() as conn:
                await conn.execute(insert(events), pending)
            pending.clear()

    def event_count(i: int) -> int:
        return args.long_events if i < args.long else args.events if i < args.tasks else 5

    run_rows = []
    for i in range(args.tasks + args.others):
        mine = i < args.tasks
        run_rows.append(
            {
                "id": f"run_{i:07d}",
                "owner": "alice" if mine else f"user_{i % 500}",
                "kind": "task",
                "status": "failed" if i % 7 == 0 else "completed",
                "created_at": now - i,
                "updated_at": now - i + 1,
                "workspace_id": "default",
                "conversation_id": f"conv_{i}",
                "next_offset": event_count(i),  # as the append statement keeps it on PostgreSQL
            }
        )
    async with store.transaction() as conn:
        for start in range(0, len(run_rows), CHUNK):
            await conn.execute(insert(runs), run_rows[start : start + CHUNK])
    for i, row in enumerate(run_rows):
        final_type = "run_failed" if row["status"] == "failed" else "run_completed"
        pending.extend(event_rows(row["id"], event_count(i), row["created_at"], final_type))
        await flush()
    await flush(force=True)
    async with store.transaction() as conn:
        if store.dialect == "sqlite":
            await conn.execute(text("ANALYZE"))
            return
        engine = conn.engine
    async with engine.connect() as conn:
        await (await conn.execution_options(isolation_level="AUTOCOMMIT")).execute(text("VACUUM ANALYZE"))


def first_version(store: Store) -> Callable[..., Awaitable[Any]]:
    """The list's first version, the baseline: the page, then ONE grouped read of all its tasks'
    events (start, end and the model calls' usage summed), however long their logs."""
    sqlite = store.dialect == "sqlite"

    def usage(field: str) -> Any:
        if sqlite:
            return cast(func.json_extract(events.c.data, f"$.usage.{field}"), Integer)
        return cast(cast(events.c.data, JSONB)["usage"][field].astext, Integer)

    async def page(owner: str, offset: int, limit: int) -> Any:
        async with store.transaction() as conn:
            ids = list(
                (
                    await conn.execute(
                        select(runs.c.id)
                        .where(runs.c.owner == owner, runs.c.kind == "task")
                        .order_by(runs.c.created_at.desc(), runs.c.id.desc())
                        .limit(limit)
                        .offset(offset)
                    )
                ).scalars()
            )
            is_response = events.c.type == "model_response"
            finals = ("run_completed", "run_failed", "run_canceled")
            grouped = (
                select(
                    events.c.run_id,
                    func.max(
                        case((events.c.type.in_(("run_started", "status_changed")), events.c.created_at))
                    ),
                    func.max(case((events.c.type.in_(finals), events.c.created_at))),
                    func.sum(case((is_response, usage("prompt_tokens")))),
                    func.sum(case((is_response, usage("completion_tokens")))),
                )
                .where(
                    events.c.run_id.in_(ids),
                    events.c.type.in_(("run_started", "status_changed", *finals, "model_response")),
                )
                .group_by(events.c.run_id)
            )
            return (await conn.execute(grouped)).all()

    return page


async def timed(call: Callable[[], Awaitable[Any]], samples: int) -> tuple[float, float]:
    await call()
    took = []
    for _ in range(samples):
        started = time.perf_counter()
        await call()
        took.append((time.perf_counter() - started) * 1000)
    return pct(took, 0.5), pct(took, 0.95)


async def measure(engine: str, target: str | Path, args: argparse.Namespace) -> list[str]:
    async with Store.open(target) as store:
        started = time.perf_counter()
        await seed(store, args)
        print(f"{engine}: seeded in {time.perf_counter() - started:.0f} s", flush=True)
        page = store.task_summaries.page
        cases: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
            ("page 1 of 20 (the long tasks)", lambda: page("alice", status=None, conversation_id=None, offset=0, limit=20)),
            ("page 1 of 100", lambda: page("alice", status=None, conversation_id=None, offset=0, limit=100)),
            ("page 40 of 20", lambda: page("alice", status=None, conversation_id=None, offset=780, limit=20)),
            ("status=failed, page 1 of 20", lambda: page("alice", status="failed", conversation_id=None, offset=0, limit=20)),
        ]  # fmt: skip
        baseline = first_version(store)
        cases.insert(0, ("first version (baseline): page 1 of 20", lambda: baseline("alice", 0, 20)))
        rows = []
        for name, call in cases:
            p50, p95 = await timed(call, args.samples)
            rows.append(f"| {engine} | {name} | {p50:.1f} | {p95:.1f} |")
        return rows


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--long", type=int, default=20)
    parser.add_argument("--long-events", type=int, default=10_000)
    parser.add_argument("--others", type=int, default=20_000)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--engine", choices=["both", "sqlite", "postgresql"], default="both")
    args = parser.parse_args()
    print(f"machine: {os.uname().machine} {os.cpu_count()} cores, python {sys.version.split()[0]}")
    print("| engine | call | p50 ms | p95 ms |\n|---|---|---|---|")
    if args.engine in ("both", "sqlite"):
        with tempfile.TemporaryDirectory(prefix="aw-bench-") as workdir:
            print("\n".join(await measure("SQLite", Path(workdir) / "store.sqlite3", args)), flush=True)
    if args.engine in ("both", "postgresql"):
        with running_cluster(()) as cluster:
            async with cluster.fresh_database() as url:
                print("\n".join(await measure("PostgreSQL", url, args)), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
