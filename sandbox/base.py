"""The sandbox seam: what the agent loop needs from an isolated place to run code.

``runtime`` depends only on the :class:`Sandbox` and :class:`SandboxFactory` protocols and the
result models here; the Docker backend lives in :mod:`sandbox.docker_engine.backend`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from pathlib import Path
from typing import Literal, Protocol, TypeAlias, runtime_checkable

from pydantic import BaseModel, Field, model_validator

__all__ = [
    "MAX_SOURCE_BYTES",
    "PROCESS_RESERVE_MB",
    "SANDBOX_UID",
    "TMPFS_FILES_PER_MB",
    "EngineStatus",
    "ExecResult",
    "FileTransfer",
    "OnOutput",
    "PathKind",
    "Sandbox",
    "SandboxEngines",
    "SandboxFactory",
    "SandboxLimits",
    "SandboxRequest",
    "StreamOutput",
    "validate_source",
]

MAX_SOURCE_BYTES = 100_000  # one argv string; the kernel refuses more than 128 KiB (MAX_ARG_STRLEN)

PROCESS_RESERVE_MB = 64
"""Memory no tmpfs may take: the executor, a shell and a small command fit in it."""

TMPFS_FILES_PER_MB = 128
"""Files (inodes) a tmpfs may hold per MB of its size. Their metadata, about 1 KB each, is not
counted in the size but lives in memory too: at this ratio it adds at most an eighth."""

SANDBOX_UID = 1000
"""The user and group sandbox commands run as; what the worker hands a sandbox belongs to it."""

PathKind: TypeAlias = Literal["file", "dir", "symlink", "other"]

OnOutput: TypeAlias = Callable[[str, bytes], Awaitable[None]]
"""Called with each chunk of a command's output as it arrives: the stream name ("stdout" or
"stderr") and the raw bytes, uncapped and in order. It is awaited before the next chunk is read, so
a slow one slows the command down rather than piling output up; if it raises, the command is
killed and the exception propagates from the call."""


def validate_source(source: str, what: str) -> None:
    """Refuse what cannot travel as one argv string, with a message meant for the model.

    The contract of :meth:`Sandbox.run_bash` and :meth:`Sandbox.run_python`: they raise this
    ``ValueError`` for such a source. Callers that take sources from a model check them here first,
    so the model hears why instead of the run failing.
    """
    if "\x00" in source:
        raise ValueError(f"{what} contains a NUL byte, which cannot be passed to a process")
    try:
        size = len(source.encode("utf-8"))
    except UnicodeEncodeError as e:
        raise ValueError(f"{what} is not valid Unicode text ({e.reason})") from e
    if size > MAX_SOURCE_BYTES:
        raise ValueError(
            f"{what} is {size} bytes; at most {MAX_SOURCE_BYTES} are allowed. "
            "Write long programs to a file in /workspace in several smaller steps and run the file."
        )


class StreamOutput(BaseModel):
    """One captured stream (stdout or stderr), bounded to a head and a tail."""

    text: str = Field(description="Captured text; invalid UTF-8 replaced with U+FFFD.")
    total_bytes: int = Field(description="Bytes the process wrote to this stream in all.")
    truncated_bytes: int = Field(0, description="Bytes cut from the middle (0 when nothing was cut).")


class ExecResult(BaseModel):
    """What one command did. A failed command is a result, not an exception."""

    exit_code: int | None = Field(description="Process exit code; None when it was killed by us.")
    stdout: StreamOutput
    stderr: StreamOutput
    duration: float = Field(description="Wall-clock seconds from start to exit or kill.")
    timed_out: bool = Field(False, description="Killed because the timeout passed.")
    canceled: bool = Field(False, description="Killed because the caller canceled the call.")
    oom_killed: bool = Field(False, description="Killed by the kernel for exceeding the memory limit.")
    state_lost: bool = Field(
        False,
        description="Python in a session: its interpreter died or was killed as wedged (this call, or "
        "since the session's last one), so its variables and imports are gone; the next call starts "
        "a new one.",
    )

    @property
    def success(self) -> bool:
        return self.exit_code == 0 and not (self.timed_out or self.canceled or self.oom_killed)


class SandboxLimits(BaseModel):
    """Resource limits applied to every sandbox container.

    The tmpfs mounts (``/tmp``, an ephemeral ``/workspace``, ``/dev/shm``) hold their files in the
    container's memory, charged to ``memory_mb``: together, with the metadata of as many files as
    they may hold (:data:`TMPFS_FILES_PER_MB`), they must leave :data:`PROCESS_RESERVE_MB` of it to
    processes, so that filling every one of them ends in
    "No space left on device" while the executor and the next command still have room, rather
    than in an out-of-memory kill that no process's size would explain.
    """

    memory_mb: int = Field(512, ge=16, description="Memory limit (no swap beyond it).")
    cpus: float = Field(1.0, gt=0, description="CPU quota in cores.")
    pids: int = Field(256, ge=16, description="Maximum number of processes (contains fork bombs).")
    tmp_size_mb: int = Field(64, ge=1, description="Size of the tmpfs mounted at /tmp.")
    workspace_size_mb: int = Field(
        256, ge=1, description="Size of the tmpfs /workspace of ephemeral sandboxes."
    )
    shm_size_mb: int = Field(64, ge=1, description="Size of the tmpfs /dev/shm (shared memory).")
    network: str = Field("none", description="Docker network mode; 'none' cuts the sandbox off.")
    output_limit_bytes: int = Field(
        32_000, ge=256, description="Per-stream capture cap; beyond it the head and tail are kept."
    )

    @model_validator(mode="after")
    def _tmpfs_leaves_room_for_processes(self) -> SandboxLimits:
        tmpfs = self.tmp_size_mb + self.workspace_size_mb + self.shm_size_mb
        if tmpfs + tmpfs // 8 > self.memory_mb - PROCESS_RESERVE_MB:  # // 8: their files' metadata
            raise ValueError(
                f"the sandbox tmpfs mounts (/tmp {self.tmp_size_mb} MB, /workspace "
                f"{self.workspace_size_mb} MB, /dev/shm {self.shm_size_mb} MB, and an eighth more for "
                f"their files' metadata) live in its memory "
                f"({self.memory_mb} MB) and must leave {PROCESS_RESERVE_MB} MB of it to processes: "
                "make them smaller or the memory limit larger"
            )
        return self


class SandboxRequest(BaseModel):
    """Who a sandbox is for; becomes the container's labels and mounts."""

    owner: str = Field(description="API user the sandbox belongs to.")
    run_id: str = Field(description="Run (or conversation) the sandbox serves.")
    workspace_dir: Path | None = Field(
        None, description="Host directory mounted at /workspace; None gives an ephemeral tmpfs."
    )
    workspace_volume: str | None = Field(
        None,
        description="Docker volume (on the sandbox's engine) mounted at /workspace instead of a host "
        "directory: a workspace on a remote engine; made on first use.",
    )
    engine: str | None = Field(
        None, description="The engine to start on (an AGENT_DOCKER_HOSTS name); None: the backend picks."
    )
    pool: bool = Field(False, description="A warm-pool spare, started before anyone claims it.")

    @property
    def ephemeral(self) -> bool:
        """A tmpfs /workspace: nothing of it outlives the sandbox, so any engine (or spare) will do."""
        return self.workspace_dir is None and self.workspace_volume is None


