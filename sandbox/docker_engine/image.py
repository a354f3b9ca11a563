"""The sandbox image: present, or built from the Dockerfile shipped in this package.

An image we build carries a recipe label (hash of the Dockerfile and the base image name); when
either changes, the next start rebuilds it. An image without our ``agent-worker.sandbox-image``
label, or with an empty recipe (``LABEL agent-worker.recipe=""`` in a Dockerfile deriving from
ours), is the operator's own and is used as it is.

``pull=False`` uses a base already on the engine as it is, never refreshing it. A *missing* base
is still pulled by the engine's builder, so an air-gapped host makes it locally first
(``scripts/offline-base-image.sh``); the Dockerfile then installs nothing that base already has.
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

__all__ = ["RECIPE_LABEL", "ensure_image", "image_present"]

RECIPE_LABEL = "agent-worker.recipe"
OURS_LABEL = "agent-worker.sandbox-image"  # set by the packaged Dockerfile

_ERROR_CONTEXT_LINES = 20


class BuildLog(Protocol):
    """The slice of a structlog logger the build needs."""

    def info(self, event: str, **kw: Any) -> Any: ...


async def image_present(client: docker.DockerClient, tag: str) -> bool:
    """Whether ``tag`` exists on the engine; engine failures propagate."""
    try:
        await asyncio.to_thread(client.api.inspect_image, tag)
    except docker.errors.ImageNotFound:
        return False
    return True


async def ensure_image(client: docker.DockerClient, tag: str, base_image: str, log: BuildLog) -> None:
    """Build ``tag`` from the packaged Dockerfile on ``base_image`` unless it is present and current.

    Raises :class:`SandboxImageError` with the last build output lines when the build fails.
    """
    recipe = _recipe(base_image)
    labels = await _image_labels(client, tag)
    if labels is not None:
        built = labels.get(RECIPE_LABEL)
        custom = OURS_LABEL not in labels or built == ""
        if custom or built == recipe:
            log.info("sandbox_image_present", image=tag, custom=custom)
            return
        log.info("sandbox_image_outdated", image=tag, built=built, current=recipe)
    log.info("sandbox_image_build_start", image=tag, base_image=base_image)
    await asyncio.to_thread(_build, client, tag, base_image, recipe, log)
    if not await image_present(client, tag):
        raise SandboxImageError(f"building sandbox image {tag} reported success but the image is missing")
    log.info("sandbox_image_built", image=tag)


async def _image_labels(client: docker.DockerClient, tag: str) -> dict[str, str] | None:
    """The image's labels, or None when the engine has no such image."""
    try:
        info = await asyncio.to_thread(client.api.inspect_image, tag)
    except docker.errors.ImageNotFound:
        return None
    return dict(info.get("Config", {}).get("Labels") or {})


def _dockerfile() -> bytes:
    return resources.files("sandbox.docker_engine").joinpath("Dockerfile").read_bytes()


def _recipe(base_image: str) -> str:
    return hashlib.sha256(_dockerfile() + b"\0" + base_image.encode()).hexdigest()[:16]


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
