"""ensure_image: one tag per recipe, built once from the packaged Dockerfile; a failed build or a
missing base says what to do. Every image a test makes is removed by the test's fixtures."""

from __future__ import annotations

import contextlib
import io
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import docker
import docker.errors
import pytest

from sandbox.docker_engine.image import (
    DEFAULT_BASES,
    IMAGE_REPOSITORY,
    RECIPE_LABEL,
    ensure_image,
    image_present,
)
from sandbox.errors import SandboxImageError
from tests.conftest import BASE_IMAGE

pytestmark = pytest.mark.docker

# A registry on a closed loopback port: a pull from it fails at once and reaches nothing outside.
MISSING_BASE = "localhost:1/agent-worker-missing-base:test"


class RecordingLog:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def info(self, event: str, **kw: Any) -> None:
        self.events.append((event, kw))

    @property
    def names(self) -> list[str]:
        return [event for event, _ in self.events]


Discard = Callable[[str], None]


@pytest.fixture
def discard(docker_client: docker.DockerClient) -> Iterator[Discard]:
    """Images (tags or ids) to remove after the test, last first; a tag that existed before is kept."""
    existing = {tag for image in docker_client.api.images() for tag in image.get("RepoTags") or ()}
    made: list[str] = []

    def add(image: str) -> None:
        if image not in existing:
            made.append(image)

    yield add
    for image in reversed(made):
        with contextlib.suppress(docker.errors.ImageNotFound):
            docker_client.api.remove_image(image, force=True)


def derived_base(docker_client: docker.DockerClient, discard: Discard) -> str:
    """Another base: the test base plus a label, so another image id and so another recipe."""
    tag = f"aw-test-base:{uuid.uuid4().hex[:8]}"
    dockerfile = f"FROM {BASE_IMAGE}\nLABEL aw-test={tag}\n"
    docker_client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True, pull=False)
    discard(tag)
    return tag


async def test_present_image_is_not_rebuilt(docker_client: docker.DockerClient, sandbox_image: str) -> None:
    log = RecordingLog()
    assert await ensure_image(docker_client, sandbox_image, BASE_IMAGE, log) == sandbox_image
    assert log.names == ["sandbox_image_present"]
    labels = docker_client.api.inspect_image(sandbox_image)["Config"]["Labels"]
    assert labels["agent-worker.sandbox-image"] == "1"
    assert labels[RECIPE_LABEL]


async def test_each_base_gets_its_own_tag_and_neither_is_rebuilt(
    docker_client: docker.DockerClient, sandbox_image: str, discard: Discard
) -> None:
    other_base = derived_base(docker_client, discard)
    first, second = RecordingLog(), RecordingLog()

    tags = []
    for base in (BASE_IMAGE, other_base):
        tags.append(await ensure_image(docker_client, None, base, first))
        discard(tags[-1])
    again = [await ensure_image(docker_client, None, base, second) for base in (BASE_IMAGE, other_base)]

    assert tags[0] != tags[1]
    assert all(tag.startswith(f"{IMAGE_REPOSITORY}:") for tag in tags)
    assert again == tags
    assert all([await image_present(docker_client, tag) for tag in tags])
    assert second.names == ["sandbox_image_present", "sandbox_image_present"]
    assert "sandbox_base_pull" not in first.names  # both bases were on the engine


async def test_without_a_configured_base_the_offline_base_is_used_when_present(
    docker_client: docker.DockerClient, sandbox_image: str, discard: Discard
) -> None:
    if BASE_IMAGE != DEFAULT_BASES[0]:
        pytest.skip(f"the tests' base is {BASE_IMAGE}, not the offline base {DEFAULT_BASES[0]}")
    log = RecordingLog()
    # What `agent-worker serve` does after scripts/serve.sh, which builds the offline base.
    tag = await ensure_image(docker_client, None, None, log)
    discard(tag)
    assert tag == await ensure_image(docker_client, None, BASE_IMAGE, RecordingLog())
    assert "sandbox_base_pull" not in log.names


async def test_a_missing_base_that_cannot_be_pulled_says_what_to_do(
    docker_client: docker.DockerClient, discard: Discard
) -> None:
    log = RecordingLog()
    with pytest.raises(SandboxImageError) as caught:
        await ensure_image(docker_client, None, MISSING_BASE, log)
    message = str(caught.value)
    assert MISSING_BASE in message
    assert "scripts/offline-base-image.sh" in message
    assert "AGENT_SANDBOX_BASE_IMAGE" in message
    assert log.names == ["sandbox_base_pull"]


async def test_a_present_image_is_used_when_its_base_is_gone(
    docker_client: docker.DockerClient, sandbox_image: str
) -> None:
    log = RecordingLog()
    assert await ensure_image(docker_client, sandbox_image, MISSING_BASE, log) == sandbox_image
    assert log.names == ["sandbox_image_present"]  # no pull was tried


async def test_image_built_from_another_recipe_is_rebuilt(
    docker_client: docker.DockerClient, sandbox_image: str, discard: Discard
) -> None:
    tag = f"aw-test-outdated:{uuid.uuid4().hex[:8]}"
    # Our image, relabelled as if an older Dockerfile had built it (a cheap one-step build).
    outdated, _ = docker_client.images.build(
        fileobj=io.BytesIO(f"FROM {sandbox_image}\n".encode()),
        tag=tag,
        labels={RECIPE_LABEL: "0000000000000000"},
        rm=True,
    )
    discard(str(outdated.id))  # untagged by the rebuild, it would be left dangling
    discard(tag)
    log = RecordingLog()
    await ensure_image(docker_client, tag, BASE_IMAGE, log)
    assert log.names[0] == "sandbox_image_outdated"
    assert log.names[-1] == "sandbox_image_built"
    # A first start is told how long the build usually takes before it goes quiet building.
    assert dict(log.events)["sandbox_image_build_start"]["usually"]
    labels = docker_client.api.inspect_image(tag)["Config"]["Labels"]
    assert labels[RECIPE_LABEL] != "0000000000000000"


async def test_image_without_our_recipe_is_the_operators_own(
    docker_client: docker.DockerClient, sandbox_image: str, discard: Discard
) -> None:
    tag = f"aw-test-custom:{uuid.uuid4().hex[:8]}"
    docker_client.images.build(fileobj=io.BytesIO(b"FROM scratch\nLABEL custom=1\n"), tag=tag, rm=True)
    discard(tag)
    log = RecordingLog()
    # Used as it is: not even its base is looked at.
    assert await ensure_image(docker_client, tag, MISSING_BASE, log) == tag
    assert log.events == [("sandbox_image_present", {"image": tag, "custom": True})]


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
