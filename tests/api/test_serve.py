"""The installed ``agent-worker serve`` process, end to end: start-up, orphan reaping, /chat, SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Any

import aiohttp
import docker
import pytest

from sandbox.docker_engine.backend import LABEL, LABEL_INSTANCE
from tests.api.conftest import StartWorker, worker_log
from tests.conftest import instance_containers
from tests.fakes import Call, Reply, ScriptedModelServer, ToolCalls
from tests.sandbox.test_pool import eventually


@pytest.fixture
async def orphans(docker_client: docker.DockerClient, sandbox_image: str, instance_id: str) -> list[str]:
    """Containers a previous instance left behind: one created, one running, one exited."""
    labels = {LABEL: "1", LABEL_INSTANCE: instance_id}
    created = docker_client.containers.create(sandbox_image, "sleep 300", labels=labels, network_mode="none")
    running = docker_client.containers.run(
        sandbox_image, "sleep 300", labels=labels, network_mode="none", detach=True
    )
    exited = docker_client.containers.run(
        sandbox_image, "true", labels=labels, network_mode="none", detach=True
    )
    exited.wait()
    return [created.id, running.id, exited.id]


def log_lines(path: Path) -> list[dict[str, Any]]:
    lines = []
    for line in path.read_text().splitlines():
        try:
            lines.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return lines


async def test_worker_reaps_orphans_serves_chat_and_stops_cleanly(
    orphans: list[str],
    start_worker: StartWorker,
    model: ScriptedModelServer,
    docker_client: docker.DockerClient,
    instance_id: str,
    tmp_path: Path,
) -> None:
    base, process = await start_worker(OPENAI_API_KEY="test-key")

    assert instance_containers(docker_client, instance_id) == []  # all three orphans removed

    model.extend([ToolCalls([Call("execute_bash", {"command": "echo from-sandbox"})]), Reply("done")])
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{base}/chat", json={"message": "go"}) as response:
            assert response.status == 200
            body = await response.json()
    assert body["response"] == "done"
    assert body["logs"][1]["result"]["stdout"] == "from-sandbox\n"
    # The run's sandbox is removed just after the answer.
    await eventually(lambda: instance_containers(docker_client, instance_id) == [])

    process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(process.wait(), 30) == 0

    events = log_lines(worker_log(tmp_path, 0))
    ready = next(e for e in events if e["event"] == "sandbox_ready")
    assert ready["orphans_removed"] == 3
    (iteration_1, iteration_2) = [e for e in events if e["event"] == "iteration"]
    assert iteration_1["run_id"] == body["id"]
    assert iteration_1["tools"][0]["tool"] == "execute_bash"
    assert iteration_1["prompt_tokens"] == 10
    assert "request_id" in iteration_2
