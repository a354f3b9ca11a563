"""Tasks per second and submit→first-event latency with 1, 2 and 3 workers on one PostgreSQL.

    AGENT_SANDBOX_IMAGE=agent-worker-sandbox:test .venv/bin/python bench/scale_workers.py [--tasks 300]

One throwaway PostgreSQL cluster (tests/postgres.py, its server defaults kept), a fresh database
per worker count, and ``agent-worker serve`` processes sharing it and one data directory. The
scripted model answers every task at once with a one-line reply and no tool call, so no sandbox
is started: this measures the control plane (admission, events, notifications, the store), which
is what more workers share; a task's sandbox work runs in the worker that runs it and adds
capacity with it. Clients submit round-robin to the workers and follow each task by SSE on the
*next* worker (another one whenever there are two or more), so every figure with several workers
includes the cross-worker path (NOTIFY). ``--concurrency`` tasks are in flight at any time.

- tasks/s: tasks submitted and followed to their final event, per second of the whole run.
- submit→first event: from sending ``POST /api/v1/messages`` to the first SSE frame of the task
  (its ``run_started``, written with the task) on the following worker, p50 and p95.
- submit→end: from the submit to the task's final event, p50 and p95.

Each worker count runs twice (``--max-running``): with 64 slots a worker (every task starts in the
worker that admits it, no queue) and with 2 (most tasks wait in the database's queue, and whichever
worker has a free slot first claims them), so the queue's cost is side by side with the direct path.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp

from tests.fakes import Reply, ScriptedModelServer
from tests.postgres import running_cluster
from tests.served_worker import ServedWorker, serve, worker_env


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def one_task(
    session: aiohttp.ClientSession,
    submit_to: str,
    follow_on: str,
    latencies: list[float],
    ends: list[float],
) -> None:
    async with session.post(f"{submit_to}/api/v1/conversations") as response:
        conversation = (await response.json())["conversation_id"]
    started = time.perf_counter()
    body = {"conversation_id": conversation, "message": "hi"}
    async with session.post(f"{submit_to}/api/v1/messages", json=body) as response:
        assert response.status == 202, await response.text()
        task_id = (await response.json())["task_id"]
    first = None
    async with session.get(f"{follow_on}/api/v1/tasks/{task_id}/events") as response:
        async for raw in response.content:
            line = raw.decode()
            if not line.startswith("data: "):
                continue
            if first is None:
                first = time.perf_counter() - started
            kind = json.loads(line[6:])["type"]
            if kind in ("run_completed", "run_failed", "run_canceled"):
                assert kind == "run_completed", f"task {task_id}: {kind}"
                break
    assert first is not None, f"task {task_id}: no event"
    latencies.append(first)
    ends.append(time.perf_counter() - started)


async def measure(
    workers: list[ServedWorker], tasks: int, concurrency: int
) -> tuple[float, list[float], list[float]]:
    latencies: list[float] = []
    ends: list[float] = []
    queue = iter(range(tasks))
    n = len(workers)

    async def client(session: aiohttp.ClientSession) -> None:
        for number in queue:
            submit_to, follow_on = workers[number % n].base, workers[(number + 1) % n].base
            await one_task(session, submit_to, follow_on, latencies, ends)

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(one_task(session, w.base, w.base, [], []) for w in workers))  # warm up
        began = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    return tasks / elapsed, latencies, ends


async def run(args: argparse.Namespace) -> None:
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, python {platform.python_version()}")
    print(f"{args.tasks} tasks per row, {args.concurrency} in flight; scripted model, no sandbox started")
    print(
        f"{'workers':>7}  {'slots':>5}  {'tasks/s':>8}  {'p50 first event':>16}  {'p95 first event':>16}"
        f"  {'p50 end':>10}  {'p95 end':>10}"
    )
    with running_cluster(()) as cluster:
        async with ScriptedModelServer(default=Reply("ok")) as model:
            for count, slots in [(c, s) for c in args.workers for s in args.max_running]:
                async with cluster.fresh_database() as url:
                    workdir = Path(tempfile.mkdtemp(prefix="aw-scale-"))
                    env = worker_env(
                        model.base_url,
                        workdir / "data",
                        url,
                        os.environ.get("AGENT_SANDBOX_IMAGE", "agent-worker-sandbox:test"),
                        AGENT_LOG_LEVEL="warning",
                        AGENT_RATE_LIMIT_PER_MINUTE="0",
                        AGENT_RATE_LIMIT_CONCURRENCY="0",
                        AGENT_TASK_MAX_PER_USER="1000",
                        AGENT_MAX_RUNNING_TASKS=str(slots),
                    )
                    workers = [await serve(env, f"bench-scale-{count}-{n}") for n in range(count)]
                    try:
                        rate, latencies, ends = await measure(workers, args.tasks, args.concurrency)
                    finally:
                        for worker in workers:
                            worker.process.terminate()
                        for worker in workers:
                            await worker.process.wait()
                    p50, p95 = statistics.median(latencies) * 1000, pct(latencies, 0.95) * 1000
                    e50, e95 = statistics.median(ends) * 1000, pct(ends, 0.95) * 1000
                    print(
                        f"{count:>7}  {slots:>5}  {rate:>8.1f}  {p50:>13.1f} ms  {p95:>13.1f} ms"
                        f"  {e50:>7.1f} ms  {e95:>7.1f} ms"
                    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--max-running", type=int, nargs="+", default=[64, 2], help="slots per worker")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
