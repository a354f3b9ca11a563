"""The task manager on a real store, the scripted model server and the in-memory sandbox: no Docker."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from runtime.engine.events import (
    IterationStarted,
    ModelResponse,
    RunCanceled,
    RunCompleted,
    RunFailed,
    RunStarted,
    StatusChanged,
)
from runtime.engine.loop import LoopConfig
from runtime.engine.model_client import ModelConfig, OpenAIChatModel
from runtime.errors import ConflictError, InputError, UnavailableError
from runtime.store import RunRecord, Store, StoredEvent
from runtime.tasks.conversations import Conversations
from runtime.tasks.manager import TaskLimits, TaskManager, TaskSpec
from runtime.tasks.queue import QueuedRequest
from runtime.workspaces.sandboxes import WorkspaceSandboxes
from tests.fakes import Call, Reply, ScriptedModelServer, ToolCalls, Usage
from tests.fakes import Hang as ModelHang
from tests.fakes.sandbox import Command, Exit, FakeSandboxFactory, Hang, Script

pytestmark = pytest.mark.both_engines

# Waits that the code under test should end at once get this bound, so a regression fails, not hangs.
GUARD = 10.0
SLEEP = ToolCalls([Call("execute_bash", {"command": "sleep 60", "timeout": 600})])
SCRIPT: Script = {"echo hi": Exit(stdout="hi\n"), "sleep 60": Hang()}


@dataclass
class Tasks:
    manager: TaskManager
    store: Store
    conversations: Conversations
    factory: FakeSandboxFactory
    server: ScriptedModelServer
    model: OpenAIChatModel
    files_dir: Path

    async def submit(
        self, owner: str = "alice", message: str = "go", conversation: str | None = None
    ) -> RunRecord:
        if conversation is None:
            conversation = (await self.conversations.create(owner, "ws-1")).conversation_id
        spec = TaskSpec(
            owner=owner,
            workspace_id="ws-1",
            conversation_id=conversation,
            message=message,
            max_iterations=5,
            model=self.model,
            loop_config=LoopConfig(),
            files_dir=self.files_dir,
        )
        return await self.manager.submit(spec)

    async def finished(self, task_id: str) -> RunRecord:
        await asyncio.wait_for(self.manager.wait_finished(task_id), GUARD)
        return await self.store.get_run(task_id)

    async def events(self, task_id: str) -> list[StoredEvent]:
        return await self.store.events(task_id)


MakeTasks = Callable[..., Awaitable[Tasks]]


@pytest.fixture
async def make_tasks(tmp_path: Path, store_target: str | Path) -> AsyncIterator[MakeTasks]:
    """A task manager with the given limits (no shutdown grace unless given); drained at the end."""
    made: list[tuple[Tasks, WorkspaceSandboxes]] = []
    async with Store.open(store_target) as store, ScriptedModelServer() as server, AsyncExitStack() as stack:
        model = OpenAIChatModel(ModelConfig(base_url=server.base_url, model="scripted-model", max_retries=0))

        async def make(**limits: Any) -> Tasks:
            factory = FakeSandboxFactory(SCRIPT)
            sandboxes = WorkspaceSandboxes(factory, idle_timeout=3600)
            conversations = Conversations(store)
            manager = TaskManager(
                store, conversations, sandboxes, TaskLimits(**{"shutdown_grace": 0, **limits})
            )
            files_dir = tmp_path / "files"

            async def rebuild(task_id: str, request: QueuedRequest) -> TaskSpec:
                return TaskSpec(
                    **request.model_dump(exclude={"model_key", "loop_config"}),
                    model=model,
                    loop_config=request.loop_config,
                    files_dir=files_dir,
                    task_id=task_id,
                )

            await stack.enter_async_context(manager.dispatching(rebuild))
            tasks = Tasks(manager, store, conversations, factory, server, model, files_dir)
            made.append((tasks, sandboxes))
            return tasks

        try:
            yield make
        finally:
            for tasks, sandboxes in made:
                await tasks.manager.drain()
                await sandboxes.aclose()
                assert tasks.factory.open_count == 0
            await model.aclose()


@pytest.fixture
async def tasks(make_tasks: MakeTasks) -> Tasks:
    return await make_tasks()


async def test_a_task_runs_and_its_events_are_stored_in_order(tasks: Tasks) -> None:
    tasks.server.extend([ToolCalls([Call("execute_bash", {"command": "echo hi"})]), Reply("done")])
    record = await tasks.submit(message="say hi")
    assert (record.status, record.kind, record.owner) == ("running", "task", "alice")
    assert (await tasks.finished(record.id)).status == "completed"
    assert not tasks.manager.is_active(record.id)
    events = await tasks.events(record.id)
    assert [e.offset for e in events] == list(range(len(events)))
    types = [e.event.type for e in events if e.event.type not in ("text_chunk", "tool_output")]
    assert types == [
        "run_started",
        "iteration_started",
        "model_response",
        "tool_call",
        "tool_result",
        "iteration_started",
        "model_response",
        "run_completed",
    ]
    assert events[0].event == RunStarted(message="say hi", max_iterations=5, model="scripted-model")
    assert isinstance(events[-1].event, RunCompleted) and events[-1].event.response == "done"
    # The workspace's sandbox ran the command on the workspace's files, and outlives the task.
    (request,) = tasks.factory.requests
    assert (request.owner, request.workspace_dir) == ("alice", tasks.files_dir)
    assert tasks.factory.sandboxes[0].calls == [Command("bash", "echo hi", timeout=60.0)]
    assert tasks.factory.open_count == 1


async def test_the_conversation_keeps_the_exchange_for_the_next_task(tasks: Tasks) -> None:
    tasks.server.extend([ToolCalls([Call("execute_bash", {"command": "echo hi"}, id="c1")]), Reply("done")])
    record = await tasks.submit(message="say hi")
    await tasks.finished(record.id)
    assert record.conversation_id is not None
    history = await tasks.conversations.history(record.conversation_id)
    assert [m["role"] for m in history] == ["user", "assistant", "tool", "assistant"]
    assert history[0]["content"] == "say hi" and history[-1]["content"] == "done"

    tasks.server.add(Reply("again"))
    second = await tasks.submit(message="and now?", conversation=record.conversation_id)
    await tasks.finished(second.id)
    # The model saw the system prompt, the earlier exchange, then the new message.
    messages = tasks.server.requests[-1]["messages"]
    assert messages[0]["role"] == "system"
    assert messages[1:5] == history and messages[5] == {"role": "user", "content": "and now?"}


async def test_a_reader_waiting_for_events_wakes_when_one_is_stored(tasks: Tasks) -> None:
    tasks.server.add(SLEEP)
    record = await tasks.submit()
    # An hour's wait: only the wake-up of a stored event ends it within the guard.
    first = await asyncio.wait_for(tasks.manager.events(record.id, 0, 100, wait=3600), GUARD)
    assert first[0].event.type == "run_started"
    # The run's next events may be stored before that read (a fast store): wait past all of them,
    # while the tool hangs, so only the cancel's final event can end this wait.
    await tasks.factory.next_hanging()
    stored = len(await tasks.events(record.id))
    waiting = asyncio.create_task(tasks.manager.events(record.id, stored, 100, wait=3600))
    await asyncio.sleep(0.1)  # the reader is waiting by now
    await tasks.manager.cancel(record.id)
    later = await asyncio.wait_for(waiting, GUARD)
    assert later and later[0].offset == stored
    # Once the task has ended, a reader past its last event is answered at once.
    last = (await tasks.events(record.id))[-1].offset
    assert await asyncio.wait_for(tasks.manager.events(record.id, last + 1, 100, wait=3600), GUARD) == []


async def test_cancel_kills_the_running_command_and_records_the_cancel(tasks: Tasks) -> None:
    tasks.server.add(SLEEP)
    record = await tasks.submit(message="wait")
    hanging = await tasks.factory.next_hanging()
    assert await tasks.manager.cancel(record.id) is True
    assert tasks.factory.sandboxes[0].killed == [hanging]
    run = await tasks.store.get_run(record.id)
    assert (run.status, run.error) == ("canceled", "canceled by the user")
    final = (await tasks.events(record.id))[-1].event
    assert isinstance(final, RunCanceled) and final.reason == "canceled by the user"
    assert not tasks.manager.is_active(record.id)
    assert await tasks.manager.cancel(record.id) is False  # nothing left to cancel
    assert record.conversation_id is not None
    assert await tasks.conversations.history(record.conversation_id) == [
        {"role": "user", "content": "wait"},
        {"role": "assistant", "content": "(the task ended without an answer: canceled by the user)"},
    ]


async def test_a_user_with_an_active_task_is_refused_another_and_others_are_not(tasks: Tasks) -> None:
    tasks.server.add(SLEEP)
    alice = await tasks.submit("alice")
    await tasks.factory.next_hanging()
    with pytest.raises(ConflictError, match="a task is already running for this user"):
        await tasks.submit("alice")
    tasks.server.add(Reply("hi bob"))
    bob = await tasks.submit("bob")
    assert (await tasks.finished(bob.id)).status == "completed"
    await tasks.manager.cancel(alice.id)
    tasks.server.add(Reply("hi again"))
    again = await tasks.submit("alice")  # the slot is free once the first one ended
    assert (await tasks.finished(again.id)).status == "completed"


async def test_a_conversation_runs_one_task_at_a_time(make_tasks: MakeTasks) -> None:
    tasks = await make_tasks(max_per_user=2)
    tasks.server.add(SLEEP)
    first = await tasks.submit()
    await tasks.factory.next_hanging()
    with pytest.raises(ConflictError, match="already has a running task"):
        await tasks.submit(conversation=first.conversation_id)
    await tasks.manager.cancel(first.id)


async def test_tasks_past_the_running_cap_wait_as_pending(make_tasks: MakeTasks) -> None:
    tasks = await make_tasks(max_running=1)
    tasks.server.add(SLEEP)
    alice = await tasks.submit("alice")
    await tasks.factory.next_hanging()
    bob = await tasks.submit("bob")
    assert bob.status == "pending"
    assert (await tasks.store.get_run(bob.id)).status == "pending"
    tasks.server.add(Reply("your turn"))
    await tasks.manager.cancel(alice.id)
    assert (await tasks.finished(bob.id)).status == "completed"
    types = [e.event.type for e in await tasks.events(bob.id)]
    assert types[:3] == ["run_started", "status_changed", "iteration_started"]
    assert [e.event for e in await tasks.events(bob.id) if isinstance(e.event, StatusChanged)] == [
        StatusChanged(status="running")
    ]


async def test_drain_ends_running_tasks_as_interrupted_and_refuses_new_ones(tasks: Tasks) -> None:
    tasks.server.add(SLEEP)
    record = await tasks.submit()
    hanging = await tasks.factory.next_hanging()
    await asyncio.wait_for(tasks.manager.drain(), GUARD)  # no grace: ended at once
    run = await tasks.store.get_run(record.id)
    assert run.status == "failed" and run.error is not None and run.error.startswith("interrupted")
    final = (await tasks.events(record.id))[-1].event
    assert isinstance(final, RunFailed) and final.error == run.error
    assert tasks.factory.sandboxes[0].killed == [hanging]
    with pytest.raises(UnavailableError, match="shutting down"):
        await tasks.submit("bob")


async def test_drain_lets_a_task_finish_within_the_grace(make_tasks: MakeTasks) -> None:
    tasks = await make_tasks(shutdown_grace=3600)
    tasks.server.add(Reply("done", chunk_delay=0.05))
    record = await tasks.submit()
    await asyncio.wait_for(tasks.manager.drain(), GUARD)
    assert (await tasks.store.get_run(record.id)).status == "completed"


def iterations_started(events: list[StoredEvent]) -> int:
    return max((e.event.iteration for e in events if isinstance(e.event, IterationStarted)), default=0)


async def test_a_canceled_task_reports_the_iterations_it_made(tasks: Tasks) -> None:
    tasks.server.extend(
        [
            ToolCalls([Call("execute_bash", {"command": "echo hi"})], content="first a look"),
            ToolCalls(SLEEP.calls, content="now the long part"),
        ]
    )
    record = await tasks.submit()
    await tasks.factory.next_hanging()  # iteration 2's tool call
    await tasks.manager.cancel(record.id)
    events = await tasks.events(record.id)
    final = events[-1].event
    assert isinstance(final, RunCanceled)
    assert (final.iterations, final.response) == (2, "now the long part")
    assert final.iterations == iterations_started(events)


async def test_a_task_canceled_while_the_model_answers_counts_that_iteration(tasks: Tasks) -> None:
    tasks.server.add(ModelHang(3600))
    record = await tasks.submit()
    # Offset 0 is run_started, offset 1 iteration 1's iteration_started; the model then hangs.
    (started,) = await asyncio.wait_for(tasks.manager.events(record.id, 1, 1, wait=3600), GUARD)
    assert isinstance(started.event, IterationStarted)
    await tasks.manager.cancel(record.id)
    final = (await tasks.events(record.id))[-1].event
    assert isinstance(final, RunCanceled) and (final.iterations, final.response) == (1, "")


async def test_an_interrupted_task_reports_the_iterations_and_usage_it_made(tasks: Tasks) -> None:
    tasks.server.add(
        ToolCalls(SLEEP.calls, content="waiting", usage=Usage(prompt_tokens=7, completion_tokens=3))
    )
    record = await tasks.submit()
    await tasks.factory.next_hanging()
    await asyncio.wait_for(tasks.manager.drain(), GUARD)
    events = await tasks.events(record.id)
    final = events[-1].event
    assert isinstance(final, RunFailed)
    assert (final.iterations, final.response) == (1, "waiting")
    assert final.usage == next(e.event.usage for e in events if isinstance(e.event, ModelResponse))
    assert final.usage.total_tokens == 10


# --- the queue: tasks past a manager's running cap wait in the store for any manager ---------------


async def test_a_task_queued_on_a_busy_manager_is_run_by_a_free_one(make_tasks: MakeTasks) -> None:
    a = await make_tasks(max_running=1)
    b = await make_tasks(max_running=1)
    ended_on: dict[str, list[str]] = {"a": [], "b": []}

    def recorder(name: str) -> Callable[[str], Awaitable[None]]:
        async def record(task_id: str) -> None:
            ended_on[name].append(task_id)

        return record

    a.manager.on_finished(recorder("a"))
    b.manager.on_finished(recorder("b"))
    a.server.add(SLEEP)
    alice = await a.submit("alice")
    await a.factory.next_hanging()
    a.server.add(ToolCalls([Call("execute_bash", {"command": "echo hi"})]))
    a.server.add(Reply("ran elsewhere"))
    bob = await a.submit("bob")  # a has no free slot: queued, and b claims it

    assert bob.status == "pending"
    assert (await b.finished(bob.id)).status == "completed"
    assert b.factory.sandboxes and b.factory.sandboxes[0].calls == [Command("bash", "echo hi", timeout=60.0)]
    assert a.manager.is_active(alice.id) and not a.manager.is_active(bob.id)
    types = [e.event.type for e in await a.events(bob.id) if e.event.type != "text_chunk"]
    assert (
        types[:3] == ["run_started", "status_changed", "iteration_started"] and types[-1] == "run_completed"
    )
    for _ in range(100):  # the handler runs once the task has let go of its slot
        if ended_on["b"]:
            break
        await asyncio.sleep(0.05)
    assert ended_on == {"a": [], "b": [bob.id]}  # the manager that ran it ends it, whoever queued it
    await a.manager.cancel(alice.id)


async def test_the_oldest_queued_task_is_taken_first(make_tasks: MakeTasks) -> None:
    tasks = await make_tasks(max_running=1)
    tasks.server.extend([SLEEP, SLEEP])
    alice = await tasks.submit("alice")
    await tasks.factory.next_hanging()
    bob = await tasks.submit("bob")
    await tasks.manager.cancel(alice.id)
    carol = await tasks.submit("carol")  # a slot is free, but bob was first: carol queues behind him
    assert carol.status == "pending"
    await tasks.factory.next_hanging()
    assert tasks.manager.is_active(bob.id)
    assert (await tasks.store.get_run(carol.id)).status == "pending"
    tasks.server.add(Reply("at last"))
    await tasks.manager.cancel(bob.id)
    assert (await tasks.finished(carol.id)).status == "completed"


async def test_a_queued_task_is_canceled_once_from_any_manager(make_tasks: MakeTasks) -> None:
    a = await make_tasks(max_running=1)
    b = await make_tasks(max_running=1)
    a.server.extend([SLEEP, SLEEP])
    await a.submit("alice")
    await a.factory.next_hanging()
    await b.submit("bob")
    await b.factory.next_hanging()
    carol = await a.submit("carol")  # both busy: it waits in the queue

    results = await asyncio.gather(a.manager.cancel(carol.id, "not needed"), b.manager.cancel(carol.id, "no"))

    assert sorted(results) == [False, True]
    run = await a.store.get_run(carol.id)
    assert run.status == "canceled" and run.error in ("not needed", "no")
    events = await a.events(carol.id)
    assert [e.event.type for e in events] == ["run_started", "run_canceled"]
    final = events[-1].event
    assert isinstance(final, RunCanceled) and (final.reason, final.iterations) == (run.error, 0)
    history = await a.conversations.history(run.conversation_id or "")
    assert history[0] == {"role": "user", "content": "go"} and run.error in history[1]["content"]
    # The canceled task frees carol's place: a new message is accepted at once.
    assert (await a.submit("carol")).status == "pending"


async def test_a_drained_manager_leaves_its_queued_tasks_to_the_next(make_tasks: MakeTasks) -> None:
    a = await make_tasks(max_running=1)
    a.server.add(SLEEP)
    await a.submit("alice")
    await a.factory.next_hanging()
    bob = await a.submit("bob")
    await asyncio.wait_for(a.manager.drain(), GUARD)  # no grace: alice's task is interrupted
    assert (await a.store.get_run(bob.id)).status == "pending"  # not ended: it waits in the queue

    a.server.add(Reply("after the restart"))
    restarted = await make_tasks(max_running=1)
    assert (await restarted.finished(bob.id)).status == "completed"


async def test_a_queued_task_that_cannot_be_rebuilt_fails_with_a_reason(make_tasks: MakeTasks) -> None:
    a = await make_tasks(max_running=1)
    a.server.add(SLEEP)
    alice = await a.submit("alice")
    await a.factory.next_hanging()
    bob = await a.submit("bob")
    sandboxes = WorkspaceSandboxes(FakeSandboxFactory(SCRIPT), idle_timeout=3600)
    manager = TaskManager(a.store, Conversations(a.store), sandboxes, TaskLimits())

    async def unknown_model(task_id: str, request: QueuedRequest) -> TaskSpec:  # a worker without it
        raise InputError(f"unknown model {request.model_key!r}")

    async with manager.dispatching(unknown_model):
        run = await asyncio.wait_for(until_ended(a.store, bob.id), GUARD)
    await manager.drain()
    assert run.status == "failed" and run.error == "could not be started: unknown model None"
    final = (await a.events(bob.id))[-1].event
    assert isinstance(final, RunFailed) and final.error == run.error
    await a.manager.cancel(alice.id)


async def until_ended(store: Store, task_id: str) -> RunRecord:
    while True:
        wake = store.watch(task_id)
        run = await store.get_run(task_id)
        if run.status not in ("pending", "running"):
            return run
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), 1.0)
