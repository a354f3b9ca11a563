"""The task marketplace: nodes publish paid tasks, others accept and deliver them, escrow pays.

A task's life::

    publish ──► open ──accept──► progress ──complete──► done        (escrow released to the acceptor)
                 │                   │
                 ├─cancel (publisher)└─a house agent's run fails──► failed   (escrow refunded)
                 └─deadline passes ──► canceled                    (escrow refunded)

Publishing holds the budget in escrow in the transaction that creates the task; every later
change is a conditional update in one transaction with the money it moves
(:mod:`runtime.store.platform_tasks`), so a task changes status once and its escrow is settled
once. When a change does not happen, the task is read again to say why: 404, 403 (not yours to
do), 409 (not in the state it needs). A deadline is enforced three ways: accept refuses after it,
every read cancels the tasks past it first, and :meth:`Marketplace.sweep` (run periodically by
the worker) cancels the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal

import structlog
from pydantic import BaseModel, Field

from runtime.errors import AgentWorkerError, ConflictError, ForbiddenError, InputError, NotFoundError
from runtime.platform.house import HouseAgents
from runtime.store import Store
from runtime.store.platform_tasks import NewTask, TaskRow, TaskStatus

__all__ = ["Marketplace", "TaskDraft", "TaskPage", "expiry_sweeps"]

log = structlog.get_logger(__name__)

SWEEP_BATCH = 100
"""Overdue tasks canceled per query (a read cancels at most this many before it answers)."""


class TaskDraft(BaseModel):
    """A task as its publisher sends it, the budget in cents."""

    title: str
    description: str
    required_capabilities: list[str]
    budget: int = Field(gt=0)
    deadline: float | None = None
    assignee: str | None = None


class TaskPage(BaseModel):
    items: list[TaskRow]
    total: int


class Marketplace:
    def __init__(
        self, store: Store, house: HouseAgents | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self._tasks = store.platform_tasks
        self._nodes = store.nodes
        self._house = house
        self._clock = clock

    async def publish(self, publisher: str, draft: TaskDraft) -> TaskRow:
        """Create the task with its budget in escrow; a house agent as assignee starts on it at once."""
        now = self._clock()
        if draft.deadline is not None and draft.deadline <= now:
            raise InputError("deadline is in the past: give a time to come (ISO 8601; UTC unless it says)")
        house = False
        if draft.assignee is not None:
            if draft.assignee == publisher:
                raise InputError("assignee is you: a node cannot take its own task")
            if not await self._nodes.node_exists(draft.assignee):
                raise InputError(f"assignee {draft.assignee!r} is not a node of the registry")
            house = self._house is not None and self._house.is_house(draft.assignee)
        task = NewTask(
            id=f"task_{secrets.token_hex(8)}",
            publisher=publisher,
            title=draft.title,
            description=draft.description,
            budget=draft.budget,
            capabilities=sorted(set(draft.required_capabilities)),
            assignee=draft.assignee,
            deadline=draft.deadline,
            created_at=now,
        )
        await self._tasks.publish(task, accepted_by=draft.assignee if house else None)
        row = await self._found(task.id)
        if house:
            assert self._house is not None
            try:
                await self._house.start(row)
            except AgentWorkerError as e:
                # Nothing runs: the task fails and the escrow goes back, and the publisher is told why.
                reason = f"the house agent could not start: {e}"
                await self._tasks.fail(task.id, row.acceptor or "", reason, self._clock())
                raise type(e)(f"{reason} (task {task.id} failed, its budget refunded)") from e
            row = await self._found(task.id)
        log.info("platform_task_published", task_id=task.id, publisher=publisher, budget=task.budget)
        return row

    async def get(self, task_id: str) -> TaskRow:
        row = await self._found(task_id)
        if row.status == "open" and row.deadline is not None and row.deadline <= self._clock():
            await self._tasks.expire(task_id, self._clock())
            row = await self._found(task_id)
        return row

    async def list_tasks(
        self, status: TaskStatus | None, capability: str | None, page: int, page_size: int
    ) -> TaskPage:
        await self._expire_due()
        rows, total = await self._tasks.list_tasks(status, capability, (page - 1) * page_size, page_size)
        return TaskPage(items=rows, total=total)

    async def accept(self, task_id: str, node: str) -> TaskRow:
        now = self._clock()
        if await self._tasks.accept(task_id, node, now):
            log.info("platform_task_accepted", task_id=task_id, acceptor=node)
            return await self._found(task_id)
        row = await self._found(task_id)
        if row.publisher == node:
            raise ForbiddenError(f"task {task_id} is yours: a publisher cannot accept its own task")
        if row.assignee is not None and row.assignee != node:
            raise ForbiddenError(f"task {task_id} is assigned to {row.assignee}: only it may accept")
        if row.status == "open" and row.deadline is not None and row.deadline <= now:
            await self._tasks.expire(task_id, now)
            raise ConflictError(f"task {task_id}'s deadline has passed: it is canceled, its budget refunded")
        raise ConflictError(_not_in(row, "open", "accepted"))

    async def complete(
        self, task_id: str, node: str, deliverables: dict[str, Any], quality_notes: str | None
    ) -> TaskRow:
        body = json.dumps(deliverables, ensure_ascii=False)
        if await self._tasks.complete(task_id, node, body, quality_notes, self._clock()):
            log.info("platform_task_done", task_id=task_id, acceptor=node)
            return await self._found(task_id)
        row = await self._found(task_id)
        if row.acceptor is not None and row.acceptor != node:
            raise ForbiddenError(f"task {task_id} was accepted by another node: only it may complete it")
        if row.acceptor is None and row.status == "open":
            raise ConflictError(f"task {task_id} is open: accept it before completing it")
        raise ConflictError(_not_in(row, "progress", "completed"))

    async def cancel(self, task_id: str, node: str) -> TaskRow:
        if await self._tasks.cancel(task_id, node, self._clock()):
            log.info("platform_task_canceled", task_id=task_id)
            return await self._found(task_id)
        row = await self._found(task_id)
        if row.publisher != node:
            raise ForbiddenError(f"task {task_id} is not yours: only its publisher may cancel it")
        raise ConflictError(_not_in(row, "open", "canceled"))

    async def sweep(self) -> int:
        """Cancel every open task past its deadline (escrow refunded); how many were."""
        total = 0
        while True:
            expired = await self._expire_due()
            total += expired
            if expired < SWEEP_BATCH:
                return total

    async def _expire_due(self) -> int:
        now = self._clock()
        expired = 0
        for task_id in await self._tasks.due(now, SWEEP_BATCH):
            # Another worker (or an accept just before the deadline) may have moved it first.
            if await self._tasks.expire(task_id, now):
                expired += 1
        if expired:
            log.info("platform_tasks_expired", count=expired)
        return expired

    async def _found(self, task_id: str) -> TaskRow:
        row = await self._tasks.get(task_id)
        if row is None:
            raise NotFoundError(f"task {task_id} not found")
        return row


@asynccontextmanager
async def expiry_sweeps(market: Marketplace, interval: float) -> AsyncIterator[None]:
    """While the block runs, :meth:`Marketplace.sweep` every ``interval`` seconds (the first at once)."""
    sweeper = asyncio.create_task(_sweep(market, interval), name="platform-task-expiry")
    try:
        yield
    finally:
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper


async def _sweep(market: Marketplace, interval: float) -> None:
    while True:
        try:
            await market.sweep()
        except Exception:  # logged and tried again: reads and accepts enforce deadlines meanwhile
            log.exception("platform_task_expiry_failed")
        await asyncio.sleep(interval)


def _not_in(row: TaskRow, needed: Literal["open", "progress"], verb: str) -> str:
    return f"task {row.id} is {row.status}, not {needed}: it cannot be {verb}"
