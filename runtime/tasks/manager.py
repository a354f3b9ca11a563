"""Background tasks: a message starts a run of the agent loop on a conversation, followed by offset.

Limits: ``max_per_user`` active (pending or running) tasks per user, beyond which a new message is
a :class:`ConflictError` (409, as docs/tasks.md says), and at most ``max_running`` running at once in
the worker; tasks beyond that wait as ``pending`` (queued, never rejected).

The queue is the store's: a task the worker has a free slot for is stored already claimed by it
(running) and started at once; any other is stored ``pending`` with no worker, its request with it
(:class:`~runtime.tasks.queue.QueuedRequest`). Each worker's dispatcher (:meth:`TaskManager.dispatching`)
claims the oldest queued task whenever it has a free slot: one of its tasks ended, a task was
queued (by any worker: the store's notification), or a periodic tick. So a task waits for the
first free slot of any worker, and outlives the worker that accepted it.

Every event goes to the store first, which then wakes the pollers waiting on that task, so a
reader never sees an event that is not durable. Cancel cancels the asyncio task: the loop does not catch
cancellation, so the model stream is dropped and the sandbox kills the running process group.

Several workers may share one PostgreSQL store: a task runs in the worker that claimed it, and
the others read it from the store. Reading a task another worker runs waits on the store's
notifications and asks the store whether it is still active; canceling it sends the store's
cancel request, which that worker's manager acts on (:meth:`TaskManager._cancel_requested`).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from pydantic import BaseModel, Field, ValidationError

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
from runtime.errors import AgentWorkerError, NotFoundError, UnavailableError
from runtime.store import ACTIVE, QueuedRun, RunRecord, RunStatus, Store, StoredEvent
from runtime.tasks.conversations import Conversations
from runtime.tasks.queue import QueuedRequest, SpecResolver
from runtime.telemetry import Telemetry, no_telemetry
from runtime.workspaces.placement import PlacementRecord
from runtime.workspaces.sandboxes import WorkspaceSandboxes

__all__ = ["FinishedHandler", "TaskLimits", "TaskManager", "TaskSpec"]

log = structlog.get_logger(__name__)

INTERRUPTED = "interrupted: the worker stopped before the task finished"
_ENDED_ELSEWHERE = "ended by another worker"  # a cancel reason that writes nothing
QUEUE_TICK = 5.0
"""Seconds between a dispatcher's looks at the queue when nothing woke it (a lost notification)."""

FinishedHandler = Callable[[str], Awaitable[object]]
"""Called with a task's id once this worker has ended it (its final status written)."""


