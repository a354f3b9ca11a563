"""Fixtures for the HTTP tests: the real app (real store, real containers) against a scripted model."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import Any

import docker
import pytest
from aiohttp.test_utils import TestClient

from api.app import create_app
from api.settings import Settings
from api.web.keys import STORE
from tests.conftest import BASE_IMAGE, assert_ledger_balanced, instance_containers
from tests.fakes import ScriptedModelServer
from tests.mounts import unmount_under
from tests.served_worker import command, free_port, wait_healthy, worker_env

SettingsMaker = Callable[..., Settings]
ClientMaker = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture
async def model_server() -> AsyncIterator[ScriptedModelServer]:
    async with ScriptedModelServer() as server:
        yield server


@pytest.fixture
def make_settings(
    tmp_path: Path,
    model_server: ScriptedModelServer,
    sandbox_image: str,
    instance_id: str,
    database_url: str | None,
) -> SettingsMaker:
    """Settings for a worker on this test's data dir, database, model server and container label."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "openai_base_url": model_server.base_url,
            "openai_api_key": "test-key",
            "model": "scripted-model",
            "model_max_retries": 2,
            "model_retry_base_delay": 0.01,
            "data_dir": tmp_path / "data",
            "database_url": database_url,
            "api_keys": "",
            "sandbox_image": sandbox_image,
            "sandbox_base_image": BASE_IMAGE,
            "instance_id": instance_id,
            "sandbox_memory_mb": 256,
            "sandbox_workspace_mb": 32,
            "sandbox_tmp_mb": 16,
            "sandbox_pool_size": 0,  # tests count containers; test_pool.py turns the pool on
        }
        return Settings(**{**values, **overrides})

    return make


@pytest.fixture
async def make_client(
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
    make_settings: SettingsMaker,
    docker_client: docker.DockerClient,
    instance_id: str,
    tmp_path: Path,
) -> AsyncIterator[ClientMaker]:
    """Starts the app with the given setting overrides; fails the test if a container or a
    workspace mount outlives it."""
    clients: list[TestClient[Any, Any]] = []

    async def make(**overrides: Any) -> TestClient[Any, Any]:
        client = await aiohttp_client(create_app(make_settings(**overrides)))
        clients.append(client)
        return client

    yield make
    for client in clients:  # shut the app down (its cleanup removes its sandboxes) before checking
        await client.close()
    left = instance_containers(docker_client, instance_id)
    for container in left:
        docker_client.api.remove_container(container["Id"], force=True)
    assert not left, f"containers left behind: {[c['Names'] for c in left]}"
    mounted = unmount_under(tmp_path)
    assert not mounted, f"workspace mounts left behind: {mounted}"


TWO_USER_KEYS = "alice:tok-a,bob:tok-b"
ALICE = {"Authorization": "Bearer tok-a"}
BOB = {"Authorization": "Bearer tok-b"}


@pytest.fixture
async def api(make_client: ClientMaker) -> TestClient[Any, Any]:
    """The app with two API users, alice (``ALICE`` headers) and bob (``BOB``)."""
    return await make_client(api_keys=TWO_USER_KEYS)


async def ok(response: Any) -> dict[str, Any]:
    """The body of a 200 ``{"success": true, ...}`` answer."""
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    assert body["success"] is True
    return body


async def failure(response: Any, status: int) -> str:
    """The reason of a ``{"success": false, "error"}`` answer with ``status``."""
    assert response.status == status, await response.text()
    body = await response.json()
    assert set(body) == {"success", "error"}
    assert body["success"] is False
    error: str = body["error"]
    return error


@pytest.fixture
async def client(make_client: ClientMaker) -> TestClient[Any, Any]:
    return await make_client()


Worker = tuple[str, asyncio.subprocess.Process]
StartWorker = Callable[..., Coroutine[Any, Any, Worker]]


@pytest.fixture
async def model() -> AsyncIterator[ScriptedModelServer]:
    async with ScriptedModelServer() as server:
        yield server


def worker_log(tmp_path: Path, number: int) -> Path:
    """Where ``start_worker`` puts the log of the ``number``-th worker it started (from 0)."""
    return tmp_path / f"worker-{number}.log"


@pytest.fixture
async def start_worker(
    tmp_path: Path,
    model: ScriptedModelServer,
    sandbox_image: str,
    instance_id: str,
    docker_client: docker.DockerClient,
    database_url: str | None,
) -> AsyncIterator[StartWorker]:
    """Starts ``agent-worker serve`` on one data directory and database, as often as a test asks."""
    processes: list[asyncio.subprocess.Process] = []

    async def start(**env_overrides: str) -> Worker:
        port = free_port()
        env = worker_env(
            model.base_url,
            tmp_path / "data",
            database_url,
            sandbox_image,
            AGENT_INSTANCE_ID=instance_id,
            AGENT_LOG_FORMAT="json",
            **env_overrides,
        )
        log = worker_log(tmp_path, len(processes)).open("wb")
        process = await asyncio.create_subprocess_exec(
            *command(), "serve", "--port", str(port), env=env, stdout=log, stderr=log
        )
        log.close()
        processes.append(process)
        base = f"http://127.0.0.1:{port}"
        await wait_healthy(base, process)
        return base, process

    yield start
    for process in processes:
        if process.returncode is None:
            process.kill()
            await process.wait()
    for container in instance_containers(docker_client, instance_id):
        docker_client.api.remove_container(container["Id"], force=True)
    unmount_under(tmp_path)  # a killed worker leaves its workspaces mounted, as a crash would


@pytest.fixture
async def make_platform(make_client: ClientMaker) -> AsyncIterator[ClientMaker]:
    """``make_client`` for the agent platform's tests: every app's ledger must balance at the end."""
    clients: list[TestClient[Any, Any]] = []

    async def make(**overrides: Any) -> TestClient[Any, Any]:
        client = await make_client(**overrides)
        clients.append(client)
        return client

    yield make
    for client in clients:  # before make_client closes them: their stores are still open
        await assert_ledger_balanced(client.app[STORE])


async def v1_ok(response: Any, status: int = 200) -> Any:
    """The ``data`` of a successful ``/v1`` answer (the envelope checked)."""
    assert response.status == status, await response.text()
    body = await response.json()
    assert set(body) == {"code", "message", "data", "timestamp"}
    assert body["code"] == 0
    datetime.fromisoformat(body["timestamp"])
    return body["data"]


async def v1_error(response: Any, status: int) -> str:
    """The message of a ``/v1`` error answer with ``status`` (the envelope checked)."""
    assert response.status == status, await response.text()
    body = await response.json()
    assert set(body) == {"code", "message", "data", "timestamp"}
    assert body["code"] == status and body["data"] is None
    datetime.fromisoformat(body["timestamp"])
    message: str = body["message"]
    return message
