"""Sandboxes on two real Docker engines (AGENT_DOCKER_HOSTS): the host's, and a second ``dockerd``.

Engine ``one`` is the host's engine with host directories (bind mounts); engine ``two`` is the
second engine (:mod:`tests.second_engine`), reached over TLS with client certificates on a
loopback port, with its workspaces in Docker volumes, as an engine on another host is. Placement by capacity, the files API over a volume, failover when engine two is
stopped, and a warm pool on each.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from aiohttp.test_utils import TestClient
from pydantic import ValidationError

from api.settings import Settings
from api.web.keys import SANDBOX_POOL, WORKSPACES
from runtime.errors import ConflictError, InputError, NotFoundError
from sandbox.base import SandboxLimits
from sandbox.docker_engine.backend import LABEL_INSTANCE, LABEL_POOL
from sandbox.docker_engine.engines import EngineConfig, open_engines
from tests.api.conftest import ALICE, TWO_USER_KEYS, ClientMaker, ok
from tests.api.test_files import download, listing, upload
from tests.api.test_tasks import follow, get, start
from tests.conftest import BASE_IMAGE
from tests.fakes import Call, Reply, ScriptedModelServer, ToolCalls
from tests.second_engine import SecondEngine, second_engine  # noqa: F401 (the fixture)

Client = TestClient[Any, Any]
LOCAL_URL = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")


@pytest.fixture
def engine_two(second_engine: SecondEngine, instance_id: str) -> Iterator[SecondEngine]:  # noqa: F811
    """The second engine, running, with nothing of this test's left on it afterwards."""
    if not second_engine.running:
        second_engine.start()
    yield second_engine
    if not second_engine.running:
        second_engine.start()
    second_engine.remove_everything()


def hosts(two: SecondEngine, one_capacity: int | None = None, two_capacity: int | None = None) -> str:
    return json.dumps(
        [
            {"name": "one", "url": LOCAL_URL, "capacity": one_capacity},
            # Over TLS on a loopback port, as an engine on another host: its files are volumes.
            {"name": "two", "url": two.tls_url, "tls": two.tls, "capacity": two_capacity},
        ]
    )


async def run(api: Client, model: ScriptedModelServer, ws: str, command: str) -> list[dict[str, Any]]:
    """One task in ``ws`` that runs ``command`` and answers; its events."""
    model.extend([ToolCalls([Call("execute_bash", {"command": command})]), Reply("done")])
    started = await start(api, ws=ws)
    status, events = await follow(api, started["task_id"])
    assert status == "completed", events
    return events


def stdout_of(events: list[dict[str, Any]]) -> str:
    result: str = next(e for e in events if e["type"] == "tool_result")["data"]["stdout"]
    return result


def instance_containers(client: docker.DockerClient, instance_id: str, *labels: str) -> list[Any]:
    found: list[Any] = client.api.containers(
        all=True, filters={"label": [f"{LABEL_INSTANCE}={instance_id}", *labels]}
    )
    return found


async def make_workspace(api: Client, ws: str) -> None:
    await ok(await api.post("/api/v1/workspaces", json={"workspace_id": ws}, headers=ALICE))


