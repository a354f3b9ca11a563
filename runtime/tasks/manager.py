"""Background tasks: a message starts a run of the agent loop on a conversation, followed by offset.

Limits: ``max_per_user`` active (pending or running) tasks per user, beyond which a new message is
a :class:`ConflictError` (409, as docs/tasks.md says), and at most ``max_running`` running at once in
the worker; tasks beyond that wait as ``pending`` (queued, never rejected).

Every event goes to the store first, which then wakes the pollers waiting on that task, so a
reader never sees an event that is not durable. Cancel cancels the asyncio task: the loop does not catch
cancellation, so the model stream is dropped and the sandbox kills the running process group.

Several workers may share one PostgreSQL store: a task runs in the worker that admitted it, and
the others read it from the store. Reading a task another worker runs waits on the store's
notifications and asks the store whether it is still active; canceling it sends the store's
cancel request, which that worker's manager acts on (:meth:`TaskManager._cancel_requested`).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from pydantic import BaseModel, Field

from runtime.engine.events import (
    Event,
    IterationStarted,
    ModelResponse,
    RunCanceled,
    RunFailed,
    RunStarted,
    StatusChanged,
    Usage,
    WorkspaceMoved,
)
from runtime.engine.loop import LoopConfig, RunOutcome, run_agent
from runtime.engine.model_client import ChatModel
from runtime.engine.runs import LazySandbox, StoreSink
from runtime.errors import NotFoundError, UnavailableError
from runtime.store import ACTIVE, RunRecord, RunStatus, Store, StoredEvent
from runtime.tasks.conversations import Conversations
from runtime.telemetry import Telemetry, no_telemetry
from runtime.workspaces.placement import PlacementRecord
from runtime.workspaces.sandboxes import WorkspaceSandboxes

__all__ = ["TaskLimits", "TaskManager", "TaskSpec"]

log = structlog.get_logger(__name__)

INTERRUPTED = "interrupted: the worker stopped before the task finished"
_ENDED_ELSEWHERE = "ended by another worker"  # a cancel reason that writes nothing


class TaskLimits(BaseModel):
    max_per_user: int = Field(1, ge=1, description="Active (pending or running) tasks per user.")
    max_running: int = Field(
        4, ge=1, description="Tasks running at once in the worker; more wait as pending."
    )
    shutdown_grace: float = Field(20.0, ge=0, description="Seconds running tasks get to finish at shutdown.")


@dataclass(frozen=True)
class TaskSpec:
    """Everything a task needs, resolved by the caller (model, prompt, workspace directory)."""

    owner: str
    workspace_id: str
    conversation_id: str
    message: str
    max_iterations: int
    model: ChatModel
    loop_config: LoopConfig
    files_dir: Path
    task_id: str | None = None  # chosen by the caller (an order's id); None: a new uuid


class _TaskSink(StoreSink):
    """A :class:`StoreSink` that keeps how far the run got (iterations started, the last model text, the usage), counted as
    the loop counts them for ``run_completed``: a canceled or interrupted run's final event is
    written here, not by the loop, and must not say it made no model call.
    """

    def __init__(self, store: Store, task_id: str, telemetry: Telemetry) -> None:
        super().__init__(store, task_id, telemetry)
        self.iterations = 0
        self.response = ""
        self.usage = Usage()

    async def emit(self, event: Event) -> None:
        if isinstance(event, IterationStarted):
            self.iterations = event.iteration
        elif isinstance(event, ModelResponse):
            self.response = event.content
            self.usage += event.usage
        await super().emit(event)


class TaskManager:
    def __init__(
        self,
        store: Store,
        conversations: Conversations,
        sandboxes: WorkspaceSandboxes,
        limits: TaskLimits,
        *,
        elsewhere_wait: float = 60.0,
        telemetry: Telemetry | None = None,
    ) -> None:
        """``elsewhere_wait``: the longest :meth:`cancel` waits for a task another worker runs to end
        (a dead worker's tasks end once its lease expires, so: at least the lease's length)."""
        self._store = store
        self._conversations = conversations
        self._sandboxes = sandboxes
        self._limits = limits
        self._slots = asyncio.Semaphore(limits.max_running)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._specs: dict[str, TaskSpec] = {}  # of the active tasks: owner and conversation come from here
        self._cancel_reasons: dict[str, str] = {}
        self._draining = False
        self._elsewhere_wait = elsewhere_wait
        self._telemetry = telemetry or no_telemetry()
        self._running = 0  # tasks holding a slot; the others in _tasks wait for one
        self._requested: set[asyncio.Task[bool]] = set()  # cancels asked for by other workers
        store.on_cancel_request(self._cancel_requested)

    # --- starting -----------------------------------------------------------------------------

    async def submit(self, spec: TaskSpec) -> RunRecord:
        if self._draining:
            raise UnavailableError("the worker is shutting down; send the message again after it restarts")
        task_id = spec.task_id or str(uuid.uuid4())
        status: RunStatus = "pending" if self._slots.locked() else "running"
        # The store counts the user's active tasks and the conversation's in the transaction that
        # creates this one (ConflictError past the limit), so no other submit, here or in another
        # worker on the same database, can slip in between.
        record = await self._store.admit_task(
            task_id,
            spec.owner,
            status,
            workspace_id=spec.workspace_id,
            conversation_id=spec.conversation_id,
            max_active=self._limits.max_per_user,
        )
        self._specs[task_id] = spec
        sink = _TaskSink(self._store, task_id, self._telemetry)
        try:
            await sink.emit(
                RunStarted(message=spec.message, max_iterations=spec.max_iterations, model=spec.model.name)
            )
        except BaseException as e:
            del self._specs[task_id]
            with contextlib.suppress(Exception):  # the run must not count as active for ever
                await asyncio.shield(self._store.set_status(task_id, "failed", f"not started: {e!r}"))
            raise
        task = asyncio.create_task(self._execute(task_id, spec, sink, status), name=f"task-{task_id}")
        self._tasks[task_id] = task
        task.add_done_callback(lambda _: self._forget(task_id))
        return record

    def _forget(self, task_id: str) -> None:
        self._tasks.pop(task_id, None)
        self._specs.pop(task_id, None)
        self._cancel_reasons.pop(task_id, None)

    # --- running ------------------------------------------------------------------------------

    async def _execute(self, task_id: str, spec: TaskSpec, sink: _TaskSink, status: RunStatus) -> None:
        with structlog.contextvars.bound_contextvars(task_id=task_id, owner=spec.owner):
            try:
                async with self._slots:
                    self._running += 1
                    try:
                        if status == "pending":
                            await self._store.set_status(task_id, "running")
                            await sink.emit(StatusChanged(status="running"))
                        outcome = await self._run(task_id, spec, sink)
                    finally:
                        self._running -= 1
            except asyncio.CancelledError:
                reason = self._cancel_reasons.get(task_id, "canceled")
                if reason == _ENDED_ELSEWHERE:
                    log.warning("task_ended_by_another_worker")
                    return
                await asyncio.shield(self._finish_canceled(task_id, spec, sink, reason))
                return
            except Exception as e:  # a bug of ours: record it, keep the worker up
                log.exception("task_crashed")
                with contextlib.suppress(Exception):  # logged by the sink already
                    await sink.flush()  # what the run emitted lands before its status says it ended
                await self._finish(task_id, spec, "failed", f"internal error: {type(e).__name__}: {e}", None)
                return
            await self._finish(
                task_id, spec, "failed" if outcome.error else "completed", outcome.error, outcome
            )

    async def _run(self, task_id: str, spec: TaskSpec, sink: _TaskSink) -> RunOutcome:
        history = await self._conversations.history(spec.conversation_id)
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": spec.loop_config.system_prompt},
            *history,
            {"role": "user", "content": spec.message},
        ]

        async def moved(placed: PlacementRecord) -> None:  # its engine went away: say what stayed there
            assert placed.lost is not None
            lost = placed.lost
            await sink.emit(
                WorkspaceMoved(
                    engine=placed.engine, lost_engine=lost.engine, lost_volume=lost.volume, reason=lost.reason
                )
            )

        lease = self._sandboxes.lease
        lazy = LazySandbox(lambda: lease(spec.owner, spec.workspace_id, spec.files_dir, on_move=moved))
        with self._telemetry.run("task", task_id, spec.model.name, spec.conversation_id) as observer:
            async with lazy:
                outcome = await run_agent(
                    messages,
                    model=spec.model,
                    get_sandbox=lazy,
                    config=spec.loop_config,
                    max_iterations=spec.max_iterations,
                    sink=sink,
                    observer=observer,
                )
        if outcome.error is None:
            # Everything after the system message and the replayed history is this task's part.
            await self._conversations.append(spec.conversation_id, outcome.messages[1 + len(history) :])
        return outcome

    async def _finish(
        self, task_id: str, spec: TaskSpec, status: RunStatus, error: str | None, outcome: RunOutcome | None
    ) -> None:
        if outcome is None or outcome.error is not None:
            # A failed run's tool history may be cut mid-iteration; keep the exchange readable.
            note = f"(the task ended without an answer: {error})"
            await self._conversations.append(
                spec.conversation_id,
                [{"role": "user", "content": spec.message}, {"role": "assistant", "content": note}],
            )
        await self._store.set_status(task_id, status, error)  # wakes the task's readers
        log.info("task_finished", status=status, error=error)

    async def _finish_canceled(self, task_id: str, spec: TaskSpec, sink: _TaskSink, reason: str) -> None:
        if reason == INTERRUPTED:
            await sink.emit(
                RunFailed(error=reason, response=sink.response, iterations=sink.iterations, usage=sink.usage)
            )
            await self._finish(task_id, spec, "failed", reason, None)
        else:
            await sink.emit(RunCanceled(reason=reason, response=sink.response, iterations=sink.iterations))
            await self._finish(task_id, spec, "canceled", reason, None)

    # --- controlling and reading --------------------------------------------------------------

    async def cancel(self, task_id: str, reason: str = "canceled by the user") -> bool:
        """Cancel a pending or running task and wait until its final event is written."""
        task = self._tasks.get(task_id)
        if task is None:
            return await self._cancel_elsewhere(task_id, reason)
        self._cancel_reasons.setdefault(task_id, reason)
        task.cancel()
        await asyncio.wait([task])
        return True

    def _cancel_requested(self, task_id: str, reason: str) -> None:
        if task_id in self._tasks:  # every worker hears every request; the one running it acts
            request = asyncio.create_task(self.cancel(task_id, reason), name=f"cancel-{task_id}")
            self._requested.add(request)
            request.add_done_callback(self._requested.discard)

    async def _cancel_elsewhere(self, task_id: str, reason: str) -> bool:
        """Ask the worker running the task to cancel it; until it has ended or ``elsewhere_wait``.

        The request is sent again every second: the task may have been admitted by that worker
        and not yet started when the first one came, and a notification is heard once.
        """
        if self._store.dialect == "sqlite":
            return False  # one process: a task not running here is not running
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._elsewhere_wait
        asked = False
        while True:
            wake = self._store.watch(task_id)
            if not await self._active_in_store(task_id):
                return asked
            remaining = deadline - loop.time()
            if remaining <= 0:
                return True  # asked; its worker, or the lease sweep, ends it
            await self._store.request_cancel(task_id, reason)
            asked = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), min(1.0, remaining))

    async def _active_in_store(self, task_id: str) -> bool:
        try:
            record = await self._store.get_run(task_id)
        except NotFoundError:
            return False
        return record.status in ACTIVE

    async def let_go_of_ended(self) -> list[str]:
        """Stop, without a word, the tasks here whose run another worker has ended (this worker's
        lease had expired); their final event and status are that worker's."""
        ended = [task_id for task_id in list(self._tasks) if not await self._active_in_store(task_id)]
        tasks = []
        for task_id in ended:
            task = self._tasks.get(task_id)
            if task is not None:
                self._cancel_reasons[task_id] = _ENDED_ELSEWHERE
                task.cancel()
                tasks.append(task)
        if tasks:
            await asyncio.wait(tasks)
        return ended

    async def running(self, task_id: str) -> bool:
        """Pending or running, in this worker or (on a shared store) in another."""
        if task_id in self._tasks:
            return True
        if self._store.dialect == "sqlite":
            return False
        return await self._active_in_store(task_id)

    async def events(self, task_id: str, from_offset: int, limit: int, wait: float) -> list[StoredEvent]:
        """Events from ``from_offset``; with ``wait``, hold until one arrives or the task ends.

        A wake-up may find nothing new (PostgreSQL's notification of an event this process read
        already): the wait goes on until its deadline.
        """
        deadline = asyncio.get_running_loop().time() + wait
        while True:
            wake = self._store.watch(task_id)
            events = await self._store.events(task_id, from_offset, limit)
            remaining = deadline - asyncio.get_running_loop().time()
            if events or remaining <= 0 or not await self.running(task_id):
                return events
            try:
                await asyncio.wait_for(wake.wait(), remaining)
            except TimeoutError:
                return await self._store.events(task_id, from_offset, limit)

    @property
    def running_count(self) -> int:
        """Tasks of this worker running now."""
        return self._running

    @property
    def pending_count(self) -> int:
        """Tasks of this worker waiting for a running slot."""
        return len(self._tasks) - self._running

    def is_active(self, task_id: str) -> bool:
        """Pending or running in this worker (:meth:`running` also asks the store)."""
        return task_id in self._tasks

    async def wait_finished(self, task_id: str) -> None:
        """Until the task has ended and let go of its slot: status written, a new message accepted.

        Its final event is appended a moment before that; a surface that answers on the final event
        waits here first, so a client that sends its next message at once is not refused.
        """
        task = self._tasks.get(task_id)
        if task is not None:
            await asyncio.wait([task])  # ``_forget`` runs first: it was the first done-callback added
            return
        if self._store.dialect == "sqlite":
            return
        # Another worker's task: its status is written right after its final event (or, if that
        # worker died in between, by the lease sweep).
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._elsewhere_wait
        while True:
            wake = self._store.watch(task_id)
            remaining = deadline - loop.time()
            if not await self._active_in_store(task_id) or remaining <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), remaining)

    async def drain(self) -> None:
        """Shutdown: refuse new tasks, give running ones the grace period, then end them as interrupted."""
        self._draining = True
        tasks = list(self._tasks.items())
        if not tasks:
            return
        log.info("draining_tasks", count=len(tasks), grace=self._limits.shutdown_grace)
        _, pending = await asyncio.wait([t for _, t in tasks], timeout=self._limits.shutdown_grace)
        for task_id, task in tasks:
            if task in pending:
                self._cancel_reasons[task_id] = INTERRUPTED
                task.cancel()
        if pending:
            await asyncio.wait(pending)

    async def conversation_busy(self, conversation_id: str) -> bool:
        """A task of the conversation is pending or running, here or (shared store) in another worker."""
        if any(spec.conversation_id == conversation_id for spec in self._specs.values()):
            return True
        if self._store.dialect == "sqlite":
            return False
        return await self._store.conversation_active(conversation_id)
