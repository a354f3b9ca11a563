"""The Docker backend: one hardened, throwaway container per sandbox, run by an executor inside.

Containers run as uid 1000 with every capability dropped, no new privileges, no network (by
default), a read-only root, tmpfs ``/tmp`` and ``/workspace`` (or a bind-mounted workspace), and
pids/memory/CPU limits; ``docker-init`` is PID 1 so orphans are reaped. The tmpfs mounts live in
the memory limit and are sized to leave room for processes (:class:`~sandbox.base.SandboxLimits`),
and every command is the OOM killer's first choice, never the executor (see
:func:`sandbox.container.executor.start_process`). The Docker socket is never
mounted. Every container is labelled with the worker instance that made it, so a restarted worker
removes what a crashed one left behind (:meth:`DockerSandboxFactory.reap_orphans`).

The container's main process is the executor (:mod:`sandbox.container.executor`), which runs every call; the
worker talks to it over the container's attached stdin and stdout (:mod:`sandbox.docker_engine.channel`), so a
call costs no ``docker exec``. Its stdin is the control stream only: commands get ``/dev/null``.
The container logs nothing (log driver ``none``): everything on its stdout is command output on
its way to the worker, which must not pile up on the engine's disk as well.
"""

# ASYNC109: a timeout here is enforced by killing the command, which asyncio.timeout() cannot do.

from __future__ import annotations

import asyncio
import os
import re
import secrets
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests.exceptions
import structlog

from sandbox.base import (
    SANDBOX_UID,
    TMPFS_FILES_PER_MB,
    ExecResult,
    OnOutput,
    PathKind,
    SandboxLimits,
    SandboxRequest,
    validate_source,
)
from sandbox.docker_engine.channel import Channel
from sandbox.docker_engine.execution import Interpreter, run_call, run_cell
from sandbox.docker_engine.image import image_present
from sandbox.docker_engine.wire import (
    PROTOCOL_VERSION,
    HelloEvent,
    HelloRequest,
    OomKillsEvent,
    OomKillsRequest,
)
from sandbox.errors import SandboxError, SandboxExecError, SandboxStartError

__all__ = [
    "LABEL",
    "LABEL_DEPLOYMENT",
    "LABEL_INSTANCE",
    "LABEL_OWNER",
    "LABEL_POOL",
    "LABEL_RUN",
    "LABEL_WORKSPACE",
    "DockerSandbox",
    "DockerSandboxFactory",
]

LABEL = "agent-worker"
LABEL_INSTANCE = "agent-worker.instance"
LABEL_OWNER = "agent-worker.owner"
LABEL_RUN = "agent-worker.run"
LABEL_POOL = "agent-worker.pool"  # a warm-pool spare (sandbox.pool)
# The workers sharing one store (AGENT_DOCKER_HOSTS): an engine's capacity counts their sandboxes.
LABEL_DEPLOYMENT = "agent-worker.deployment"
LABEL_WORKSPACE = "agent-worker.workspace"  # on a workspace's volume: the run label of its sandboxes

# Go's os.FileMode type bits, as the engine's archive stat reports them.
_MODE_DIR = 1 << 31
_MODE_SYMLINK = 1 << 27
_MODE_OTHER = (
    (1 << 26) | (1 << 25) | (1 << 24) | (1 << 21) | (1 << 19)
)  # device, pipe, socket, char, irregular

log = structlog.get_logger(__name__)

WORKDIR = "/workspace"
_SANDBOX_USER = f"{SANDBOX_UID}:{SANDBOX_UID}"
_OOM_SIGNAL_EXIT = 128 + 9  # a process killed by SIGKILL, which is what the OOM killer sends
_START_TIMEOUT = 30.0  # from `start` to the executor's hello: a python3 start on a loaded host
_ANSWER_TIMEOUT = 10.0  # for a request the executor answers at once (hello, oom_kills)