async def test_placement_by_capacity_and_files_on_the_volume_engine(
    make_client: ClientMaker,
    model_server: ScriptedModelServer,
    engine_two: SecondEngine,
    instance_id: str,
) -> None:
    api = await make_client(api_keys=TWO_USER_KEYS, docker_hosts=hosts(engine_two, 1, 1))
    for ws in ("first", "second"):
        await make_workspace(api, ws)

    # Both empty: the first workspace goes to the first engine listed, and its sandbox fills it.
    await run(api, model_server, "first", "echo on-one")
    first = (await get(api, "/api/v1/workspaces/first"))["placement"]
    assert (first["engine"], first["volume"], first["lost"]) == ("one", None, None)

    # Engine one is full (its one sandbox idles there): the next workspace goes to engine two.
    await run(
        api,
        model_server,
        "second",
        "echo remote > out.txt && mkdir -p sub && printf x > sub/y && ln -s /etc/passwd link",
    )
    second = (await get(api, "/api/v1/workspaces/second"))["placement"]
    assert second["engine"] == "two" and second["volume"].startswith("aw-ws-")
    with engine_two.client() as two:
        assert len(instance_containers(two, instance_id)) == 1
        assert (
            two.volumes.get(second["volume"]).attrs["Labels"]["agent-worker.workspace"] == "workspace:second"
        )

    # The files API over the volume on engine two: list, download, upload, and the same refusals.
    prefix = "/api/v1/workspaces/second"
    entries = await listing(api, prefix)
    assert ("out.txt", "file", 7) in entries and ("sub/y", "file", 1) in entries
    assert ("link", "symlink", 0) in entries and ("sub", "dir", 0) in entries
    assert await download(api, "out.txt", prefix) == b"remote\n"
    refused = await api.get(f"{prefix}/files/download", params={"path": "link"}, headers=ALICE)
    assert refused.status == 400 and "symlink" in (await refused.json())["error"]
    missing = await api.get(f"{prefix}/files/download", params={"path": "nothing"}, headers=ALICE)
    assert missing.status == 404
    assert (await ok(await upload(api, "up.txt", b"uploaded\x00bytes", prefix, path="in/here")))["path"] == (
        "user_upload/in/here/up.txt"
    )
    assert await download(api, "user_upload/in/here/up.txt", prefix) == b"uploaded\x00bytes"
    # What MCP's file tools use: a write making its directories, a read from an offset, refusals.
    files = await api.app[WORKSPACES].files("alice", "second")
    assert await files.write_file("deep/er/new.txt", b"written") == "deep/er/new.txt"
    assert await files.read_file("deep/er/new.txt", 3, 100) == (b"tten", 7)
    with pytest.raises(ConflictError, match="sub is a directory"):
        await files.write_file("sub", b"x")
    with pytest.raises(InputError, match="link is a symlink"):
        await files.list_tree("link")
    with pytest.raises(NotFoundError):
        await files.list_tree("nowhere")
    # The agent sees the upload, owned by its user, in the same volume.
    events = await run(api, model_server, "second", "stat -c '%u %s' user_upload/in/here/up.txt")
    assert stdout_of(events) == "1000 14\n"


# docker-py leaves the socket of each connection a stopped engine refused for the collector to close.
@pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <socket.socket:pytest.PytestUnraisableExceptionWarning"
)
async def test_failover_when_the_volume_engine_is_stopped(
    make_client: ClientMaker,
    model_server: ScriptedModelServer,
    engine_two: SecondEngine,
) -> None:
    # Engine two has no limit: it has the most room, and takes the workspace.
    api = await make_client(api_keys=TWO_USER_KEYS, docker_hosts=hosts(engine_two, 1, None))
    await make_workspace(api, "moving")
    await run(api, model_server, "moving", "echo precious > kept.txt")
    before = (await get(api, "/api/v1/workspaces/moving"))["placement"]
    assert before["engine"] == "two"

    engine_two.stop()
    # The next task in "moving" runs on engine one, without the files the volume on two held.
    events = await run(api, model_server, "moving", "ls -A; echo ran")
    assert stdout_of(events) == "ran\n"
    moved = [e["data"] for e in events if e["type"] == "workspace_moved"]  # the task says so too
    assert moved == [
        {
            "engine": "one",
            "lost_engine": "two",
            "lost_volume": before["volume"],
            "reason": moved[0]["reason"] if moved else None,
        }
    ]
    assert "engine two unreachable" in moved[0]["reason"]
    after = (await get(api, "/api/v1/workspaces/moving"))["placement"]
    assert after["engine"] == "one" and after["volume"] is None
    lost = after["lost"]
    assert (lost["engine"], lost["volume"]) == ("two", before["volume"])
    assert "engine two unreachable" in lost["reason"]
    assert await listing(api, "/api/v1/workspaces/moving") == []
    gc.collect()  # the sockets docker-py left of refused connections, collected under this test's filter


