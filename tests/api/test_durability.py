"""Restart durability of the served worker: SIGKILL mid-task, and SIGTERM draining."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import aiohttp
import docker
import pytest

from tests.api.conftest import StartWorker
from tests.api.test_tasks import wait_for_process
from tests.conftest import instance_containers
from tests.fakes import Call, Reply, ScriptedModelServer, ToolCalls

pytestmark = pytest.mark.both_engines  # what survives a restart is what the store kept: both engines


async def call(method: str, url: str, body: Any = None, status: int = 200) -> Any:
    async with aiohttp.ClientSession() as session, session.request(method, url, json=body) as response:
        assert response.status == status, await response.text()
        return await response.json()


async def start_long_task(base: str, model: ScriptedModelServer) -> str:
    model.add(ToolCalls([Call("execute_bash", {"command": "sleep 300"})]))
    conversation = await call("POST", f"{base}/api/v1/conversations")
    accepted = await call(
        "POST",
        f"{base}/api/v1/messages",
        {"conversation_id": conversation["conversation_id"], "message": "x"},
        202,
    )
    task_id: str = accepted["task_id"]
    for _ in range(200):
        data = (await call("GET", f"{base}/api/v1/tasks/{task_id}"))["data"]
        if any(e["type"] == "tool_call" for e in data["events"]):
            return task_id
        await asyncio.sleep(0.05)
    raise AssertionError("the tool call never started")


async def test_sigkill_mid_task_then_restart(
    start_worker: StartWorker,
    model: ScriptedModelServer,
    docker_client: docker.DockerClient,
    instance_id: str,
) -> None:
    base, process = await start_worker()
    model.add(Reply("finished first"))
    conversation = await call("POST", f"{base}/api/v1/conversations")
    done = await call(
        "POST",
        f"{base}/api/v1/messages",
        {"conversation_id": conversation["conversation_id"], "message": "a"},
        202,
    )
    for _ in range(100):
        finished = (await call("GET", f"{base}/api/v1/tasks/{done['task_id']}"))["data"]
        if finished["status"] == "completed":
            break
        await asyncio.sleep(0.05)
    running = await start_long_task(base, model)
    await wait_for_process(docker_client, instance_id, "sleep 300")

    process.send_signal(signal.SIGKILL)
    await process.wait()
    base, _ = await start_worker()

    assert instance_containers(docker_client, instance_id) == []  # the orphan sandbox is gone
    after = (await call("GET", f"{base}/api/v1/tasks/{done['task_id']}"))["data"]
    assert after["status"] == "completed"
    assert after["events"] == finished["events"]  # unchanged, offsets and all
    interrupted = (await call("GET", f"{base}/api/v1/tasks/{running}"))["data"]
    assert interrupted["status"] == "failed"
    assert interrupted["events"][-1]["type"] == "run_failed"
    assert "interrupted" in interrupted["events"][-1]["data"]["error"]
    offsets = [e["offset"] for e in interrupted["events"]]
    assert offsets == list(range(len(offsets)))


async def test_sigterm_drains_then_interrupts(
    start_worker: StartWorker,
    model: ScriptedModelServer,
    docker_client: docker.DockerClient,
    instance_id: str,
) -> None:
    base, process = await start_worker(AGENT_SHUTDOWN_GRACE="1")
    running = await start_long_task(base, model)
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{base}/api/v1/tasks/{running}/events") as stream,
    ):
        await stream.content.readline()  # the stream is open and following the task

        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0
        rest = (await stream.content.read()).decode()
    assert "event: run_failed" in rest  # the open stream got the final event before the exit

    assert instance_containers(docker_client, instance_id) == []
    base, _ = await start_worker()
    data = (await call("GET", f"{base}/api/v1/tasks/{running}"))["data"]
    assert data["status"] == "failed"
    assert data["events"][-1]["data"]["error"] == "interrupted: the worker stopped before the task finished"
    assert [e["type"] for e in data["events"]].count("run_failed") == 1  # written by the drain, once
