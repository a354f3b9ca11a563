"""Task marketplace figures (/v1/tasks), against a real ``agent-worker serve`` on one store engine.

    AGENT_SANDBOX_IMAGE=agent-worker-sandbox:test .venv/bin/python bench/platform_lifecycle.py
        [--lifecycles 300] [--concurrency 8] [--accept-rounds 5] [--engine sqlite|postgresql]

1. Full lifecycles per second: publish → accept → complete → rate (POST /v1/trust/rate), each a
   sequence of four HTTP requests by two nodes; run by one client, then by ``--concurrency``
   clients at once (each with its own publisher and acceptor).
2. 200 concurrent accepts of one task by 200 different nodes: how long until all 200 are
   answered (p50 and max over ``--accept-rounds`` tasks), and that exactly one won each time.

Per-key rate limits are off (the figures are the store's and the worker's, not the limiter's);
the worker logs at warning. PostgreSQL: a throwaway local cluster with its default durability.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on the path: the repository instead, for the
# tests package.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse  # noqa: E402
import asyncio  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import aiohttp  # noqa: E402

from tests.postgres import running_cluster  # noqa: E402
from tests.served_worker import command, free_port, wait_healthy  # noqa: E402

ACCEPTORS = 200
TASK = {"title": "bench", "description": "bench", "required_capabilities": ["bench"], "budget": 1}


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def bearer(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer tok-{user}"}


async def call(session: aiohttp.ClientSession, method: str, url: str, user: str, body: Any = None) -> Any:
    async with session.request(method, url, json=body, headers=bearer(user)) as response:
        payload = await response.json()
        assert response.status in (200, 201), payload
        return payload["data"]


async def lifecycle(session: aiohttp.ClientSession, base: str, publisher: str, acceptor: str) -> None:
    task = await call(session, "POST", f"{base}/v1/tasks", publisher, TASK)
    url = f"{base}/v1/tasks/{task['task_id']}"
    await call(session, "PUT", f"{url}/accept", acceptor)
    await call(session, "PUT", f"{url}/complete", acceptor, {"deliverables": {"report": "r"}})
    rating = {"agent_id": acceptor, "task_id": task["task_id"], "quality_score": 4.5, "on_time": True}
    await call(session, "POST", f"{base}/v1/trust/rate", publisher, rating)


async def lifecycles_per_second(base: str, total: int, clients: int) -> float:
    async with aiohttp.ClientSession() as session:

        async def client(n: int) -> None:
            for _ in range(total // clients):
                await lifecycle(session, base, f"pub{n}", f"acc{n}")

        started = time.perf_counter()
        await asyncio.gather(*(client(n) for n in range(clients)))
        return (total // clients * clients) / (time.perf_counter() - started)


async def concurrent_accepts(base: str, rounds: int) -> list[float]:
    durations = []
    connector = aiohttp.TCPConnector(limit=ACCEPTORS)
    async with aiohttp.ClientSession(connector=connector) as session:
        for _ in range(rounds):
            task = await call(session, "POST", f"{base}/v1/tasks", "pub0", TASK)
            url = f"{base}/v1/tasks/{task['task_id']}/accept"

            async def accept(n: int, url: str = url) -> int:
                async with session.put(url, headers=bearer(f"n{n}")) as response:
                    await response.read()
                    return response.status

            started = time.perf_counter()
            statuses = await asyncio.gather(*(accept(n) for n in range(ACCEPTORS)))
            durations.append(time.perf_counter() - started)
            assert sorted(set(statuses)) == [200, 409] and statuses.count(200) == 1, statuses
            winner = f"n{statuses.index(200)}"
            await call(session, "PUT", url.replace("/accept", "/complete"), winner, {"deliverables": {}})
    return durations


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lifecycles", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--accept-rounds", type=int, default=5)
    parser.add_argument("--engine", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    print(f"machine: {os.uname().machine} {os.cpu_count()} cores, python {sys.version.split()[0]}")
    print(f"store: {args.engine}")
    if args.engine == "sqlite":
        await run(args, None)
        return
    with running_cluster(()) as cluster:
        async with cluster.fresh_database() as url:
            await run(args, url)


async def run(args: argparse.Namespace, database_url: str | None) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="aw-bench-platform-"))
    users = [f"pub{n}" for n in range(args.concurrency)] + [f"acc{n}" for n in range(args.concurrency)]
    users += [f"n{n}" for n in range(ACCEPTORS)]
    port = free_port()
    env = {
        **os.environ,
        "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",  # no model call is made
        "AGENT_DATA_DIR": str(workdir / "data"),
        **({"AGENT_DATABASE_URL": database_url} if database_url else {}),
        "AGENT_API_KEYS": ",".join(f"{u}:tok-{u}" for u in users),
        "AGENT_SIGNUP_CREDITS": "1000000",
        "AGENT_RATE_LIMIT_PER_MINUTE": "0",
        "AGENT_RATE_LIMIT_CONCURRENCY": "0",
        "AGENT_LOG_LEVEL": "warning",
        "AGENT_SANDBOX_POOL_SIZE": "0",
        "AGENT_SANDBOX_BASE_IMAGE": os.environ.get("AGENT_SANDBOX_BASE_IMAGE", "agent-worker-base:bookworm"),
        "AGENT_SANDBOX_IMAGE": os.environ.get("AGENT_SANDBOX_IMAGE", "agent-worker-sandbox:test"),
    }
    worker = await asyncio.create_subprocess_exec(
        *command(), "serve", "--port", str(port), env=env, stderr=asyncio.subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_healthy(base, worker)
        one = await lifecycles_per_second(base, args.lifecycles, 1)
        print(f"lifecycles/s (publish→accept→complete→rate), 1 client      {one:7.1f}")
        many = await lifecycles_per_second(base, args.lifecycles, args.concurrency)
        print(f"lifecycles/s (publish→accept→complete→rate), {args.concurrency} clients     {many:7.1f}")
        durations = await concurrent_accepts(base, args.accept_rounds)
        print(
            f"{ACCEPTORS} concurrent accepts of one task: exactly one winner in each of {len(durations)} rounds;"
            f" all answered in p50 {pct(durations, 0.5) * 1000:.0f} ms, max {max(durations) * 1000:.0f} ms"
        )
    finally:
        worker.terminate()
        await worker.wait()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
