"""One command in a started sandbox: handed to its executor, captured, timed out, killed.

The executor inside the container (:mod:`sandbox.container.executor`) spawns the command in a session of its
own, streams its output and kills the session on timeout or cancel. This is the worker's side of
one call: a ``run`` request (or a ``py_exec`` one, for a cell of a session's Python kernel) over the
sandbox's :class:`~sandbox.docker_engine.channel.Channel`, each chunk fed to
a head + tail capture and to ``on_output``, and the ``exit`` event turned into an
:class:`~sandbox.base.ExecResult`.

The timeout is enforced twice. The executor kills the call when it passes; should that not happen
(the executor wedged), the worker sends a cancel ``_SLACK`` seconds later, and when even that goes
unanswered the call fails with :class:`SandboxExecError`. A cancel of the awaiting task, or an
``on_output`` that raises, cancels the command too and waits for the kill before propagating.
"""

# ASYNC109: a timeout here is enforced by killing the command, which asyncio.timeout() cannot do.

from __future__ import annotations

import asyncio
from typing import Literal

from sandbox.base import ExecResult, OnOutput
from sandbox.docker_engine.channel import Channel
from sandbox.docker_engine.output import BoundedOutput
from sandbox.docker_engine.wire import (
    CancelRequest,
    ErrorEvent,
    Event,
    ExitEvent,
    OutputEvent,
    PyExecRequest,
    RunRequest,
)
from sandbox.errors import SandboxExecError

__all__ = ["Interpreter", "run_call", "run_cell"]

Interpreter = Literal["bash", "python3"]

_Events = asyncio.Queue[Event | None]
_SLACK = 5.0  # past the timeout: the executor's kill lands within ms of it (a kernel's within 2 s)
_STOP_WAIT = 5.0  # after a cancel: how long the kill may take to be confirmed


async def run_call(
    channel: Channel,
    interpreter: Interpreter,
    source: str,
    timeout: float,
    output_limit: int,
    on_output: OnOutput | None = None,
) -> ExecResult:
    """Run ``source`` with ``interpreter``; a timeout or cancel kills the call's process group."""
    call = _Call(channel, output_limit, on_output)
    return await call.run(RunRequest(id=call.id, argv=[interpreter, "-c", source], timeout=timeout))


async def run_cell(
    channel: Channel,
    session: str,
    code: str,
    timeout: float,
    output_limit: int,
    on_output: OnOutput | None = None,
) -> ExecResult:
    """Run ``code`` in ``session``'s Python kernel; a timeout or cancel interrupts it (SIGINT)."""
    call = _Call(channel, output_limit, on_output)
    return await call.run(PyExecRequest(id=call.id, session=session, code=code, timeout=timeout))


class _Call:
    def __init__(self, channel: Channel, output_limit: int, on_output: OnOutput | None) -> None:
        self._channel = channel
        self._on_output = on_output
        self._outputs = {"stdout": BoundedOutput(output_limit), "stderr": BoundedOutput(output_limit)}
        self.id = channel.next_id()
        self._ended = False

    async def run(self, request: RunRequest | PyExecRequest) -> ExecResult:
        timeout = request.timeout
        events = self._channel.subscribe(self.id)
        try:
            self._channel.send(request)
            end = await self._until_exit(events, timeout + _SLACK, forward=True)
            if end is None:
                end = await self._stop(events)
                self._ended = True
                if end is None:
                    raise SandboxExecError(
                        f"the sandbox executor neither ended nor killed a call {_SLACK:g} s past its "
                        f"{timeout:g} s timeout"
                    )
                end = end.model_copy(update={"timed_out": True, "canceled": False})
        except BaseException:
            if not self._ended:
                await asyncio.shield(self._stop(events))  # the command must not outlive its call
            raise
        finally:
            self._channel.unsubscribe(self.id)
        stdout, stderr = self._outputs["stdout"].result(), self._outputs["stderr"].result()
        return ExecResult(
            exit_code=end.exit_code,
            stdout=stdout,
            stderr=stderr,
            duration=end.duration,
            timed_out=end.timed_out,
            canceled=end.canceled,
            oom_killed=False,  # only the sandbox can tell, from its memory cgroup
            state_lost=end.state_lost,
        )

    async def _until_exit(self, events: _Events, wait: float, forward: bool) -> ExitEvent | None:
        """Consume events up to the call's exit; None when ``wait`` seconds pass first."""
        deadline = asyncio.get_running_loop().time() + wait
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    event = await events.get()
            except TimeoutError:
                return None
            try:
                if event is None:
                    self._ended = True
                    raise self._channel.failure()
                if isinstance(event, OutputEvent):
                    self._outputs[event.stream].feed(event.data)
                    if forward and self._on_output is not None:
                        await self._on_output(event.stream, event.data)
                elif isinstance(event, ExitEvent):
                    self._ended = True
                    return event
                elif isinstance(event, ErrorEvent):
                    self._ended = True
                    raise SandboxExecError(f"the sandbox executor could not run the command: {event.message}")
            finally:
                self._channel.consumed(event)

    async def _stop(self, events: _Events) -> ExitEvent | None:
        """Cancel the command and wait for its exit; None when the executor cannot confirm it."""
        try:
            self._channel.send(CancelRequest(id=self.id))
            return await self._until_exit(events, _STOP_WAIT, forward=False)
        except SandboxExecError:
            return None
