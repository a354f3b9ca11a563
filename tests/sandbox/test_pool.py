"""The warm pool: spares handed out once, removed after use, refilled; size 0 is off."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import docker

from sandbox.base import SandboxRequest
from sandbox.docker_engine.backend import LABEL_POOL
from sandbox.pool import WarmPool
from tests.conftest import instance_containers
from tests.sandbox.conftest import FactoryMaker


async def eventually(check: Callable[[], bool], timeout: float = 30.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the condition never held")


def spares(docker_client: docker.DockerClient, instance_id: str) -> set[str]:
    return {
        str(c["Id"])
        for c in instance_containers(docker_client, instance_id)
        if c["Labels"].get(LABEL_POOL) == "1"
    }


def exists(docker_client: docker.DockerClient, instance_id: str, container_id: str) -> bool:
    return container_id in {c["Id"] for c in instance_containers(docker_client, instance_id)}


async def test_spares_are_handed_out_once_removed_after_use_and_refilled(
    make_factory: FactoryMaker, docker_client: docker.DockerClient, instance_id: str
) -> None:
    claimed: list[str] = []
    async with WarmPool(make_factory(), 2) as pool:
        await eventually(lambda: pool.ready == 2)
        assert len(spares(docker_client, instance_id)) == 2
        for i in range(4):
            await eventually(lambda: pool.ready == 2)
            ready = spares(docker_client, instance_id)
            async with pool.open(SandboxRequest(owner=f"user-{i}", run_id=f"run-{i}")) as sandbox:
                assert sandbox.id in ready  # a spare, not a cold start
                result = await sandbox.run_bash("echo $HOME; touch /workspace/mine", 10)
                assert result.stdout.text == "/workspace\n"
                claimed.append(sandbox.id)
            await eventually(lambda: not exists(docker_client, instance_id, claimed[-1]))

        assert len(set(claimed)) == 4  # never the same container twice
        await eventually(lambda: pool.ready == 2)
        assert set(claimed).isdisjoint(spares(docker_client, instance_id))
    assert instance_containers(docker_client, instance_id) == []  # the spares go with the pool


async def test_the_pool_refills_after_the_run_unless_the_claim_emptied_it(
    make_factory: FactoryMaker, docker_client: docker.DockerClient, instance_id: str
) -> None:
    async with WarmPool(make_factory(), 2) as pool:
        await eventually(lambda: pool.ready == 2)
        async with pool.open(SandboxRequest(owner="alice", run_id="a")) as first:
            # One spare is left for the next run: the engine is left alone while this one runs.
            await asyncio.sleep(1.0)
            assert pool.ready == 1 and len(spares(docker_client, instance_id)) == 2
            async with pool.open(SandboxRequest(owner="bob", run_id="b")) as second:
                # That claim emptied the pool: the refill starts at once, runs or not.
                await eventually(lambda: pool.ready == 1)
                assert first.id != second.id
        await eventually(lambda: pool.ready == 2)
        await eventually(lambda: not {first.id, second.id} & spares(docker_client, instance_id))


async def test_an_empty_pool_starts_cold_and_a_claimed_spare_is_not_shared(
    make_factory: FactoryMaker, docker_client: docker.DockerClient, instance_id: str
) -> None:
    async with WarmPool(make_factory(), 1) as pool:
        await eventually(lambda: pool.ready == 1)
        async with (
            pool.open(SandboxRequest(owner="alice", run_id="a")) as first,
            pool.open(SandboxRequest(owner="bob", run_id="b")) as second,
        ):
            assert first.id != second.id
            assert (await second.run_bash("ls -A /workspace", 10)).stdout.text == ""
        await eventually(lambda: not exists(docker_client, instance_id, first.id))
        await eventually(lambda: not exists(docker_client, instance_id, second.id))  # the cold one too


async def test_a_workspace_sandbox_never_comes_from_the_pool(
    make_factory: FactoryMaker, docker_client: docker.DockerClient, instance_id: str, tmp_path: Path
) -> None:
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "notes.txt").write_text("mine\n")
    async with WarmPool(make_factory(), 1) as pool:
        await eventually(lambda: pool.ready == 1)
        ready = spares(docker_client, instance_id)
        request = SandboxRequest(owner="alice", run_id="workspace:ws", workspace_dir=tmp_path / "ws")
        async with pool.open(request) as sandbox:
            assert sandbox.id not in ready
            assert (await sandbox.run_bash("cat notes.txt", 10)).stdout.text == "mine\n"
        assert pool.ready == 1 and spares(docker_client, instance_id) == ready


async def test_size_zero_disables_the_pool(
    make_factory: FactoryMaker, docker_client: docker.DockerClient, instance_id: str
) -> None:
    async with WarmPool(make_factory(), 0) as pool:
        async with pool.open(SandboxRequest(owner="alice", run_id="cold")) as sandbox:
            assert (await sandbox.run_bash("true", 10)).exit_code == 0
            assert spares(docker_client, instance_id) == set()
        assert pool.ready == 0
        # Removed behind the run's answer, like a spare.
        await eventually(lambda: instance_containers(docker_client, instance_id) == [])


async def test_a_spare_that_died_is_not_handed_out(
    make_factory: FactoryMaker, docker_client: docker.DockerClient, instance_id: str
) -> None:
    async with WarmPool(make_factory(), 1) as pool:
        await eventually(lambda: pool.ready == 1)
        (dead,) = spares(docker_client, instance_id)
        docker_client.api.kill(dead)

        async with pool.open(SandboxRequest(owner="alice", run_id="after")) as sandbox:
            assert sandbox.id != dead
            assert (await sandbox.run_bash("echo fine", 10)).stdout.text == "fine\n"
        await eventually(lambda: not exists(docker_client, instance_id, dead))
