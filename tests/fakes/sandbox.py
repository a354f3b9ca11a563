"""An in-memory sandbox: the :class:`~sandbox.base.Sandbox` protocol with scripted commands, no container.

The fast tier uses it to test what sits above the sandbox seam (the loop, the task manager) without
a Docker engine. A *script* says what each command does: a mapping from the command's source (the
bash command or the Python code, verbatim) to a behaviour, or a callable that picks one::

    factory = FakeSandboxFactory({"echo hi": Exit(stdout="hi\\n"), "sleep 60": Hang()})
    async with factory.open(SandboxRequest(owner="alice", run_id="r1")) as sandbox:
        result = await sandbox.run_bash("echo hi", timeout=5)
    assert result.stdout.text == "hi\\n" and factory.sandboxes[0].closed

It keeps the guarantees the real backend gives: output is streamed to ``on_output`` chunk by chunk
(awaited before the next; if it raises, the command ends and the exception propagates) and kept
bounded to head and tail; a command that does not end by itself is killed at its timeout
(``timed_out``, no exit code); a canceled call re-raises after the command is recorded as killed; a
closed sandbox refuses commands with :class:`~sandbox.errors.SandboxExecError`; a source that cannot
be sent (a NUL byte, too long) is refused with ``ValueError``. A command the script does not know
exits 127, as bash does for an unknown command.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Literal

from sandbox.base import ExecResult, OnOutput, SandboxLimits, SandboxRequest, validate_source
from sandbox.docker_engine.output import BoundedOutput
from sandbox.errors import SandboxExecError

__all__ = ["Command", "Exit", "Fail", "FakeSandbox", "FakeSandboxFactory", "Hang", "Script"]


@dataclass(frozen=True)
class Command:
    """One call the sandbox received."""

    kind: Literal["bash", "python"]
    source: str
    timeout: float
    session: str | None = None


@dataclass(frozen=True)
class Exit:
    """Write ``stdout`` then ``stderr`` (streamed in ``chunk_bytes`` pieces), then exit."""

    stdout: str = ""
    stderr: str = ""
    exit_code: int = 0
    oom_killed: bool = False
    state_lost: bool = False
    chunk_bytes: int = 4096


@dataclass(frozen=True)
class Hang:
    """Write ``stdout``, then never end: killed at the timeout, or when the caller cancels."""

    stdout: str = ""


@dataclass(frozen=True)
class Fail:
    """The sandbox itself fails (its executor is gone): the call raises ``SandboxExecError``."""

    message: str = "the sandbox executor is gone"


Behaviour = Exit | Hang | Fail
Script = Mapping[str, Behaviour] | Callable[[Command], Behaviour]


class FakeSandbox:
    """One in-memory sandbox; see the module docstring. Records every call it gets."""

    def __init__(
        self,
        script: Script,
        limits: SandboxLimits,
        sandbox_id: str = "fake-1",
        hanging: asyncio.Queue[Command] | None = None,
    ) -> None:
        self._script = script
        self._limits = limits
        self._id = sandbox_id
        self.calls: list[Command] = []
        self.killed: list[Command] = []  # ended by us: timed out, canceled, or a failing on_output
        self.closed = False
        self.dead = False  # set by a test: alive() answers False, as for a container that died
        self._hanging = hanging if hanging is not None else asyncio.Queue()

    @property
    def id(self) -> str:
        return self._id

    async def run_bash(self, command: str, timeout: float, on_output: OnOutput | None = None) -> ExecResult:
        validate_source(command, "the command")  # the protocol's ValueError, as the real backend
        return await self._run(Command("bash", command, timeout), on_output)

    async def run_python(
        self, code: str, timeout: float, on_output: OnOutput | None = None, session: str | None = None
    ) -> ExecResult:
        validate_source(code, "the code")
        return await self._run(Command("python", code, timeout, session), on_output)

    async def alive(self) -> bool:
        return not (self.closed or self.dead)

    async def next_hanging(self) -> Command:
        """Wait until a call is hanging (a :class:`Hang` behaviour has written its output)."""
        return await self._hanging.get()

    def _behaviour(self, command: Command) -> Behaviour:
        if callable(self._script):
            return self._script(command)
        unknown = Exit(stderr=f"fake sandbox: {command.source}: command not found\n", exit_code=127)
        return self._script.get(command.source, unknown)

    async def _run(self, command: Command, on_output: OnOutput | None) -> ExecResult:
        if self.closed or self.dead:
            raise SandboxExecError(f"the sandbox executor is gone (sandbox {self._id} is closed)")
        self.calls.append(command)
        behaviour = self._behaviour(command)
        if isinstance(behaviour, Fail):
            raise SandboxExecError(behaviour.message)
        outputs = {
            "stdout": BoundedOutput(self._limits.output_limit_bytes),
            "stderr": BoundedOutput(self._limits.output_limit_bytes),
        }
        streams = [("stdout", behaviour.stdout)]
        if isinstance(behaviour, Exit):
            streams.append(("stderr", behaviour.stderr))
        chunk = behaviour.chunk_bytes if isinstance(behaviour, Exit) else 4096
        try:
            for stream, text in streams:
                data = text.encode()
                for start in range(0, len(data), chunk):
                    piece = data[start : start + chunk]
                    outputs[stream].feed(piece)
                    if on_output is not None:
                        await on_output(stream, piece)
            if isinstance(behaviour, Hang):
                self._hanging.put_nowait(command)
                await asyncio.sleep(command.timeout)
        except BaseException:
            self.killed.append(command)  # the real backend kills the process group here
            raise
        if isinstance(behaviour, Hang):
            self.killed.append(command)
            return ExecResult(
                exit_code=None,
                stdout=outputs["stdout"].result(),
                stderr=outputs["stderr"].result(),
                duration=command.timeout,
                timed_out=True,
            )
        return ExecResult(
            exit_code=behaviour.exit_code,
            stdout=outputs["stdout"].result(),
            stderr=outputs["stderr"].result(),
            duration=0.0,
            oom_killed=behaviour.oom_killed,
            state_lost=behaviour.state_lost,
        )


class FakeSandboxFactory:
    """Opens :class:`FakeSandbox` es that share one script; records requests and what it opened."""

    def __init__(self, script: Script | None = None, limits: SandboxLimits | None = None) -> None:
        self._script: Script = script if script is not None else {}
        self._limits = limits or SandboxLimits()
        self.requests: list[SandboxRequest] = []
        self.sandboxes: list[FakeSandbox] = []
        self._hanging: asyncio.Queue[Command] = asyncio.Queue()  # shared by the sandboxes it opens

    async def next_hanging(self) -> Command:
        """Wait until a call in any of its sandboxes is hanging (see :meth:`FakeSandbox.next_hanging`)."""
        return await self._hanging.get()

    @property
    def open_count(self) -> int:
        """Sandboxes opened and not closed yet."""
        return sum(not s.closed for s in self.sandboxes)

    def open(self, request: SandboxRequest) -> AbstractAsyncContextManager[FakeSandbox]:
        return self._open(request)

    @asynccontextmanager
    async def _open(self, request: SandboxRequest) -> AsyncIterator[FakeSandbox]:
        self.requests.append(request)
        sandbox = FakeSandbox(self._script, self._limits, f"fake-{len(self.sandboxes) + 1}", self._hanging)
        self.sandboxes.append(sandbox)
        try:
            yield sandbox
        finally:
            sandbox.closed = True