# The executor's source travels in the environment rather than in argv, so that `ps` in the sandbox
# shows this one line instead of the whole program; the bootstrap pops it before any command runs.
# -I: no PYTHON* variables, no user site, and not the working directory on sys.path (a json.py in
# the workspace must not replace the executor's); -S: no site module, a faster start.
_EXECUTOR_ENV = "AGENT_WORKER_EXECUTOR"
_KERNEL_ENV = "AGENT_WORKER_KERNEL"  # the Python kernel's source, which the executor pops and keeps
_EXECUTOR_COMMAND = [
    "python3",
    "-I",
    "-S",
    "-c",
    f"import os; exec(compile(os.environ.pop({_EXECUTOR_ENV!r}), 'executor.py', 'exec'))",
    "agent-worker-executor",
]


class DockerSandbox:
    """A started container; commands run in ``/workspace`` as uid 1000, through its executor."""

    def __init__(
        self, client: docker.DockerClient, container_id: str, channel: Channel, limits: SandboxLimits
    ) -> None:
        self._client = client
        self._container_id = container_id
        self._channel = channel
        self._limits = limits
        self._oom_kills_seen = 0  # a fresh container's memory cgroup has counted none

    @property
    def id(self) -> str:
        return self._container_id

    async def alive(self) -> bool:
        """Whether the executor answers: it is the container's main process, so this covers both."""
        if self._channel.closed is not None:
            return False
        try:
            await self._channel.ask(HelloRequest(id=self._channel.next_id()), _ANSWER_TIMEOUT)
        except SandboxExecError:
            return False
        return True

    async def run_bash(self, command: str, timeout: float, on_output: OnOutput | None = None) -> ExecResult:
        validate_source(command, "the command")
        return await self._run("bash", command, timeout, on_output)

    async def run_python(
        self, code: str, timeout: float, on_output: OnOutput | None = None, session: str | None = None
    ) -> ExecResult:
        validate_source(code, "the code")
        return await self._run("python3", code, timeout, on_output, session)

    async def _run(
        self,
        interpreter: Interpreter,
        source: str,
        timeout: float,
        on_output: OnOutput | None,
        session: str | None = None,
    ) -> ExecResult:
        limit = self._limits.output_limit_bytes
        if session is None:
            result = await run_call(self._channel, interpreter, source, timeout, limit, on_output)
        else:
            result = await run_cell(self._channel, session, source, timeout, limit, on_output)
        if result.exit_code == _OOM_SIGNAL_EXIT and await self._oom_killed_since_last_look():
            result = result.model_copy(update={"oom_killed": True})
        return result

    @contextmanager
    def export_archive(self, path: str) -> Iterator[tuple[PathKind, Iterator[bytes]]]:
        try:
            chunks, stat = self._client.api.get_archive(self._container_id, path)
        except docker.errors.NotFound:
            raise FileNotFoundError(path) from None
        except (docker.errors.DockerException, OSError) as e:
            raise SandboxExecError(f"reading {path} from the sandbox failed: {e}") from e
        try:
            yield _path_kind(int(stat.get("mode", 0))), chunks
        finally:
            chunks.close()  # a stream left unread is dropped with its connection

    def import_archive(self, directory: str, archive: Iterable[bytes]) -> None:
        try:
            self._client.api.put_archive(self._container_id, directory, archive)
        except docker.errors.NotFound:
            raise FileNotFoundError(directory) from None
        except (docker.errors.DockerException, OSError) as e:
            raise SandboxExecError(f"writing into {directory} in the sandbox failed: {e}") from e

    async def _oom_killed_since_last_look(self) -> bool:
        """Whether the kernel OOM-killed anything in this container since we last asked.

        The memory cgroup's own counter, read by the executor: the container's State.OOMKilled
        stayed false on engine 20.10 after exec'd commands were OOM-killed, and it never resets
        anyway, so it is only the fallback when the counter cannot be read.
        """
        answer = await self._channel.ask(OomKillsRequest(id=self._channel.next_id()), _ANSWER_TIMEOUT)
        count = answer.count if isinstance(answer, OomKillsEvent) else None
        if count is None:
            try:
                state = await asyncio.to_thread(self._client.api.inspect_container, self._container_id)
            except (docker.errors.DockerException, OSError) as e:
                raise SandboxExecError(f"checking for an OOM kill failed: {e}") from e
            return bool(state.get("State", {}).get("OOMKilled"))
        killed = count > self._oom_kills_seen
        self._oom_kills_seen = count
        return killed


