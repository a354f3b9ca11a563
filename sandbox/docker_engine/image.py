"""The sandbox image: present, or built from the Dockerfile shipped in this package.

An image we build is tagged by its recipe, ``agent-worker-sandbox:<recipe>``, the recipe being a
hash of the Dockerfile and of the base image's id: workers with different bases (or versions) on
one engine each find their own image and never rebuild each other's, and a changed Dockerfile or
a refreshed base makes a new tag rather than a rebuild over a shared one.

An explicit tag (``AGENT_SANDBOX_IMAGE``) is used instead: an image there without our
``agent-worker.sandbox-image`` label, or with an empty recipe (``LABEL agent-worker.recipe=""``
in a Dockerfile deriving from ours), is the operator's own and is used as it is; ours is rebuilt
there when its recipe label is not the current one.

A base already on the engine is used as it is, never pulled. Without a configured base, the
offline base (``agent-worker-base:bookworm``, made by ``scripts/offline-base-image.sh``) is used
when the engine has it, else ``python:3.12-slim``. Only a base the engine lacks is pulled, and a
failed pull says how to do without a registry. An explicit tag that is present is used even when
its base is gone: it works, and a pull could not be done on an air-gapped host anyway.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import tarfile
from collections import deque
from importlib import resources
from typing import Any, Protocol

import docker
import docker.errors

from sandbox.errors import SandboxImageError

__all__ = ["DEFAULT_BASES", "IMAGE_REPOSITORY", "RECIPE_LABEL", "ensure_image", "image_present"]

RECIPE_LABEL = "agent-worker.recipe"
OURS_LABEL = "agent-worker.sandbox-image"  # set by the packaged Dockerfile
IMAGE_REPOSITORY = "agent-worker-sandbox"
OFFLINE_BASE = "agent-worker-base:bookworm"  # what scripts/offline-base-image.sh makes by default
DEFAULT_BASES = (OFFLINE_BASE, "python:3.12-slim")  # without a configured base: the first present

_ERROR_CONTEXT_LINES = 20


class BuildLog(Protocol):
    """The slice of a structlog logger the build needs."""

    def info(self, event: str, **kw: Any) -> Any: ...


async def image_present(client: docker.DockerClient, tag: str) -> bool:
    """Whether ``tag`` exists on the engine; engine failures propagate."""
    return await _inspect(client, tag) is not None


async def ensure_image(
    client: docker.DockerClient, tag: str | None, base_image: str | None, log: BuildLog
) -> str:
    """The tag to start sandboxes from: ``tag``, or our recipe's tag when None, built if need be.

    ``base_image`` None picks the first of :data:`DEFAULT_BASES` the engine has. Raises
    :class:`SandboxImageError` when the base is missing and cannot be pulled (saying how to make
    one without a registry), or with the last build output lines when the build fails.
    """
    labels = None if tag is None else await _labels(client, tag)
    if tag is not None and labels is not None and _custom(labels):
        log.info("sandbox_image_present", image=tag, custom=True)
        return tag
    base = await _present_base(client, base_image)
    if base is None and tag is not None and labels is not None:
        log.info("sandbox_image_present", image=tag, custom=False, base_missing=base_image)
        return tag
    if base is None:
        base = await _pull_base(client, base_image, log)
    name, base_id = base
    recipe = _recipe(base_id)
    if tag is None:
        tag = f"{IMAGE_REPOSITORY}:{recipe}"
        labels = await _labels(client, tag)
    if labels is not None:
        if labels.get(RECIPE_LABEL) == recipe:
            log.info("sandbox_image_present", image=tag, custom=False)
            return tag
        log.info("sandbox_image_outdated", image=tag, built=labels.get(RECIPE_LABEL), current=recipe)
    # Said up front because the worker does not answer until the image exists (docs/deploy.md).
    log.info("sandbox_image_build_start", image=tag, base_image=name, usually=_usual_build_time(name))
    await asyncio.to_thread(_build, client, tag, name, recipe, log)
    if not await image_present(client, tag):
        raise SandboxImageError(f"building sandbox image {tag} reported success but the image is missing")
    log.info("sandbox_image_built", image=tag)
    return tag


def _usual_build_time(base: str) -> str:
    if base == OFFLINE_BASE:
        return "about 15 s: the base has every tool, only a user is added"
    return "longer when apt-get must install tools this base lacks (network needed)"


def _custom(labels: dict[str, str]) -> bool:
    return OURS_LABEL not in labels or labels.get(RECIPE_LABEL) == ""


async def _inspect(client: docker.DockerClient, name: str) -> dict[str, Any] | None:
    try:
        info: dict[str, Any] = await asyncio.to_thread(client.api.inspect_image, name)
    except docker.errors.ImageNotFound:
        return None
    return info


async def _labels(client: docker.DockerClient, tag: str) -> dict[str, str] | None:
    """The image's labels, or None when the engine has no such image."""
    info = await _inspect(client, tag)
    return None if info is None else dict(info.get("Config", {}).get("Labels") or {})


