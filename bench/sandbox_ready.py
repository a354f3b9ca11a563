"""Sandbox ready for a new run: a warm-pool hit next to a cold start; and an idle sandbox's memory.

    AGENT_SANDBOX_IMAGE=agent-worker-sandbox:test .venv/bin/python bench/sandbox_ready.py [--runs 20]

1. Until a sandbox can take its first command, p50/p95: claimed from a warm pool
   (:class:`sandbox.pool.WarmPool`, a spare's executor already answering; the claim includes one
   ``alive()`` round trip) next to a cold create + attach + start of the same hardened container,
   until its executor answers.
2. An idle sandbox's memory, as its cgroup counts it (``memory.usage_in_bytes``, from the engine's
   stats; ``rss`` and page ``cache`` are its parts), a few seconds after start.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import docker
import structlog

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sandbox.base import SandboxLimits, SandboxRequest
from sandbox.docker_engine.backend import DockerSandboxFactory
from sandbox.pool import WarmPool


def pct_ms(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


def row(label: str, samples: list[float]) -> str:
    return f"{label:<58} p50 {pct_ms(samples, 0.5):8.2f} ms   p95 {pct_ms(samples, 0.95):8.2f} ms   (n={len(samples)})"


async def until(check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("the pool never filled")
        await asyncio.sleep(0.02)


async def main(runs: int, idle: int) -> None:
    image = os.environ.get("AGENT_SANDBOX_IMAGE", "agent-worker-sandbox:test")
    client = docker.from_env()
    factory = DockerSandboxFactory(
        client, image, SandboxLimits(), instance_id=f"bench-{uuid.uuid4().hex[:8]}"
    )
    try:
        cold: list[float] = []
        for i in range(runs):
            started = time.perf_counter()
            async with factory.open(SandboxRequest(owner="bench", run_id=f"cold-{i}")):
                cold.append(time.perf_counter() - started)
        warm: list[float] = []
        async with WarmPool(factory, 1) as pool:
            for i in range(runs):
                await until(lambda: pool.ready == 1)
                await asyncio.sleep(0.3)  # let the previous claim's removal finish: measure the claim alone
                started = time.perf_counter()
                async with pool.open(SandboxRequest(owner="bench", run_id=f"warm-{i}")):
                    warm.append(time.perf_counter() - started)
        memory: list[tuple[float, float, float]] = []
        for i in range(idle):
            async with factory.open(SandboxRequest(owner="bench", run_id=f"idle-{i}")) as sandbox:
                await asyncio.sleep(3)
                stats = await asyncio.to_thread(client.api.stats, sandbox.id, stream=False)
                mem = stats["memory_stats"]
                parts = mem.get("stats", {})
                mib = 2**20
                memory.append((mem["usage"] / mib, parts.get("rss", 0) / mib, parts.get("cache", 0) / mib))
        print(
            f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} cores, docker {client.version()['Version']}"
        )
        print(row("sandbox ready, warm-pool hit (claim + alive())", warm))
        print(row("sandbox ready, cold create + attach + start (baseline)", cold))
        ratio = statistics.median(warm) / statistics.median(cold)
        print(f"{'ratio pool hit / cold (p50, goal <= 0.05x)':<58} {ratio:.3f}x")
        usage, rss, cache = (statistics.median(m[i] for m in memory) for i in range(3))
        print(
            f"{'idle sandbox memory, cgroup usage (goal <= 30 MB), median':<58} {usage:.1f} MB "
            f"(rss {rss:.1f} MB, cache {cache:.1f} MB; n={len(memory)})"
        )
    finally:
        await factory.reap_orphans()
        client.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--idle", type=int, default=3)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    asyncio.run(main(args.runs, args.idle))
