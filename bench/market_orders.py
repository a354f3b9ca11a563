"""Capability orders per second end to end, against a real ``agent-worker serve`` on one store engine.

    AGENT_SANDBOX_IMAGE=agent-worker-sandbox:test .venv/bin/python bench/market_orders.py
        [--orders 200] [--concurrency 8] [--engine sqlite|postgresql]

A seller publishes a public capability at 1 credit (no tools: the model answers at once); each
order is ``POST /api/v1/transactions`` (with an Idempotency-Key), followed with A2A
``tasks/sendSubscribe`` to its end, then ``GET /api/v1/transactions/{id}`` until the order is
settled (the price paid to the seller). The model is the scripted server of the tests, answering
instantly, so the figure is the worker's: escrow, task start, the agent loop's one model call,
events, settlement. Run by one client, then by ``--concurrency`` clients (each its own buyer); at
the end the seller's wallet must hold every order's price.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on the path: the repository instead, for the
# tests package.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402

import aiohttp  # noqa: E402

from tests.fakes import Reply, ScriptedModelServer  # noqa: E402
from tests.postgres import running_cluster  # noqa: E402
from tests.served_worker import command, free_port, wait_healthy  # noqa: E402

CAPABILITY = {
    "id": "bench-cap",
    "name": "Bench",
    "default_input": "answer",
    "allowed_tools": [],
    "visibility": "public",
    "price": 1,
}


def headers(user: str) -> dict[str, str]:
    return {"X-Api-Key": f"tok-{user}", "X-Platform-User-Id": user}


async def order(session: aiohttp.ClientSession, base: str, buyer: str) -> None:
    key = {"Idempotency-Key": str(uuid.uuid4())}
    body = {"capability_id": CAPABILITY["id"]}
    async with session.post(f"{base}/api/v1/transactions", json=body, headers=headers(buyer) | key) as r:
        placed = await r.json()
        assert r.status == 201, placed
    order_id = placed["data"]["id"]
    rpc = {"jsonrpc": "2.0", "id": "s", "method": "tasks/sendSubscribe", "params": {"id": order_id}}
    async with session.post(f"{base}/a2a", json=rpc, headers=headers(buyer)) as stream:
        async for raw in stream.content:
            line = raw.decode().strip()
            if line.startswith("data: "):
                status = json.loads(line[6:]).get("result", {}).get("status")
                if status in ("completed", "failed", "canceled"):
                    assert status == "completed", line
                    break
    while True:  # the order is settled right after its task ends
        async with session.get(f"{base}/api/v1/transactions/{order_id}", headers=headers(buyer)) as r:
            if (await r.json())["data"]["status"] == "completed":
                return
        await asyncio.sleep(0.005)


async def orders_per_second(base: str, total: int, clients: int) -> float:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients * 2)) as session:

        async def client(n: int) -> None:
            for _ in range(total // clients):
                await order(session, base, f"buyer{n}")

        started = time.perf_counter()
        await asyncio.gather(*(client(n) for n in range(clients)))
        return (total // clients * clients) / (time.perf_counter() - started)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
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
    workdir = Path(tempfile.mkdtemp(prefix="aw-bench-market-"))
    users = ["seller"] + [f"buyer{n}" for n in range(args.concurrency)]
    async with ScriptedModelServer() as model:
        model.extend([Reply("ok")] * (args.orders * 2 + 10))
        port = free_port()
        env = {
            **os.environ,
            "OPENAI_BASE_URL": model.base_url,
            "OPENAI_API_KEY": "bench",
            "AGENT_DATA_DIR": str(workdir / "data"),
            **({"AGENT_DATABASE_URL": database_url} if database_url else {}),
            "AGENT_API_KEYS": ",".join(f"{u}:tok-{u}" for u in users),
            "AGENT_SIGNUP_CREDITS": "1000000",
            "AGENT_RATE_LIMIT_PER_MINUTE": "0",
            "AGENT_RATE_LIMIT_CONCURRENCY": "0",
            "AGENT_LOG_LEVEL": "warning",
            "AGENT_SANDBOX_POOL_SIZE": "0",
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
                url = f"{base}/api/v1/capabilities"
                async with session.post(url, json=CAPABILITY, headers=headers("seller")) as r:
                    assert r.status == 201, await r.text()
            one = await orders_per_second(base, args.orders, 1)
            print(f"orders/s (order → task → settled), 1 client      {one:7.1f}")
            many = await orders_per_second(base, args.orders, args.concurrency)
            print(f"orders/s (order → task → settled), {args.concurrency} clients     {many:7.1f}")
            async with aiohttp.ClientSession() as session:
                async with session.get(f"{base}/api/v1/wallet", headers=headers("seller")) as r:
                    earned = (await r.json())["data"]["total_earned"]
            done = args.orders + args.orders // args.concurrency * args.concurrency
            assert earned == done, (earned, done)
            print(f"seller paid for all {done} orders: {earned} credits")
        finally:
            worker.terminate()
            await worker.wait()
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