async def test_warm_pool_on_each_engine(
    make_client: ClientMaker,
    model_server: ScriptedModelServer,
    engine_two: SecondEngine,
    docker_client: docker.DockerClient,
    instance_id: str,
) -> None:
    client = await make_client(docker_hosts=hosts(engine_two), sandbox_pool_size=1)

    def spares() -> tuple[set[str], set[str]]:
        with engine_two.client() as two:
            on_two = {c["Id"] for c in instance_containers(two, instance_id, f"{LABEL_POOL}=1")}
        on_one = {c["Id"] for c in instance_containers(docker_client, instance_id, f"{LABEL_POOL}=1")}
        return on_one, on_two

    for _ in range(600):  # each engine's pool starts its spare
        if [len(ids) for ids in spares()] == [1, 1]:
            break
        await asyncio.sleep(0.1)
    before = spares()
    assert [len(ids) for ids in before] == [1, 1]
    for _ in range(600):  # engine one's spare has answered its first command: it is ready
        if client.app[SANDBOX_POOL].ready == 1:
            break
        await asyncio.sleep(0.1)

    model_server.extend([ToolCalls([Call("execute_bash", {"command": "echo warm"})]), Reply("warm")])
    assert (await ok_chat(client))["response"] == "warm"
    # The run had a spare: it is removed behind the answer, and its engine's pool starts another.
    for _ in range(600):
        now = spares()
        if [len(ids) for ids in now] == [1, 1] and (now[0] != before[0]) != (now[1] != before[1]):
            break
        await asyncio.sleep(0.1)
    assert [len(ids) for ids in now] == [1, 1]
    assert (now[0] != before[0]) != (now[1] != before[1])  # one engine's spare was claimed


async def ok_chat(client: Client) -> dict[str, Any]:
    response = await client.post("/chat", json={"message": "go", "max_iterations": 3})
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    assert body["error"] is None, body
    return body


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("not json", "AGENT_DOCKER_HOSTS is not valid JSON"),
        ("[]", "AGENT_DOCKER_HOSTS lists no engine"),
        ('[{"name": "a", "url": "http://h"}]', "url must start with unix://, tcp:// or ssh://"),
        ('[{"name": "a", "url": "tcp://h:2376"}]', "a tcp:// engine needs tls"),
        (
            '[{"name": "a", "url": "ssh://u@h", "tls": {"ca": "c", "cert": "c", "key": "k"}}]',
            "tcp:// engines only",
        ),
        ('[{"name": "a", "url": "unix:///s"}, {"name": "a", "url": "ssh://u@h"}]', "duplicate names: a"),
        ('[{"name": "A b", "url": "unix:///s"}]', "String should match pattern"),
        ('[{"name": "a", "url": "unix:///s", "capacity": 0}]', "greater than or equal to 1"),
    ],
)
def test_docker_hosts_refused_with_a_reason(monkeypatch: pytest.MonkeyPatch, value: str, reason: str) -> None:
    monkeypatch.setenv("AGENT_DOCKER_HOSTS", value)
    with pytest.raises(ValidationError, match="docker_hosts") as refused:
        Settings()
    assert reason in str(refused.value)


def test_docker_hosts_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AGENT_DOCKER_HOSTS",
        '[{"name": "here", "url": "unix:///var/run/docker.sock"}, {"name": "far", "url": "ssh://u@h", '
        '"capacity": 3, "pool_size": 0}]',
    )
    here, far = Settings().docker_hosts or []
    assert (here.files, here.capacity, here.pool_size) == ("bind", None, None)
    assert (far.files, far.capacity, far.pool_size) == ("volume", 3, 0)
    monkeypatch.delenv("AGENT_DOCKER_HOSTS")
    assert Settings().docker_hosts is None  # the one engine of the environment, as before


@pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <socket.socket:pytest.PytestUnraisableExceptionWarning"
)
async def test_an_engine_unusable_at_start_up_is_left_out_and_unreachable_to_placement(
    sandbox_image: str, instance_id: str, tmp_path: Path
) -> None:
    configs = [
        EngineConfig(name="one", url=LOCAL_URL),
        EngineConfig(name="two", url=f"unix://{tmp_path}/no-engine.sock"),
    ]
    async with open_engines(
        configs,
        image=sandbox_image,
        base_image=BASE_IMAGE,
        limits=SandboxLimits(memory_mb=256, workspace_size_mb=32, tmp_size_mb=16),
        instance_id=instance_id,
        pool_size=0,
    ) as engines:
        assert [engine.name for engine in engines] == ["one"]
        two = await engines.probe("two")
        assert two is not None and two.sandboxes is None and two.room == 0
        assert two.problem is not None and "not usable since the worker started" in two.problem
        assert await engines.probe("three") is None  # not configured at all
        assert [status.name for status in await engines.engines()] == ["one", "two"]
        assert await engines.problem() is None  # engine one can start sandboxes: healthy
    gc.collect()  # the socket docker-py left of the refused connection, collected under this test's filter
