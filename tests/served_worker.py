"""Starting the installed ``agent-worker serve`` as a process: for the tests and the benchmarks."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import aiohttp

__all__ = [
    "SEED_CLIENTS",
    "ServedWorker",
    "command",
    "free_port",
    "run_seed_client",
    "serve",
    "wait_healthy",
    "worker_env",
]

SEED_CLIENTS = Path(__file__).parent / "seed_clients"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def worker_env(
    model_url: str, data_dir: Path, database_url: str | None, sandbox_image: str, **settings: str
) -> dict[str, str]:
    """The whole environment of a worker on the scripted model at ``model_url``, anonymous, with no
    warm sandboxes, running ``sandbox_image`` (built from the tests' base image): this process's,
    except that the database is ``database_url`` (unset: SQLite in ``data_dir``), never one the
    environment names; ``settings`` on top."""
    inherited = {name: value for name, value in os.environ.items() if name != "AGENT_DATABASE_URL"}
    return {
        **inherited,
        "OPENAI_BASE_URL": model_url,
        "AGENT_MODEL": "scripted-model",
        "AGENT_DATA_DIR": str(data_dir),
        **({"AGENT_DATABASE_URL": database_url} if database_url else {}),
        "AGENT_API_KEYS": "",
        "AGENT_SANDBOX_POOL_SIZE": "0",
        "AGENT_SANDBOX_IMAGE": sandbox_image,
        "AGENT_SANDBOX_BASE_IMAGE": os.environ.get("AGENT_SANDBOX_BASE_IMAGE", "agent-worker-base:bookworm"),
        **settings,
    }


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


@dataclass(frozen=True)
class ServedWorker:
    base: str  # http://127.0.0.1:port
    process: asyncio.subprocess.Process
    instance: str  # its AGENT_INSTANCE_ID


async def serve(env: dict[str, str], instance: str, log: Path | None = None) -> ServedWorker:
    """``agent-worker serve`` on a free port with ``env`` (the whole environment) and the instance
    id ``instance``, healthy; its output to ``log`` (default: discarded). The caller ends it."""
    port = free_port()
    out = log.open("wb") if log else None
    try:
        process = await asyncio.create_subprocess_exec(
            *command(),
            "serve",
            "--port",
            str(port),
            env={**env, "AGENT_INSTANCE_ID": instance},
            stdout=out or asyncio.subprocess.DEVNULL,
            stderr=out or asyncio.subprocess.DEVNULL,
        )
    finally:
        if out:
            out.close()
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_healthy(base, process)
    except BaseException:
        process.kill()
        await process.wait()
        raise
    return ServedWorker(base, process, instance)
