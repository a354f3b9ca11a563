"""Task API figures, from one run on this machine.

    AGENT_SANDBOX_IMAGE=agent-worker-sandbox:test .venv/bin/python bench/task_events.py [--tasks 1000]
        [--engine sqlite|postgresql]

1. Events stored per second: ``Store.append`` (one commit per event; SQLite: WAL), one writer and
   four concurrent tasks' writers.
2. Delivery latency (event appended → client has it), against a real ``agent-worker serve``
   process and a scripted model streaming a chunk every 20 ms: a plain poller (``from=``,
   sleep 0.5 s between polls) next to a long-poller (``wait=25``) and an SSE reader.
3. Worker memory (RSS) before and after ``--tasks`` finished tasks (each: a conversation, a
   message, a streamed answer of 20 chunks, polled to the end).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runtime.engine.events import TextChunk
from runtime.store import Store
from tests.fakes import Reply, ScriptedModelServer
from tests.postgres import running_cluster
from tests.served_worker import command, free_port, wait_healthy


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def events_per_second(target: str | Path, count: int) -> tuple[float, float]:
    async with Store.open(target) as store:
        await store.create_run("one", "bench", "task")
        started = time.perf_counter()
        for i in range(count):
            await store.append("one", TextChunk(iteration=1, content=f"chunk {i}"))
        single = count / (time.perf_counter() - started)
        for n in range(4):
            await store.create_run(f"c{n}", "bench", "task")

        async def writer(run_id: str) -> None:
            for i in range(count // 4):
                await store.append(run_id, TextChunk(iteration=1, content=f"chunk {i}"))

        started = time.perf_counter()
        await asyncio.gather(*(writer(f"c{n}") for n in range(4)))
        concurrent = (count // 4 * 4) / (time.perf_counter() - started)
    return single, concurrent


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def start_task(session: aiohttp.ClientSession, base: str) -> str:
    async with session.post(f"{base}/api/v1/messages", json={"message": "bench"}) as r:
        body = await r.json()
        assert r.status == 202, body
        return str(body["task_id"])


async def poll_latencies(
    session: aiohttp.ClientSession, base: str, task: str, wait: float, pause: float
) -> list[float]:
    latencies, offset = [], 0
    while True:
        async with session.get(f"{base}/api/v1/tasks/{task}", params={"from": offset, "wait": wait}) as r:
            body = await r.json()
            assert "data" in body, (r.status, body)
            data = body["data"]
        now = time.time()
        latencies += [now - e["timestamp"] for e in data["events"] if e["type"] == "text_chunk"]
        offset = data["next_offset"]
        if data["status"] != "running":
            return latencies
        if pause:
            await asyncio.sleep(pause)


async def sse_latencies(session: aiohttp.ClientSession, base: str, task: str) -> list[float]:
    latencies = []
    async with session.get(f"{base}/api/v1/tasks/{task}/events") as r:
        async for raw in r.content:
            line = raw.decode()
            if line.startswith("data: "):
                event = json.loads(line[6:])
                if event["type"] == "text_chunk":
                    latencies.append(time.time() - event["timestamp"])
    return latencies


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument(
        "--engine",
        choices=["sqlite", "postgresql"],
        default="sqlite",
        help="the store's engine; postgresql: a throwaway local cluster (tests/postgres.py), defaults kept",
    )
    args = parser.parse_args()
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, python {platform.python_version()}")
    print(f"store: {args.engine}")
    if args.engine == "sqlite":
        await run(args, None)
        return
    with running_cluster(()) as cluster:
        async with cluster.fresh_database() as events_url, cluster.fresh_database() as worker_url:
            await run(args, (events_url, worker_url))


async def run(args: argparse.Namespace, urls: tuple[str, str] | None) -> None:
    """The figures on SQLite files in a temporary directory, or on ``urls`` (one database for
    the events/s figures, one for the worker)."""
    workdir = Path(tempfile.mkdtemp(prefix="aw-bench-"))
    single, concurrent = await events_per_second(urls[0] if urls else workdir / "events.sqlite3", args.events)
    print(f"events stored per second, one writer          {single:9.0f}")
    print(f"events stored per second, 4 concurrent tasks  {concurrent:9.0f}")

    streamed = Reply("x" * 80, chunk_delay=0.02)  # 20 chunks of 4 characters, one every 20 ms
    async with ScriptedModelServer() as model:
        port = free_port()
        env = {
            **os.environ,
            "OPENAI_BASE_URL": model.base_url,
            "AGENT_DATA_DIR": str(workdir / "data"),
            **({"AGENT_DATABASE_URL": urls[1]} if urls else {}),
            # A long-poll answers per event: 20 a task, past the default 120 requests a minute.
            "AGENT_RATE_LIMIT_PER_MINUTE": "0",
            "AGENT_RATE_LIMIT_CONCURRENCY": "0",
            "AGENT_API_KEYS": "",
            "AGENT_LOG_LEVEL": "warning",
            "AGENT_SANDBOX_BASE_IMAGE": os.environ.get(
                "AGENT_SANDBOX_BASE_IMAGE", "agent-worker-base:bookworm"
            ),
            "AGENT_SANDBOX_IMAGE": os.environ.get("AGENT_SANDBOX_IMAGE", "agent-worker-sandbox:test"),
        }
        worker = await asyncio.create_subprocess_exec(
            *command(), "serve", "--port", str(port), env=env, stderr=asyncio.subprocess.DEVNULL
        )
        base = f"http://127.0.0.1:{port}"
        try:
            await wait_healthy(base, worker)
            async with aiohttp.ClientSession() as session:
                rounds = 10
                results: dict[str, list[float]] = {"poll": [], "long": [], "sse": []}
                for _ in range(rounds):
                    for kind in results:
                        model.add(streamed)
                        task = await start_task(session, base)
                        if kind == "poll":
                            results[kind] += await poll_latencies(session, base, task, 0, 0.5)
                        elif kind == "long":
                            results[kind] += await poll_latencies(session, base, task, 25, 0)
                        else:
                            results[kind] += await sse_latencies(session, base, task)
                labels = {
                    "poll": "plain poll (0.5 s sleep)",
                    "long": "long-poll (wait=25)",
                    "sse": "SSE stream",
                }
                for kind, samples in results.items():
                    print(
                        f"delivery latency, {labels[kind]:30s} p50 {pct(samples, 0.5) * 1000:7.1f} ms"
                        f"   p95 {pct(samples, 0.95) * 1000:7.1f} ms   (n={len(samples)})"
                    )

                before = rss_mb(worker.pid)
                started = time.perf_counter()
                for _ in range(args.tasks):
                    model.add(Reply("y" * 80))
                    task = await start_task(session, base)
                    await poll_latencies(session, base, task, 25, 0)
                elapsed = time.perf_counter() - started
                after = rss_mb(worker.pid)
                print(
                    f"{args.tasks} finished tasks in {elapsed:.1f} s ({args.tasks / elapsed:.0f} tasks/s, sequential)"
                )
                print(
                    f"worker RSS before / after {args.tasks} finished tasks  {before:.1f} MB / {after:.1f} MB"
                )
        finally:
            worker.terminate()
            await worker.wait()
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
