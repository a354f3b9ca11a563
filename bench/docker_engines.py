"""Sandboxes and files on a second Docker engine reached over TLS, next to the local engine, in one run.

Starts a second ``dockerd`` on this machine (tests/second_engine.py: needs root), reached over TLS
with client certificates on a loopback port and keeping workspaces in Docker volumes, as an
engine on another host does; the host's engine keeps them in host directories (bind mounts). For
each: a workspace sandbox's cold start, ``execute_bash("true")``, and the files API's work on a
workspace (list 200 files, download and upload 1 MiB) through ``WorkspaceFiles`` (host directory)
and ``RemoteWorkspaceFiles`` (the volume, through the sandbox). Also what placement costs per
sandbox start with two engines: probing both (a ping and a container count each).

    sudo .venv/bin/python -m bench.docker_engines [--runs 30] [--starts 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from pathlib import Path

import docker

from runtime.workspaces.files import WorkspaceFiles
from runtime.workspaces.remote_files import FileStore, RemoteWorkspaceFiles
from sandbox.base import Sandbox, SandboxLimits, SandboxRequest
from sandbox.docker_engine.engines import EngineConfig, Engines, open_engines
from tests.second_engine import SecondEngine

MB = 1024 * 1024


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


def _row(label: str, samples: list[float]) -> str:
    return f"{label:<58} p50 {_pct(samples, 0.5):8.2f} ms   p95 {_pct(samples, 0.95):8.2f} ms   (n={len(samples)})"


async def _timed(samples: list[float], work: Awaitable[object]) -> None:
    started = time.perf_counter()
    await work
    samples.append(time.perf_counter() - started)


async def _engine(engines: Engines, name: str, directory: Path, runs: int, starts: int) -> None:
    engine = engines.get(name)
    assert engine is not None
    volume = f"aw-bench-{name}" if engine.config.files == "volume" else None
    request = SandboxRequest(
        owner="bench", run_id=f"workspace:bench-{name}", engine=name,
        workspace_dir=None if volume else directory, workspace_volume=volume,
    )  # fmt: skip
    cold: list[float] = []
    for _ in range(starts):
        started = time.perf_counter()
        async with engines.open(request) as sandbox:
            cold.append(time.perf_counter() - started)
    async with engines.open(request) as sandbox:
        bash: list[float] = []
        for _ in range(runs):
            await _timed(bash, sandbox.run_bash("true", 10))
        await sandbox.run_bash("mkdir -p many && for i in $(seq 200); do echo $i > many/f$i; done", 30)
        await sandbox.run_bash("head -c 1048576 /dev/urandom > big.bin", 30)

        files: FileStore = (
            RemoteWorkspaceFiles(_lease_of(sandbox), f"volume {volume}")
            if volume
            else WorkspaceFiles(directory)
        )
        listing: list[float] = []
        download: list[float] = []
        upload: list[float] = []
        payload = os.urandom(MB)
        for _ in range(runs):
            await _timed(listing, files.list_tree("many"))
            await _timed(download, files.read_file("big.bin", 0, 2 * MB))
            await _timed(upload, files.write_file("up/one.bin", payload))
    where = "volume over TLS" if volume else "host directory"
    print(_row(f"[{name}: {where}] workspace sandbox cold start", cold))
    print(_row(f'[{name}] execute_bash("true")', bash))
    print(_row(f"[{name}] files: list 200 files", listing))
    print(_row(f"[{name}] files: download 1 MiB", download))
    print(_row(f"[{name}] files: write 1 MiB", upload))
    if volume:
        await asyncio.to_thread(engine.client.api.remove_volume, volume, True)


def _lease_of(sandbox: Sandbox) -> Callable[[], AbstractAsyncContextManager[Sandbox]]:
    """The one sandbox the benchmark holds open, as the workspace's lease would hand it out."""

    @asynccontextmanager
    async def lease() -> AsyncIterator[Sandbox]:
        yield sandbox

    return lease


async def _measure(second: SecondEngine, image: str, runs: int, starts: int) -> None:
    configs = [
        EngineConfig(name="one", url=os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")),
        EngineConfig.model_validate({"name": "two", "url": second.tls_url, "tls": second.tls}),
    ]
    limits = SandboxLimits(memory_mb=256, workspace_size_mb=32, tmp_size_mb=16)
    async with AsyncExitStack() as stack:
        engines = await stack.enter_async_context(
            open_engines(
                configs, image=image, base_image=None, limits=limits, instance_id="bench-engines", pool_size=0
            )
        )
        stack.push_async_callback(engines.reap_orphans)
        probe: list[float] = []
        for _ in range(runs):
            await _timed(probe, engines.engines())
        print(_row("placement: probe both engines (ping + count each)", probe))
        with tempfile.TemporaryDirectory() as directory:
            await _engine(engines, "one", Path(directory), runs, starts)
        await _engine(engines, "two", Path("/nonexistent"), runs, starts)


def main(runs: int, starts: int) -> None:
    image = os.environ.get("AGENT_SANDBOX_IMAGE", "agent-worker-sandbox:test")
    local = docker.from_env()
    root = Path(tempfile.mkdtemp(prefix="aw-bench2-", dir="/tmp"))
    second = SecondEngine(root, local.info().get("Driver") or "overlay2")
    print(f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}")
    try:
        second.start()
        second.load_image(local, image)
        asyncio.run(_measure(second, image, runs, starts))
    finally:
        second.stop()
        for mounted in ("exec", "data"):
            subprocess.run(["umount", "-R", str(root / mounted)], capture_output=True, check=False)
        shutil.rmtree(root, ignore_errors=True)
        local.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--starts", type=int, default=10)
    args = parser.parse_args()
    main(args.runs, args.starts)