class DockerSandboxFactory:
    """Opens hardened sandbox containers labelled with this worker's ``instance_id``."""

    def __init__(
        self,
        client: docker.DockerClient,
        image: str,
        limits: SandboxLimits,
        instance_id: str,
        deployment: str | None = None,
    ) -> None:
        self._client = client
        self._image = image
        self._limits = limits
        self._instance_id = instance_id
        self._deployment = deployment
        self._executor_source = resources.files("sandbox.container").joinpath("executor.py").read_text()
        self._kernel_source = resources.files("sandbox.container").joinpath("kernel.py").read_text()

    @property
    def image(self) -> str:
        return self._image

    @asynccontextmanager
    async def open(self, request: SandboxRequest) -> AsyncIterator[DockerSandbox]:
        """Create and start a container; it is force-removed on exit, whatever happened.

        Raises :class:`SandboxStartError` (with the engine's error as its cause) when the
        container cannot be created or started, or its executor does not answer; nothing is left
        behind then either.
        """
        name = _container_name(request.run_id)
        starting = asyncio.ensure_future(self._create_and_start(request, name))
        try:
            try:
                # Shielded: a cancel during create must not let the removal below overtake it.
                container_id, channel = await asyncio.shield(starting)
            except Exception as e:
                raise SandboxStartError(f"could not start a sandbox from {self._image}: {e}") from e
            yield DockerSandbox(self._client, container_id, channel, self._limits)
        finally:
            await asyncio.shield(self._remove_after(starting, name))

    async def problem(self) -> str | None:
        """Why no sandbox could start now (None if one could): the engine is down or the image missing."""
        try:
            present = await image_present(self._client, self._image)
        except Exception as e:  # engine down: a health answer, not an exception
            return f"docker engine unreachable: {type(e).__name__}"
        return None if present else f"sandbox image {self._image} missing"

    async def reap_orphans(self, instance_id: str | None = None) -> int:
        """Force-remove every container of this instance (or of ``instance_id``, a worker that
        died), whatever its state; returns how many."""
        found = await asyncio.to_thread(
            self._client.api.containers,
            all=True,
            filters={"label": f"{LABEL_INSTANCE}={instance_id or self._instance_id}"},
        )
        removed = await asyncio.gather(*(self._remove(c["Id"]) for c in found))
        return sum(removed)

    async def _create_and_start(self, request: SandboxRequest, name: str) -> tuple[str, Channel]:
        if request.workspace_dir is not None:
            await asyncio.to_thread(_prepare_workspace, request.workspace_dir)
        if request.workspace_volume is not None:
            # Made by us rather than on the fly by create, to carry labels an operator can filter on.
            # A new volume takes /workspace's owner (uid 1000) from the image on first mount.
            labels = {LABEL: "1", LABEL_OWNER: request.owner, LABEL_WORKSPACE: request.run_id}
            await asyncio.to_thread(self._client.api.create_volume, request.workspace_volume, labels=labels)
        kwargs = self._container_kwargs(request, name)
        container = await asyncio.to_thread(self._client.containers.create, self._image, **kwargs)
        channel = await Channel.attach(self._client.api, container.id)
        try:
            await asyncio.to_thread(self._client.api.start, container.id)
            hello = await channel.ask(HelloRequest(id=channel.next_id()), _START_TIMEOUT)
            if not isinstance(hello, HelloEvent) or hello.version != PROTOCOL_VERSION:
                raise SandboxExecError(f"the sandbox executor answered {hello!r} to hello")
        except BaseException:
            await channel.aclose()
            raise
        return str(container.id), channel

    def _container_kwargs(self, request: SandboxRequest, name: str) -> dict[str, Any]:
        limits = self._limits
        memory = f"{limits.memory_mb}m"
        tmpfs = {
            "/tmp": f"rw,nosuid,nodev,{_tmpfs_size(limits.tmp_size_mb)},mode=1777",
            # Ours rather than the engine's (--shm-size), which cannot bound its number of files.
            "/dev/shm": f"rw,nosuid,nodev,noexec,{_tmpfs_size(limits.shm_size_mb)},mode=1777",
        }
        volumes: dict[str, dict[str, str]] = {}
        if request.ephemeral:
            tmpfs[WORKDIR] = (
                f"rw,exec,nosuid,nodev,{_tmpfs_size(limits.workspace_size_mb)},"
                f"uid={SANDBOX_UID},gid={SANDBOX_UID},mode=0755"
            )
        elif request.workspace_volume is not None:
            volumes[request.workspace_volume] = {"bind": WORKDIR, "mode": "rw"}
        elif request.workspace_dir is not None:
            volumes[str(request.workspace_dir.resolve())] = {"bind": WORKDIR, "mode": "rw"}
        return {
            "command": _EXECUTOR_COMMAND,
            "name": name,
            "hostname": "sandbox",
            "user": _SANDBOX_USER,
            "working_dir": WORKDIR,
            "environment": {
                "DEBIAN_FRONTEND": "noninteractive",
                "HOME": WORKDIR,
                _EXECUTOR_ENV: self._executor_source,
                _KERNEL_ENV: self._kernel_source,
            },
            "labels": {
                LABEL: "1",
                LABEL_INSTANCE: self._instance_id,
                LABEL_OWNER: request.owner,
                LABEL_RUN: request.run_id,
                **({LABEL_POOL: "1"} if request.pool else {}),
                **({LABEL_DEPLOYMENT: self._deployment} if self._deployment else {}),
            },
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
            "network_mode": limits.network,
            "pids_limit": limits.pids,
            "mem_limit": memory,
            "memswap_limit": memory,  # equal to the memory limit: no swap on top
            "nano_cpus": int(limits.cpus * 1_000_000_000),
            "read_only": True,
            "init": True,
            "stdin_open": True,  # the executor's control stream; commands get /dev/null
            "log_config": {"type": "none", "config": {}},
            "tty": False,
            "tmpfs": tmpfs,
            "volumes": volumes,
        }

    async def _remove_after(self, starting: asyncio.Future[tuple[str, Channel]], name: str) -> None:
        await asyncio.wait([starting])
        # Asking for a failed start's exception also keeps it from being reported as unhandled.
        if not starting.cancelled() and starting.exception() is None:
            _, channel = starting.result()
            await channel.aclose()
        # By name: a create that failed half-way, or was canceled, never told us its id.
        await self._remove(name)

    async def _remove(self, container: str) -> bool:
        try:
            await asyncio.to_thread(self._client.api.remove_container, container, force=True, v=True)
        except docker.errors.NotFound:
            return False
        except docker.errors.APIError as e:
            if e.status_code == 409:  # removal already in progress elsewhere
                return False
            raise SandboxError(f"could not remove sandbox container {container}: {e}") from e
        except requests.exceptions.ConnectionError as e:
            # The engine is gone, and the container with it (or it is reaped when the engine and
            # this instance next meet); raising would fail the caller's fresh start elsewhere.
            log.warning("sandbox_engine_gone", container=container, error=str(e))
            return False
        return True


def _tmpfs_size(size_mb: int) -> str:
    """A tmpfs's bounds: its size, and its number of files, whose metadata the size leaves out."""
    return f"size={size_mb}m,nr_inodes={size_mb * TMPFS_FILES_PER_MB}"


def _path_kind(mode: int) -> PathKind:
    if mode & _MODE_DIR:
        return "dir"
    if mode & _MODE_SYMLINK:
        return "symlink"
    return "other" if mode & _MODE_OTHER else "file"


def _container_name(run_id: str) -> str:
    short = re.sub(r"[^a-zA-Z0-9_.-]", "", run_id)[:12] or "run"
    return f"aw-{short}-{secrets.token_hex(4)}"


def _prepare_workspace(path: Path) -> None:
    """Make ``path`` exist and be writable by the sandbox user (uid 1000).

    As root (the worker in its own container) we hand the directory to uid 1000. Otherwise we
    cannot chown, and the only way uid 1000 can write is a world-writable directory; the
    directory is per run and lives under the worker's data directory, so that is acceptable.
    """
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        os.chown(path, SANDBOX_UID, SANDBOX_UID)
    elif path.stat().st_uid != SANDBOX_UID:
        path.chmod(0o777)
