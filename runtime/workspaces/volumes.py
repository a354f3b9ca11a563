"""Per-workspace disk quotas: each workspace's directory is an ext4 image of its own, loop-mounted.

A workspace's directory is bind-mounted into its sandboxes, so without a limit of its own one
task can fill the disk that holds ``AGENT_DATA_DIR`` (the store, every other user's files). A
filesystem per workspace is a limit the kernel enforces on every writer alike (the sandbox's
commands, the files API, MCP's ``write_file``), at the very byte it is reached, with the usual
``ENOSPC`` ("No space left on device"). Polling sizes after each call would be late and racy, and
``RLIMIT_FSIZE`` bounds one file, not the sum of many.

On disk, next to the directory ``<owner>/<workspace id>`` (the mount point, which the files API
opens and the engine bind-mounts), the image ``<owner>/.<workspace id>.ext4``: a dot name no
workspace id can take. It is sparse (a new workspace costs its journal, not its quota) and mounted
with ``discard``, so deleted files give their space back to the host. The mounts live in the
host's mount namespace, where the Docker engine resolves bind mounts; a restarted worker finds
them still mounted, or mounts the images again. Mounting needs root (``mount``, loop devices):
:meth:`WorkspaceVolumes.check` proves it works at start-up, and the worker refuses to start
otherwise rather than run without the quota it was given.

Several workers may share one data directory (docs/deploy.md, "Many workers"); ``flock`` keeps
them apart (one host), with no file of its own: the owner's directory is locked exclusively while
an image is made, mounted or unmounted, and every worker using a mount holds a shared lock on its
image, so a worker shutting down unmounts only when no other worker holds one (it tries the image
exclusively, under the directory's lock). A killed worker's locks go with its process.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import structlog

from runtime.errors import PayloadTooLargeError, UnavailableError
from runtime.workspaces.files import SANDBOX_UID

__all__ = ["WorkspaceVolumes", "image_of"]

log = structlog.get_logger(__name__)

MB = 1024 * 1024
# -m 0: no blocks reserved for root, the quota is all the workspace's; root_owner: the sandbox
# user owns the root, as _prepare_workspace would make it.
_MKFS = ["mkfs.ext4", "-q", "-F", "-m", "0", "-E", f"root_owner={SANDBOX_UID}:{SANDBOX_UID}"]
_MOUNT_OPTIONS = "loop,nosuid,nodev,noatime,discard"
_PROBE_MB = 1
_COMMAND_TIMEOUT = 60.0  # mkfs of a large image on a slow disk; a mount takes milliseconds


def image_of(directory: Path) -> Path:
    """The image behind a workspace directory."""
    return directory.with_name(f".{directory.name}.ext4")


class WorkspaceVolumes:
    """The images behind the workspace directories, each ``max_mb`` MiB, mounted on first use."""

    def __init__(self, max_mb: int) -> None:
        self._bytes = max_mb * MB
        self._mounted: dict[Path, int] = {}  # mounted for this worker: its shared lock's descriptor
        self._locks: dict[Path, asyncio.Lock] = {}

    def check(self, scratch: Path) -> None:
        """Make, mount and remove a small image under ``scratch``; :class:`UnavailableError` if any step fails."""
        if os.geteuid() != 0:
            raise UnavailableError(
                "AGENT_WORKSPACE_MAX_MB needs the worker to run as root: each workspace is a loop-mounted "
                "image of that size. Run as root (in a container: privileged, with the data directory's "
                "bind propagation rshared), or set AGENT_WORKSPACE_MAX_MB=0 to run without workspace quotas"
            )
        scratch.mkdir(parents=True, exist_ok=True)
        directory = scratch / f"probe-{secrets.token_hex(4)}"
        image = image_of(directory)
        try:
            _make_image(image, _PROBE_MB * MB)
            directory.mkdir()
            _run("mount", "-o", _MOUNT_OPTIONS, str(image), str(directory))
            _run("umount", str(directory))
        except UnavailableError as e:
            raise UnavailableError(
                f"AGENT_WORKSPACE_MAX_MB is set but a workspace image cannot be mounted: {e}. "
                "In a container, run it privileged; or set AGENT_WORKSPACE_MAX_MB=0 to run without quotas"
            ) from None
        finally:
            image.unlink(missing_ok=True)
            if directory.exists() and not os.path.ismount(directory):
                directory.rmdir()

    async def attach(self, directory: Path) -> None:
        """Mount the workspace's image on ``directory``, making the image on first use."""
        lock = self._locks.setdefault(directory, asyncio.Lock())
        async with lock:
            await asyncio.to_thread(self._attach, directory)

    async def aclose(self) -> None:
        """Unmount what this worker used (after its sandboxes are gone) unless another worker
        still uses it; the images stay."""
        for directory in sorted(self._mounted):
            await asyncio.to_thread(self._detach, directory, self._mounted[directory])
        self._mounted.clear()

    def _attach(self, directory: Path) -> None:
        if directory in self._mounted and os.path.ismount(directory):
            return
        directory.parent.mkdir(parents=True, exist_ok=True)
        with _exclusive(directory.parent):
            self._mount(directory)
            users = os.open(image_of(directory), os.O_RDONLY)
            fcntl.flock(users, fcntl.LOCK_SH)
            previous = self._mounted.pop(directory, None)
            if previous is not None:
                os.close(previous)
            self._mounted[directory] = users

    def _detach(self, directory: Path, users: int) -> None:
        with _exclusive(directory.parent):
            os.close(users)  # our shared hold goes; if nobody else holds one, the mount is ours to end
            try:
                probe = os.open(image_of(directory), os.O_RDONLY)
            except FileNotFoundError:
                return
            try:
                fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return  # another worker on this data directory uses it
            finally:
                os.close(probe)
            _unmount(directory)

    def _mount(self, directory: Path) -> None:
        if os.path.ismount(directory):  # another worker's, or one a stopped worker left mounted
            return
        image = image_of(directory)
        made = not image.exists()
        if made:
            self._make(image, directory)
        elif image.stat().st_size != self._bytes:
            log.warning(
                "workspace_quota_unchanged",
                directory=str(directory),
                image_mb=image.stat().st_size // MB,
                configured_mb=self._bytes // MB,
                reason="an image keeps the size it was made with",
            )
        directory.mkdir(parents=True, exist_ok=True)
        _run("mount", "-o", _MOUNT_OPTIONS, str(image), str(directory))
        if made:  # mkfs's lost+found is of no use in a workspace (a migrated one has none)
            with suppress(FileNotFoundError):
                (directory / "lost+found").rmdir()

    def _make(self, image: Path, directory: Path) -> None:
        """A new image, holding what ``directory`` had if it predates quotas; renamed into place last."""
        temp = image.with_name(f"{image.name}.new")
        _make_image(temp, self._bytes)
        try:
            if directory.is_dir() and any(directory.iterdir()):
                _move_into(temp, directory)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        temp.rename(image)


@contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDONLY)  # a directory: flock works on its descriptor too
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # held for a mount or unmount: milliseconds, mkfs seconds
        yield
    finally:
        os.close(fd)


def _make_image(image: Path, size: int) -> None:
    image.parent.mkdir(parents=True, exist_ok=True)
    with open(image, "wb") as file:
        file.truncate(size)  # sparse: blocks are allocated as the filesystem uses them
    _run(*_MKFS, str(image))


def _move_into(image: Path, directory: Path) -> None:
    """Copy a directory made before quotas into ``image`` (owners and modes kept), then empty it."""
    staging = directory.with_name(f".{directory.name}.migrating")
    staging.mkdir(exist_ok=True)
    _run("mount", "-o", _MOUNT_OPTIONS, str(image), str(staging))
    try:
        (staging / "lost+found").rmdir()
        copy = subprocess.run(
            ["cp", "-a", f"{directory}/.", f"{staging}/"], capture_output=True, text=True, check=False
        )
    finally:
        _unmount(staging)
        staging.rmdir()
    if copy.returncode != 0:
        raise PayloadTooLargeError(
            f"the workspace's files do not fit in its quota of {image.stat().st_size // MB} MiB "
            f"(AGENT_WORKSPACE_MAX_MB): {copy.stderr.strip()}"
        )
    for child in list(directory.iterdir()):
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
    log.info("workspace_moved_into_image", directory=str(directory))


def _unmount(directory: Path) -> None:
    if not os.path.ismount(directory):  # unmounted by hand, or by another worker's shutdown
        return
    try:
        _run("umount", str(directory))
    except UnavailableError as e:
        # Busy (a file still open somewhere): detach it now; the kernel lets the filesystem go
        # when its last user does. A later mount of the image shares its loop device meanwhile.
        log.warning("workspace_unmount_busy", directory=str(directory), error=str(e))
        _run("umount", "--lazy", str(directory))


def _run(*command: str) -> None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=_COMMAND_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise UnavailableError(f"{command[0]} failed: {e}") from None
    if done.returncode != 0:
        raise UnavailableError(f"{command[0]} failed: {done.stderr.strip() or f'exit {done.returncode}'}")
