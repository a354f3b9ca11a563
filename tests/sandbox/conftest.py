"""Sandbox-test fixtures: factories with small limits that fail the test if a container outlives it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import docker
import pytest

from sandbox.base import SandboxLimits, SandboxRequest
from sandbox.docker_engine.backend import DockerSandbox, DockerSandboxFactory
from tests.conftest import instance_containers

# Small limits keep the tests fast and the OOM and fork-bomb cases cheap.
TEST_LIMITS: dict[str, Any] = {
    "memory_mb": 256,
    "pids": 128,
    "tmp_size_mb": 16,
    "workspace_size_mb": 32,
    "shm_size_mb": 16,
}

FactoryMaker = Callable[..., DockerSandboxFactory]


@pytest.fixture
def make_factory(
    docker_client: docker.DockerClient, sandbox_image: str, instance_id: str
) -> Iterator[FactoryMaker]:
    """Factories labelled with this test's instance; fails the test if any container outlives it."""

    def make(image: str | None = None, **limits: Any) -> DockerSandboxFactory:
        merged = {**TEST_LIMITS, **limits}
        return DockerSandboxFactory(
            docker_client, image or sandbox_image, SandboxLimits(**merged), instance_id
        )

    yield make
    left = instance_containers(docker_client, instance_id)
    for container in left:
        docker_client.api.remove_container(container["Id"], force=True)
    assert not left, f"containers left behind: {[c['Names'] for c in left]}"


@pytest.fixture
async def sandbox(make_factory: FactoryMaker) -> AsyncIterator[DockerSandbox]:
    async with make_factory().open(SandboxRequest(owner="tester", run_id="run-test")) as opened:
        yield opened