async def _present_base(client: docker.DockerClient, base_image: str | None) -> tuple[str, str] | None:
    """(name, image id) of the base to build on, if the engine has it; never pulls."""
    for name in DEFAULT_BASES if base_image is None else (base_image,):
        info = await _inspect(client, name)
        if info is not None:
            return name, str(info["Id"])
    return None


async def _pull_base(client: docker.DockerClient, base_image: str | None, log: BuildLog) -> tuple[str, str]:
    name = DEFAULT_BASES[-1] if base_image is None else base_image
    log.info("sandbox_base_pull", base_image=name)
    try:
        await asyncio.to_thread(client.images.pull, name)
        info = await _inspect(client, name)
    except (docker.errors.DockerException, OSError) as e:
        raise SandboxImageError(_missing_base(name, base_image, e)) from e
    if info is None:
        raise SandboxImageError(_missing_base(name, base_image, "the engine does not list it"))
    return name, str(info["Id"])


def _missing_base(name: str, configured: str | None, problem: object) -> str:
    if configured is None:
        remedy = (
            f"make the offline base with `scripts/offline-base-image.sh {OFFLINE_BASE}` (Debian packages, "
            "no container registry; used when present), or set AGENT_SANDBOX_BASE_IMAGE to a base "
            "the engine has"
        )
    else:
        remedy = (
            f"set AGENT_SANDBOX_BASE_IMAGE to a base the engine has, or make one without a registry "
            f"with `scripts/offline-base-image.sh {OFFLINE_BASE}` and set "
            f"AGENT_SANDBOX_BASE_IMAGE={OFFLINE_BASE}"
        )
    return f"the sandbox base image {name} is not on the Docker engine and pulling it failed ({problem}): {remedy}"


def _dockerfile() -> bytes:
    return resources.files("sandbox.docker_engine").joinpath("Dockerfile").read_bytes()


def _recipe(base_id: str) -> str:
    """What the image is made of: the Dockerfile and the base's content (its id, not its name).

    The executor and kernel are not in it: they travel in each container's environment.
    """
    return hashlib.sha256(_dockerfile() + b"\0" + base_id.encode()).hexdigest()[:16]


def _build(client: docker.DockerClient, tag: str, base_image: str, recipe: str, log: BuildLog) -> None:
    recent: deque[str] = deque(maxlen=_ERROR_CONTEXT_LINES)
    try:
        # Only the Dockerfile is sent as the context: the package directory holds nothing the
        # image needs, and this also works when the package is installed from a zip.
        stream = client.api.build(
            fileobj=_context_tar(),
            custom_context=True,
            tag=tag,
            buildargs={"BASE_IMAGE": base_image},
            labels={RECIPE_LABEL: recipe},
            pull=False,
            rm=True,
            forcerm=True,
            decode=True,
        )
        failed = False
        # Read to the end even after an error: the engine stops there, and an abandoned stream
        # would leave its connection open.
        for chunk in stream:
            if "error" in chunk or "errorDetail" in chunk:
                failed = True
                detail = chunk.get("errorDetail", {}).get("message") or chunk.get("error")
                recent.append(str(detail).rstrip())
                continue
            line = str(chunk.get("stream") or chunk.get("status") or "").rstrip()
            if line:
                recent.append(line)
                log.info("sandbox_image_build", line=line)
        if failed:
            raise SandboxImageError(_failure(tag, base_image, recent))
    except (docker.errors.DockerException, OSError) as e:  # OSError: the engine connection broke
        recent.append(str(e))
        raise SandboxImageError(_failure(tag, base_image, recent)) from e


def _context_tar() -> io.BytesIO:
    dockerfile = _dockerfile()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(dockerfile))
    buffer.seek(0)
    return buffer


def _failure(tag: str, base_image: str, recent: deque[str]) -> str:
    lines = "\n".join(recent) or "(no build output)"
    return f"building sandbox image {tag} from {base_image} failed; last build output:\n{lines}"
