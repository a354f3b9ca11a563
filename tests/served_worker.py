"""Starting the installed ``agent-worker serve`` as a process: for the tests and the benchmarks."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sys
from pathlib import Path

import aiohttp

__all__ = ["SEED_CLIENTS", "command", "free_port", "run_seed_client", "wait_healthy"]

SEED_CLIENTS = Path(__file__).parent / "seed_clients"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def command() -> list[str]:
    """The console script of this venv (or the module, when the package is not installed)."""
    installed = shutil.which("agent-worker", path=str(Path(sys.executable).parent))
    return [installed] if installed else [sys.executable, "-m", "api.cli"]


async def wait_healthy(base: str, process: asyncio.subprocess.Process) -> None:
    """Until ``GET /health`` answers 200; fails if the process exits or 30 s pass."""
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            if process.returncode is not None:
                raise AssertionError(f"worker exited with {process.returncode}")
            try:
                async with session.get(f"{base}/health") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("worker never became healthy")


async def run_seed_client(argv: list[str], env: dict[str, str], timeout: float = 120) -> str:
    """Run one of the seeds' own clients with ``env`` added; its stdout, once it exited 0."""
    process = await asyncio.create_subprocess_exec(
        *argv, env={**os.environ, **env}, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode == 0, err.decode()
    return out.decode()
