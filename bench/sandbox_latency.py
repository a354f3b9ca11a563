"""Sandbox latency, side by side in one run on this machine.

Prints p50/p95 of ``execute_bash("true")``, ``execute_python("x = 1")`` (a fresh process per call)
and ``execute_python("x += 1")`` in a session's persistent interpreter (stateful mode) through our
sandbox layer (the in-container executor) next to a raw ``docker exec`` of the same command
(docker-py, the same container), and the cold start of a hardened sandbox (create + attach + start, until its
executor answers).

    .venv/bin/python bench/sandbox_latency.py [--runs 50] [--starts 10]

Uses AGENT_SANDBOX_IMAGE (default agent-worker-sandbox:test, built by the tests or the worker).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import time
import uuid

import docker

from sandbox.base import SandboxLimits, SandboxRequest
from sandbox.docker_engine.backend import DockerSandbox, DockerSandboxFactory


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


def _row(label: str, samples: list[float]) -> str:
    return f"{label:<50} p50 {_pct(samples, 0.5):8.2f} ms   p95 {_pct(samples, 0.95):8.2f} ms   (n={len(samples)})"


def _raw_exec(client: docker.DockerClient, container_id: str, cmd: list[str]) -> float:
    started = time.perf_counter()
    exec_id = client.api.exec_create(container_id, cmd, user="1000:1000")["Id"]
    client.api.exec_start(exec_id)
    assert client.api.exec_inspect(exec_id)["ExitCode"] == 0
    return time.perf_counter() - started


async def _ours(sandbox: DockerSandbox, tool: str, source: str) -> float:
    started = time.perf_counter()
    if tool == "bash":
        result = await sandbox.run_bash(source, 10)
    else:
        result = await sandbox.run_python(source, 10, session="bench" if tool == "python_stateful" else None)
    elapsed = time.perf_counter() - started
    assert result.exit_code == 0, result
    return elapsed


async def main(runs: int, starts: int) -> None:
    image = os.environ.get("AGENT_SANDBOX_IMAGE", "agent-worker-sandbox:test")
    client = docker.from_env()
    factory = DockerSandboxFactory(
        client, image, SandboxLimits(), instance_id=f"bench-{uuid.uuid4().hex[:8]}"
    )
    cases = {  # label -> (our tool, source, the same as a raw exec)
        "bash": ("bash", "true", ["true"]),
        "python": ("python", "x = 1", ["python3", "-c", "x = 1"]),
        "python_stateful": ("python_stateful", "x += 1", ["python3", "-c", "x = 0; x += 1"]),
    }
    try:
        ours: dict[str, list[float]] = {case: [] for case in cases}
        raw: dict[str, list[float]] = {case: [] for case in cases}
        pings: list[float] = []
        async with factory.open(SandboxRequest(owner="bench", run_id="latency")) as sandbox:
            await sandbox.run_python("x = 0", 10, session="bench")  # the stateful case's kernel and x
            for i in range(3 + runs):  # the first 3 warm both paths up
                for case, (tool, source, cmd) in cases.items():
                    ours_s = await _ours(sandbox, tool, source)
                    raw_s = await asyncio.to_thread(_raw_exec, client, sandbox.id, cmd)
                    if i >= 3:
                        ours[case].append(ours_s)
                        raw[case].append(raw_s)
                started = time.perf_counter()
                assert await sandbox.alive()  # one hello: the control stream alone, no process
                pings.append(time.perf_counter() - started)
        cold: list[float] = []
        for i in range(starts):
            started = time.perf_counter()
            async with factory.open(SandboxRequest(owner="bench", run_id=f"cold-{i}")):
                cold.append(time.perf_counter() - started)
        print(
            f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} cores, docker {client.version()['Version']}"
        )
        for case, (tool, source, cmd) in cases.items():
            name = "execute_bash" if tool == "bash" else "execute_python"
            where = "in a session's kernel" if tool == "python_stateful" else "via our executor"
            print(_row(f"{name}({source!r}) {where}", ours[case]))
            print(_row(f"raw docker exec {' '.join(cmd)!r} (docker-py)", raw[case]))
            ratio = statistics.median(ours[case]) / statistics.median(raw[case])
            print(f"{'ratio ours/raw (p50)':<50} {ratio:.2f}x")
        print(_row("executor round trip alone (alive(): hello)", pings[3:]))
        print(_row("cold sandbox start (until the executor answers)", cold))
    finally:
        await factory.reap_orphans()
        client.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--starts", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.starts))