class Sandbox(Protocol):
    """A started, isolated environment that runs commands in /workspace."""

    @property
    def id(self) -> str: ...

    # The timeout is a parameter, not asyncio.timeout(): it must kill the command, not just stop waiting.
    async def run_bash(self, command: str, timeout: float, on_output: OnOutput | None = None) -> ExecResult:
        """Run ``command`` with bash; kill its whole process group on timeout or cancel.

        ``on_output``, when given, sees the output as it is produced (the result still holds it,
        bounded to head and tail).
        """
        ...

    async def run_python(
        self, code: str, timeout: float, on_output: OnOutput | None = None, session: str | None = None
    ) -> ExecResult:
        """Run ``code`` with python3; same guarantees as :meth:`run_bash`.

        With a ``session``, in that session's persistent interpreter (started on its first call):
        variables, imports and open files survive between its calls. An exception is a result (its
        traceback on stderr, exit code 1); at the timeout the call is interrupted with
        ``KeyboardInterrupt`` (``timed_out``, the state survives), and an interpreter that does not
        come back from that is killed (``state_lost``). None: a new python3 process per call.
        """
        ...

    async def alive(self) -> bool:
        """Whether the sandbox can still run commands (a long-lived one may have died meanwhile)."""
        ...


@runtime_checkable
class FileTransfer(Protocol):
    """A sandbox whose /workspace is reached through its engine, not a host path (a Docker volume).

    Paths are absolute in the sandbox; the engine resolves them inside the sandbox's own filesystem,
    so no path (nor a symlink the agent made) reaches anything outside it.
    """

    def export_archive(self, path: str) -> AbstractContextManager[tuple[PathKind, Iterator[bytes]]]:
        """What ``path`` is (never following a symlink there) and a tar stream of it; blocks (a thread's).

        A missing path is a ``FileNotFoundError``. Read the stream only for what you want whole:
        a directory's is every file under it.
        """
        ...

    def import_archive(self, directory: str, archive: Iterable[bytes]) -> None:
        """Unpack a tar into the existing ``directory``, owners and modes as the tar says; blocks."""
        ...


class EngineStatus(BaseModel):
    """One Docker engine as placement sees it."""

    name: str = Field(description="Its AGENT_DOCKER_HOSTS name.")
    files: Literal["bind", "volume"] = Field(
        description="How its sandboxes get a workspace's files: a host directory, or a volume on the engine."
    )
    capacity: int | None = Field(description="The most sandboxes it may hold; None: no limit.")
    sandboxes: int | None = Field(description="Sandboxes on it now (every worker's); None: unreachable.")
    problem: str | None = Field(None, description="Why it is unreachable.")

    @property
    def room(self) -> float:
        """Sandboxes it can take still (infinite without a capacity; 0 when unreachable)."""
        if self.sandboxes is None:
            return 0
        return float("inf") if self.capacity is None else max(self.capacity - self.sandboxes, 0)


class SandboxEngines(Protocol):
    """The engines a backend starts sandboxes on, for placement (:mod:`runtime.workspaces.placement`)."""

    async def engines(self) -> list[EngineStatus]:
        """Every configured engine, probed now (unreachable ones with ``sandboxes`` None)."""
        ...

    async def probe(self, name: str) -> EngineStatus | None:
        """One engine, probed now; None when no engine has that name (any more)."""
        ...


class SandboxFactory(Protocol):
    """Creates sandboxes; the returned context removes the sandbox on exit, whatever happened."""

    def open(self, request: SandboxRequest) -> AbstractAsyncContextManager[Sandbox]: ...
