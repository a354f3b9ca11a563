"""ensure_image: builds once from the packaged Dockerfile, and a failed build says why."""

from __future__ import annotations

import io
import uuid
from typing import Any

import docker
import docker.errors
import pytest

from sandbox.docker_engine.image import RECIPE_LABEL, ensure_image, image_present
from sandbox.errors import SandboxImageError
from tests.conftest import BASE_IMAGE

pytestmark = pytest.mark.docker


class RecordingLog:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def info(self, event: str, **kw: Any) -> None:
        self.events.append((event, kw))


async def test_present_image_is_not_rebuilt(docker_client: docker.DockerClient, sandbox_image: str) -> None:
    log = RecordingLog()
    await ensure_image(docker_client, sandbox_image, BASE_IMAGE, log)
    assert [event for event, _ in log.events] == ["sandbox_image_present"]
    labels = docker_client.api.inspect_image(sandbox_image)["Config"]["Labels"]
    assert labels["agent-worker.sandbox-image"] == "1"
    assert labels[RECIPE_LABEL]


async def test_image_built_from_another_recipe_is_rebuilt(
    docker_client: docker.DockerClient, sandbox_image: str
) -> None:
    tag = f"aw-test-outdated:{uuid.uuid4().hex[:8]}"
    # Our image, relabelled as if an older Dockerfile had built it (a cheap one-step build).
    docker_client.images.build(
        fileobj=io.BytesIO(f"FROM {sandbox_image}\n".encode()),
        tag=tag,
        labels={RECIPE_LABEL: "0000000000000000"},
        rm=True,
    )
    try:
        log = RecordingLog()
        await ensure_image(docker_client, tag, BASE_IMAGE, log)
        events = [event for event, _ in log.events]
        assert events[0] == "sandbox_image_outdated"
        assert events[-1] == "sandbox_image_built"
        labels = docker_client.api.inspect_image(tag)["Config"]["Labels"]
        assert labels[RECIPE_LABEL] != "0000000000000000"
    finally:
        docker_client.images.remove(tag, force=True)


async def test_image_without_our_recipe_is_the_operators_own(
    docker_client: docker.DockerClient, sandbox_image: str
) -> None:
    tag = f"aw-test-custom:{uuid.uuid4().hex[:8]}"
    docker_client.images.build(fileobj=io.BytesIO(b"FROM scratch\nLABEL custom=1\n"), tag=tag, rm=True)
    try:
        log = RecordingLog()
        await ensure_image(docker_client, tag, BASE_IMAGE, log)
        assert log.events == [("sandbox_image_present", {"image": tag, "custom": True})]
    finally:
        docker_client.images.remove(tag, force=True)


async def test_failed_build_raises_with_the_build_output(
    docker_client: docker.DockerClient, empty_base: str
) -> None:
    tag = f"aw-test-broken:{uuid.uuid4().hex[:8]}"
    log = RecordingLog()
    with pytest.raises(SandboxImageError, match="no such file or directory") as caught:
        await ensure_image(docker_client, tag, empty_base, log)
    assert empty_base in str(caught.value)
    assert "Step" in str(caught.value)  # the last lines of the build come along
    assert any(event == "sandbox_image_build" for event, _ in log.events)
    assert not await image_present(docker_client, tag)