class TaskLimits(BaseModel):
    max_per_user: int = Field(1, ge=1, description="Active (pending or running) tasks per user.")
    max_running: int = Field(
        4, ge=1, description="Tasks running at once in the worker; more wait as pending in the queue."
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
    model_key: str | None = None  # ``model``'s key in the model registry (None: the default), stored


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
        queue_tick: float = QUEUE_TICK,
    ) -> None:
        """``elsewhere_wait``: the longest :meth:`cancel` waits for a task another worker runs to end
        (a dead worker's tasks end once its lease expires, so: at least the lease's length)."""
        self._store = store
        self._conversations = conversations
        self._sandboxes = sandboxes
        self._limits = limits
        self._tasks: dict[str, asyncio.Task[None]] = {}  # the tasks this worker runs
        self._requests: dict[str, QueuedRequest] = {}  # theirs: owner and conversation come from here
        self._cancel_reasons: dict[str, str] = {}
        self._draining = False
        self._elsewhere_wait = elsewhere_wait
        self._telemetry = telemetry or no_telemetry()
        self._reserved = 0  # slots promised to a submit or a claim still talking to the store
        self._queue_tick = queue_tick
        self._queue_wake = asyncio.Event()
        self._queue_length = 0
        self._queue_waiting = False  # the queue may hold tasks: new ones queue behind them, oldest first
        self._queue_notices = 0  # tasks announced as queued, so an empty claim clears only what it saw
        self._dispatcher: asyncio.Task[None] | None = None
        self._resolve: SpecResolver | None = None
        self._finished_handlers: list[FinishedHandler] = []
        self._background: set[asyncio.Task[Any]] = set()  # cancels asked for elsewhere, finished handlers
        store.on_cancel_request(self._cancel_requested)

    def on_finished(self, handler: FinishedHandler) -> None:
        """Call ``handler(task_id)`` after this worker ends a task, whoever submitted it (the submitting worker
        may be gone): what hangs on a task's end is settled here (orders, house tasks)."""
        self._finished_handlers.append(handler)

    # --- starting -----------------------------------------------------------------------------

    async def submit(self, spec: TaskSpec) -> RunRecord:
        if self._draining:
            raise UnavailableError("the worker is shutting down; send the message again after it restarts")
        task_id = spec.task_id or str(uuid.uuid4())
        request = QueuedRequest.of(spec)
        # A free slot here and nothing older waiting: stored as this worker's and started at once.
        # Otherwise queued for any worker (this one's dispatcher claims it at once if it can).
        queued = self._free_slots() <= 0 or self._queue_waiting
        if not queued:
            self._reserved += 1
        try:
            # The store counts the user's active tasks and the conversation's in the transaction
            # that creates this one (ConflictError past the limit), so no other submit, here or in
            # another worker on the same database, can slip in between.
            record = await self._store.admit_task(
                task_id,
                spec.owner,
                workspace_id=spec.workspace_id,
                conversation_id=spec.conversation_id,
                max_active=self._limits.max_per_user,
                request=request.model_dump_json(),
                first=RunStarted(
                    message=spec.message, max_iterations=spec.max_iterations, model=spec.model.name
                ),
                queued=queued,
            )
            if not queued:
                self._launch(task_id, request, spec)
        finally:
            if not queued:
                self._reserved -= 1
        return record

    def _free_slots(self) -> int:
        return self._limits.max_running - len(self._tasks) - self._reserved

    def _launch(self, task_id: str, request: QueuedRequest, spec: TaskSpec | None) -> None:
        """Run the task here; ``spec`` None: taken from the queue, rebuilt from ``request`` first."""
        self._requests[task_id] = request
        task = asyncio.create_task(self._execute(task_id, request, spec), name=f"task-{task_id}")
        self._tasks[task_id] = task
        task.add_done_callback(lambda _: self._forget(task_id))

    def _forget(self, task_id: str) -> None:
        self._tasks.pop(task_id, None)
        self._requests.pop(task_id, None)
        self._cancel_reasons.pop(task_id, None)
        self._queue_wake.set()  # a slot is free: the dispatcher looks at the queue
        for handler in self._finished_handlers:
            self._spawn(self._call_finished(handler, task_id), f"finished-{task_id}")

    async def _call_finished(self, handler: FinishedHandler, task_id: str) -> None:
        try:
            await handler(task_id)
        except Exception:  # logged; the start-up and sweep reconciliations settle what it did not
            log.exception("task_finished_handler_failed", task_id=task_id)

    def _spawn(self, coroutine: Awaitable[Any], name: str) -> None:
        task = asyncio.ensure_future(coroutine)
        task.set_name(name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- the queue ----------------------------------------------------------------------------

    @asynccontextmanager
    async def dispatching(self, resolve: SpecResolver) -> AsyncIterator[None]:
        """Take tasks from the queue while the block runs, rebuilding each one's spec with ``resolve``.

        What waits in the queue already (a restart's) is claimed before the block starts, so a new
        task submitted then cannot start ahead of it.
        """
        self._resolve = resolve
        self._store.on_queued(self._queued)
        await self._claim_while_free()
        self._dispatcher = asyncio.create_task(self._dispatch(), name="task-queue")
        try:
            yield
        finally:
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._dispatcher

    def _queued(self) -> None:
        self._queue_notices += 1
        self._queue_waiting = True
        self._queue_wake.set()

    async def _dispatch(self) -> None:
        loop = asyncio.get_running_loop()
        next_count = 0.0
        while not self._draining:
            self._queue_wake.clear()
            try:
                await self._claim_while_free()
                if loop.time() >= next_count:
                    self._queue_length = await self._store.queue_length()
                    next_count = loop.time() + self._queue_tick
            except Exception:  # the database away for a moment: tried again at the next wake-up
                log.exception("task_queue_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue_wake.wait(), self._queue_tick)

    async def _claim_while_free(self) -> None:
        """Claim the oldest queued task, and the next, while this worker has a free slot."""
        while not self._draining and self._free_slots() > 0:
            self._reserved += 1
            try:
                notices = self._queue_notices
                queued = await self._store.claim_queued()
                if queued is None:
                    if notices == self._queue_notices:  # none announced during the claim
                        self._queue_waiting = False
                    return
                self._launch_queued(queued)
            finally:
                self._reserved -= 1

    def _launch_queued(self, queued: QueuedRun) -> None:
        try:
            request = QueuedRequest.model_validate_json(queued.request)
        except ValidationError as e:  # written by a version of the worker that stored something else
            log.error("queued_task_unreadable", task_id=queued.id, error=str(e))
            self._spawn(
                self._store.set_status(queued.id, "failed", "its stored request is unreadable"), "unreadable"
            )
            return
        log.info("queued_task_claimed", task_id=queued.id, owner=request.owner)
        self._launch(queued.id, request, None)

    # --- running ------------------------------------------------------------------------------

    async def _execute(self, task_id: str, request: QueuedRequest, spec: TaskSpec | None) -> None:
        sink = _TaskSink(self._store, task_id, self._telemetry)
        with structlog.contextvars.bound_contextvars(task_id=task_id, owner=request.owner):
            try:
                if spec is None:
                    await sink.emit(StatusChanged(status="running"))
                    try:
                        spec = await self._rebuild(task_id, request)
                    except AgentWorkerError as e:  # its model or workspace is gone: it cannot run
                        error = f"could not be started: {e}"
                        await sink.emit(RunFailed(error=error, response="", iterations=0, usage=Usage()))
                        await self._finish(task_id, request, "failed", error, None)
                        return
                outcome = await self._run(task_id, spec, sink)
            except asyncio.CancelledError:
                reason = self._cancel_reasons.get(task_id, "canceled")
                if reason == _ENDED_ELSEWHERE:
                    log.warning("task_ended_by_another_worker")
                    return
                await asyncio.shield(self._finish_canceled(task_id, request, sink, reason))
                return
            except Exception as e:  # a bug of ours: record it, keep the worker up
                log.exception("task_crashed")
                with contextlib.suppress(Exception):  # logged by the sink already
                    await sink.flush()  # what the run emitted lands before its status says it ended
                await self._finish(
                    task_id, request, "failed", f"internal error: {type(e).__name__}: {e}", None
                )
                return
            await self._finish(
                task_id, request, "failed" if outcome.error else "completed", outcome.error, outcome
            )

    async def _rebuild(self, task_id: str, request: QueuedRequest) -> TaskSpec:
        if self._resolve is None:
            raise UnavailableError("this worker takes no tasks from the queue")
        return await self._resolve(task_id, request)

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
        self,
        task_id: str,
        request: QueuedRequest,
        status: RunStatus,
        error: str | None,
        outcome: RunOutcome | None,
    ) -> None:
        if outcome is None or outcome.error is not None:
            await self._note_unanswered(request, error)
        await self._store.set_status(task_id, status, error)  # wakes the task's readers
        log.info("task_finished", status=status, error=error)

    async def _note_unanswered(self, request: QueuedRequest, error: str | None) -> None:
        # A failed run's tool history may be cut mid-iteration; keep the exchange readable.
        note = f"(the task ended without an answer: {error})"
        await self._conversations.append(
            request.conversation_id,
            [{"role": "user", "content": request.message}, {"role": "assistant", "content": note}],
        )

    async def _finish_canceled(
        self, task_id: str, request: QueuedRequest, sink: _TaskSink, reason: str
    ) -> None:
        if reason == INTERRUPTED:
            await sink.emit(
                RunFailed(error=reason, response=sink.response, iterations=sink.iterations, usage=sink.usage)
            )
            await self._finish(task_id, request, "failed", reason, None)
        else:
            await sink.emit(RunCanceled(reason=reason, response=sink.response, iterations=sink.iterations))
            await self._finish(task_id, request, "canceled", reason, None)

    # --- controlling and reading --------------------------------------------------------------

    async def cancel(self, task_id: str, reason: str = "canceled by the user") -> bool:
        """Cancel a pending or running task and wait until its final event is written."""
        task = self._tasks.get(task_id)
        if task is None:
            if await self._cancel_queued(task_id, reason):
                return True
            task = self._tasks.get(task_id)  # claimed by this worker's dispatcher meanwhile
            if task is None:
                return await self._cancel_elsewhere(task_id, reason)
        self._cancel_reasons.setdefault(task_id, reason)
        task.cancel()
        await asyncio.wait([task])
        return True

    def _cancel_requested(self, task_id: str, reason: str) -> None:
        if task_id in self._tasks:  # every worker hears every request; the one running it acts
            self._spawn(self.cancel(task_id, reason), f"cancel-{task_id}")

    async def _cancel_queued(self, task_id: str, reason: str) -> bool:
        """End the task as canceled if it still waits in the queue (any worker may: the store writes
        its final event and status at once, and only if no worker claimed it first)."""
        final = RunCanceled(reason=reason, response="", iterations=0)
        ended = await self._store.cancel_queued(task_id, final, reason)
        if ended is None:
            return False
        log.info("queued_task_canceled", task_id=task_id, reason=reason)
        with contextlib.suppress(ValidationError):
            await self._note_unanswered(QueuedRequest.model_validate_json(ended.request), reason)
        for handler in self._finished_handlers:
            self._spawn(self._call_finished(handler, task_id), f"finished-{task_id}")
        return True

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
        """Pending (in the queue) or running, in this worker or (on a shared store) in another."""
        if task_id in self._tasks:
            return True
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
        return len(self._tasks)

    @property
    def pending_count(self) -> int:
        """Tasks waiting in the queue, of every worker, as this worker's dispatcher last counted them."""
        return self._queue_length

    def is_active(self, task_id: str) -> bool:
        """Running in this worker (:meth:`running` also asks the store)."""
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
        # A queued task, or another worker's: its status is written right after its final event
        # (or, if that worker died in between, by the lease sweep).
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
        """Shutdown: refuse new tasks, give running ones the grace period, then end them as interrupted.

        The dispatcher stops claiming first (a claim under way still starts its task, drained with
        the others); the queue's tasks stay there for the other workers, or this one's restart.
        """
        self._draining = True
        self._queue_wake.set()
        if self._dispatcher is not None:
            await asyncio.wait([self._dispatcher])
        tasks = list(self._tasks.items())
        if not tasks:
            await self._settle_background()
            return
        log.info("draining_tasks", count=len(tasks), grace=self._limits.shutdown_grace)
        _, pending = await asyncio.wait([t for _, t in tasks], timeout=self._limits.shutdown_grace)
        for task_id, task in tasks:
            if task in pending:
                self._cancel_reasons[task_id] = INTERRUPTED
                task.cancel()
        if pending:
            await asyncio.wait(pending)
        await self._settle_background()

    async def _settle_background(self) -> None:
        """Wait for the finished handlers of the tasks that ended (they settle orders, house tasks)."""
        while self._background:
            await asyncio.wait(list(self._background))

    async def conversation_busy(self, conversation_id: str) -> bool:
        """A task of the conversation is running here, or pending or running in the store (any worker)."""
        if any(request.conversation_id == conversation_id for request in self._requests.values()):
            return True
        return await self._store.conversation_active(conversation_id)
