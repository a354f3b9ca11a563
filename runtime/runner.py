"""One agent run from start to finish: record it, give it a sandbox, run the loop.

The sandbox is opened lazily, on the first valid tool call, and removed when the run ends
whatever happened; a run whose model answers straight away never starts a container.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from types import TracebackType

import structlog

from sandbox.base import Sandbox, SandboxFactory, SandboxRequest

from .events import Event, RunStarted
from .loop import LoopConfig, RunOutcome, run_agent
from .model_client import ChatModel
from .store import Store, StoredEvent

__all__ = ["ChatRunner", "LazySandbox", "StoreSink"]

log = structlog.get_logger(__name__)


class StoreSink:
    """An :class:`~runtime.loop.EventSink` that appends to a run's event log."""

    def __init__(self, store: Store, run_id: str) -> None:
        self._store = store
        self._run_id = run_id

    async def emit(self, event: Event) -> None:
        await self._store.append(self._run_id, event)


class LazySandbox:
    """Opens the sandbox on first use; the ``async with`` block owns (and releases) it.

    ``open_sandbox`` is any async context manager factory: an ephemeral sandbox of a factory, or
    a lease on a workspace's long-lived one.
    """

    def __init__(self, open_sandbox: Callable[[], AbstractAsyncContextManager[Sandbox]]) -> None:
        self._open = open_sandbox
        self._stack = AsyncExitStack()
        self._sandbox: Sandbox | None = None
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> LazySandbox:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._stack.aclose()

    async def __call__(self) -> Sandbox:
        async with self._lock:
            if self._sandbox is None:
                self._sandbox = await self._stack.enter_async_context(self._open())
            return self._sandbox


class ChatRunner:
    """Runs one-shot ``/chat`` requests: a new run, an ephemeral sandbox, the full event log back."""

    def __init__(self, store: Store, model: ChatModel, sandboxes: SandboxFactory, config: LoopConfig) -> None:
        self._store = store
        self._model = model
        self._sandboxes = sandboxes
        self._config = config

    async def run(
        self, owner: str, message: str, max_iterations: int
    ) -> tuple[str, RunOutcome, list[StoredEvent]]:
        run_id = str(uuid.uuid4())
        with structlog.contextvars.bound_contextvars(run_id=run_id):
            await self._store.create_run(run_id, owner, kind="chat")
            sink = StoreSink(self._store, run_id)
            await sink.emit(
                RunStarted(message=message, max_iterations=max_iterations, model=self._model.name)
            )
            messages = [
                {"role": "system", "content": self._config.system_prompt},
                {"role": "user", "content": message},
            ]
            request = SandboxRequest(owner=owner, run_id=run_id)
            # The run's execute_python calls share one interpreter; the sandbox ends with the run.
            tools = self._config.tools.model_copy(update={"python_session": run_id})
            async with LazySandbox(lambda: self._sandboxes.open(request)) as sandbox:
                outcome = await run_agent(
                    messages,
                    model=self._model,
                    get_sandbox=sandbox,
                    config=self._config.model_copy(update={"tools": tools}),
                    max_iterations=max_iterations,
                    sink=sink,
                )
            await self._store.set_status(run_id, "failed" if outcome.error else "completed", outcome.error)
            log.info(
                "run_finished",
                iterations=outcome.iterations,
                error=outcome.error,
                total_tokens=outcome.usage.total_tokens,
            )
            return run_id, outcome, await self._store.events(run_id)
