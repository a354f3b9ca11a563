"""The registry's and the marketplace's list queries with 100,000 nodes and 100,000 tasks.

    .venv/bin/python bench/platform_queries.py [--nodes 100000] [--tasks 100000] [--samples 200] \
        [--engine both|sqlite|postgresql] [--http]

On SQLite (a file in a temporary directory, opened as the worker opens it) and on PostgreSQL (a
throwaway local cluster, tests/postgres.py, with the server's default durability), the store is
migrated as the worker does it and seeded in bulk: nodes with two or three of 50 capabilities
(``cap_0`` on ~19% of them, ``cap_49`` on ~3%: weights falling as 1/sqrt(rank)), trust spread over
0-1, and tasks with one to three capabilities in every status. Then, for each query, the p50 and
p95 of what ``GET /v1/agents`` and ``GET /v1/tasks`` call (:class:`Registry.list`,
:class:`Marketplace.list_tasks`: the page and its total, the capabilities of the page's rows),
timed one call after another on a warm cache; and the plan of each statement those calls run,
captured as it is sent to the database (``EXPLAIN QUERY PLAN`` on SQLite, ``EXPLAIN`` on
PostgreSQL), so what is timed is what is explained. A plan line naming a table with no index
("SCAN nodes", "Seq Scan on nodes") is a full scan. With ``--http``, the same lists are then
requested from an ``agent-worker serve`` on the seeded store, over loopback, one after another.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# The repository instead of this script's folder, for the runtime, api and tests packages.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

import aiohttp  # noqa: E402
from sqlalchemy import Engine, event, insert, text  # noqa: E402

from runtime.platform.marketplace import Marketplace  # noqa: E402
from runtime.platform.registry import Registry  # noqa: E402
from runtime.store import Store  # noqa: E402
from runtime.store.schema import node_capabilities, nodes, platform_tasks, task_capabilities  # noqa: E402
from tests.postgres import running_cluster  # noqa: E402
from tests.served_worker import command, free_port, wait_healthy  # noqa: E402

CAPABILITIES = [f"cap_{i}" for i in range(50)]
WEIGHTS = [1 / (i + 1) ** 0.5 for i in range(50)]  # cap_0 common, cap_49 ~7x rarer
STATUSES = ["open", "progress", "done", "canceled", "failed"]
CHUNK = 5_000


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def some_capabilities(rng: random.Random, low: int, high: int) -> list[str]:
    return list(dict.fromkeys(rng.choices(CAPABILITIES, WEIGHTS, k=rng.randint(low, high))))


async def seed(store: Store, node_count: int, task_count: int) -> None:
    """Nodes and tasks in bulk, a few thousand rows per statement."""
    rng = random.Random(11)
    now = time.time()
    for start in range(0, node_count, CHUNK):
        ids = [f"node_{i:06d}" for i in range(start, min(start + CHUNK, node_count))]
        node_rows = [
            {
                "id": node_id,
                "kind": "registered",
                "nickname": node_id,
                "created_at": now - i,
                "trust_score": rng.random(),
                "ratings_count": rng.randint(0, 50),
                "completed_tasks": rng.randint(0, 100),
            }
            for i, node_id in enumerate(ids)
        ]
        capability_rows = [
            {"node_id": row["id"], "capability": c, "trust_score": row["trust_score"]}
            for row in node_rows
            for c in some_capabilities(rng, 2, 3)
        ]
        async with store.transaction() as conn:
            await conn.execute(insert(nodes), node_rows)
            await conn.execute(insert(node_capabilities), capability_rows)
    for start in range(0, task_count, CHUNK):
        ids = [f"task_{i:06d}" for i in range(start, min(start + CHUNK, task_count))]
        task_rows = []
        for i, task_id in enumerate(ids):
            status = rng.choice(STATUSES)
            task_rows.append(
                {
                    "id": task_id,
                    "publisher": f"node_{rng.randrange(node_count):06d}",
                    "title": "t",
                    "description": "d",
                    "budget": rng.randint(100, 100_000),
                    "status": status,
                    "acceptor": None
                    if status in ("open", "canceled")
                    else f"node_{rng.randrange(node_count):06d}",
                    "created_at": now - (start + i),
                    "updated_at": now,
                }
            )
        capability_rows = [
            {"task_id": row["id"], "capability": c, "created_at": row["created_at"], "status": row["status"]}
            for row in task_rows
            for c in some_capabilities(rng, 1, 3)
        ]
        async with store.transaction() as conn:
            await conn.execute(insert(platform_tasks), task_rows)
            await conn.execute(insert(task_capabilities), capability_rows)
    # The planner's statistics and PostgreSQL's visibility map (what lets a count be read from an
    # index alone), as autovacuum would have them after a bulk load.
    if store.dialect == "sqlite":
        async with store.transaction() as conn:
            await conn.execute(text("ANALYZE"))
        return
    async with store.transaction() as conn:
        engine = conn.engine
    async with engine.connect() as conn:  # VACUUM runs outside a transaction
        autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.execute(text("VACUUM ANALYZE"))


@contextmanager
def captured(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """The statements (and parameters) sent to the database inside the block."""
    sent: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def plans(store: Store, call: Callable[[], Awaitable[object]]) -> list[str]:
    """The plan of every statement ``call`` runs, one line per plan line."""
    async with store.transaction() as conn:
        engine = conn.engine.sync_engine
    with captured(engine) as sent:
        await call()
    prefix = "EXPLAIN QUERY PLAN " if store.dialect == "sqlite" else "EXPLAIN "
    lines: list[str] = []
    async with store.transaction() as conn:
        for statement, parameters in sent:
            if not statement.lstrip().upper().startswith("SELECT"):
                continue
            lines.append(f"  -- {' '.join(statement.split())[:150]}")
            result = await conn.exec_driver_sql(prefix + statement, parameters)
            for row in result:
                lines.append(f"     {row[-1]}")
    return lines


async def timed(call: Callable[[], Awaitable[object]], samples: int) -> list[float]:
    await call()  # warm
    durations = []
    for _ in range(samples):
        start = time.perf_counter()
        await call()
        durations.append(time.perf_counter() - start)
    return durations


async def measure(name: str, target: str | Path, node_count: int, task_count: int, samples: int) -> list[str]:
    out = [f"== {name}: {node_count} nodes, {task_count} tasks"]
    async with Store.open(target) as store:
        start = time.perf_counter()
        await seed(store, node_count, task_count)
        out.append(f"seeded in {time.perf_counter() - start:.1f} s")
        registry, marketplace = Registry(store), Marketplace(store)
        queries: list[tuple[str, Callable[[], Awaitable[object]]]] = [
            ("GET /v1/agents?capability=cap_0", lambda: registry.list("cap_0", None, 1, 20)),
            ("GET /v1/agents?capability=cap_49", lambda: registry.list("cap_49", None, 1, 20)),
            ("GET /v1/agents?capability=cap_0&min_trust=0.9", lambda: registry.list("cap_0", 0.9, 1, 20)),
            ("GET /v1/tasks?capability=cap_0", lambda: marketplace.list_tasks(None, "cap_0", 1, 20)),
            ("GET /v1/tasks?capability=cap_49", lambda: marketplace.list_tasks(None, "cap_49", 1, 20)),
            (
                "GET /v1/tasks?status=open&capability=cap_0",
                lambda: marketplace.list_tasks("open", "cap_0", 1, 20),
            ),
        ]
        for label, call in queries:
            durations = await timed(call, samples)
            out.append(
                f"{label:48s} p50 {pct(durations, 0.5) * 1000:7.2f} ms  p95 {pct(durations, 0.95) * 1000:7.2f} ms"
                f"  (n={samples})"
            )
        for label, call in queries:
            out.append(f"plan of {label}:")
            out += await plans(store, call)
    return out


HTTP_QUERIES = [
    "/v1/agents?capability=cap_0",
    "/v1/agents?capability=cap_49",
    "/v1/agents?capability=cap_0&min_trust=0.9",
    "/v1/tasks?capability=cap_0",
    "/v1/tasks?capability=cap_49",
    "/v1/tasks?status=open&capability=cap_0",
]


async def over_http(workdir: Path, database_url: str | None, samples: int) -> list[str]:
    """The same lists as GET requests to an ``agent-worker serve`` on the seeded store (loopback)."""
    port = free_port()
    env = {
        **os.environ,
        "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",  # no model call is made
        "AGENT_DATA_DIR": str(workdir),
        **({"AGENT_DATABASE_URL": database_url} if database_url else {}),
        "AGENT_API_KEYS": "bench:tok-bench",
        "AGENT_RATE_LIMIT_PER_MINUTE": "0",
        "AGENT_RATE_LIMIT_CONCURRENCY": "0",
        "AGENT_LOG_LEVEL": "warning",
        "AGENT_SANDBOX_POOL_SIZE": "0",
    }
    worker = await asyncio.create_subprocess_exec(
        *command(), "serve", "--port", str(port), env=env, stderr=asyncio.subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    out = [f"over HTTP (one client, keep-alive, {samples} calls each):"]
    try:
        await wait_healthy(base, worker)
        async with aiohttp.ClientSession(headers={"Authorization": "Bearer tok-bench"}) as session:
            for path in HTTP_QUERIES:

                async def get(path: str = path) -> None:
                    async with session.get(base + path) as response:
                        body = await response.json()
                        assert response.status == 200 and len(body["data"]["items"]) == 20, body

                durations = await timed(get, samples)
                out.append(
                    f"GET {path:44s} p50 {pct(durations, 0.5) * 1000:7.2f} ms"
                    f"  p95 {pct(durations, 0.95) * 1000:7.2f} ms  (n={samples})"
                )
    finally:
        worker.terminate()
        await worker.wait()
    return out


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--engine", choices=["both", "sqlite", "postgresql"], default="both")
    parser.add_argument("--http", action="store_true", help="also GET the lists from a served worker")
    args = parser.parse_args()
    print(f"machine: {os.uname().machine} {os.cpu_count()} cores, python {sys.version.split()[0]}")
    if args.engine in ("both", "sqlite"):
        with tempfile.TemporaryDirectory(prefix="aw-bench-") as workdir:
            # The file the worker opens in its data directory, so the same store is served below.
            store_file = Path(workdir) / "agent-worker.sqlite3"
            rows = await measure("SQLite", store_file, args.nodes, args.tasks, args.samples)
            print("\n".join(rows), flush=True)
            if args.http:
                print("\n".join(await over_http(Path(workdir), None, args.samples)), flush=True)
    if args.engine in ("both", "postgresql"):
        with running_cluster(()) as cluster:
            async with cluster.fresh_database() as url:
                rows = await measure("PostgreSQL", url, args.nodes, args.tasks, args.samples)
                print("\n".join(rows), flush=True)
                if args.http:
                    with tempfile.TemporaryDirectory(prefix="aw-bench-") as workdir:
                        print("\n".join(await over_http(Path(workdir), url, args.samples)), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
