"""The /v1 task marketplace: the ``platform_tasks`` and ``task_capabilities`` tables.

The rules are :mod:`runtime.platform.marketplace`'s; here every change of a task's status is one
conditional ``UPDATE`` (only from the status it may leave, only by whom it may), composed with
the ledger's postings in one transaction: the status and the money move together or not at all.
Two requests racing for one task (two accepts, two completes, a complete and a cancel) cannot both
win: on PostgreSQL the loser's UPDATE waits for the winner's row and then no longer matches; on
SQLite one writer runs at a time. A ``False`` answer means nothing changed; the caller reads the
task to say why.

Each ``task_capabilities`` row carries copies of its task's ``created_at`` and ``status`` (the
status changed in the same transaction as the task's), so a list filtered by capability walks one
index in page order and counts from that index alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import ColumnElement, Select, and_, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from runtime.errors import ConflictError
from runtime.store import platform_ledger as ledger
from runtime.store import platform_nodes as nodes
from runtime.store.database import Database
from runtime.store.schema import platform_tasks as tasks
from runtime.store.schema import task_capabilities

__all__ = ["NewTask", "PlatformTaskQueries", "TaskRow", "TaskStatus"]

TaskStatus = Literal["open", "progress", "done", "canceled", "failed"]


class NewTask(BaseModel):
    id: str
    publisher: str
    title: str
    description: str
    budget: int  # cents
    capabilities: list[str]
    assignee: str | None
    deadline: float | None
    created_at: float


class TaskRow(BaseModel):
    id: str
    publisher: str
    title: str
    description: str
    budget: int
    status: TaskStatus
    assignee: str | None
    acceptor: str | None
    deadline: float | None
    deliverables: str | None  # JSON
    quality_notes: str | None
    run_id: str | None
    created_at: float
    updated_at: float
    capabilities: list[str] = []


_COLUMNS = list(tasks.c)


class PlatformTaskQueries:
    def __init__(self, db: Database) -> None:
        self._db = db

    # --- changes (each one transaction) ------------------------------------------------------

    async def publish(self, task: NewTask, accepted_by: str | None = None) -> None:
        """Insert the task and hold its budget in escrow; ``accepted_by``: it starts in progress.

        The publisher's balance short of the budget raises the ledger's ``InsufficientFunds``
        (a 409), and nothing is written.
        """
        status: TaskStatus = "open" if accepted_by is None else "progress"
        async with self._db.transaction() as conn:
            await conn.execute(
                insert(tasks).values(
                    id=task.id,
                    publisher=task.publisher,
                    title=task.title,
                    description=task.description,
                    budget=task.budget,
                    status=status,
                    assignee=task.assignee,
                    acceptor=accepted_by,
                    deadline=task.deadline,
                    created_at=task.created_at,
                    updated_at=task.created_at,
                )
            )
            if task.capabilities:
                await conn.execute(
                    insert(task_capabilities),
                    [
                        {"task_id": task.id, "capability": c, "created_at": task.created_at, "status": status}
                        for c in task.capabilities
                    ],
                )
            await ledger.open_hold(conn, task.id, task.publisher, task.budget)

    async def accept(self, task_id: str, node: str, now: float) -> bool:
        """open → progress for ``node``: not its publisher, the assignee if there is one, before the deadline."""
        statement = (
            update(tasks)
            .where(
                tasks.c.id == task_id,
                tasks.c.status == "open",
                tasks.c.publisher != node,
                or_(tasks.c.assignee.is_(None), tasks.c.assignee == node),
                or_(tasks.c.deadline.is_(None), tasks.c.deadline > now),
            )
            .values(status="progress", acceptor=node, updated_at=now)
        )
        async with self._db.transaction() as conn:
            if (await conn.execute(statement)).rowcount != 1:
                return False
            await _copy_status(conn, task_id, "progress")
            return True

    async def complete(
        self, task_id: str, node: str, deliverables: str, quality_notes: str | None, now: float
    ) -> bool:
        """progress → done by its acceptor: the escrow is paid to ``node``, who has one more task done."""
        async with self._db.transaction() as conn:
            changed = await self._move(
                conn,
                task_id,
                [tasks.c.status == "progress", tasks.c.acceptor == node],
                status="done",
                deliverables=deliverables,
                quality_notes=quality_notes,
                updated_at=now,
            )
            if not changed:
                return False
            await _settle(conn, task_id, "release", node)
            await nodes.increment_completed(conn, node)
            return True

    async def cancel(self, task_id: str, node: str, now: float) -> bool:
        """open → canceled by its publisher: the escrow goes back to the publisher."""
        async with self._db.transaction() as conn:
            changed = await self._move(
                conn,
                task_id,
                [tasks.c.status == "open", tasks.c.publisher == node],
                status="canceled",
                updated_at=now,
            )
            if changed:
                await _settle(conn, task_id, "refund", None)
            return changed

    async def expire(self, task_id: str, now: float) -> bool:
        """open → canceled once the deadline has passed: the escrow goes back to the publisher."""
        async with self._db.transaction() as conn:
            changed = await self._move(
                conn,
                task_id,
                [tasks.c.status == "open", tasks.c.deadline.is_not(None), tasks.c.deadline <= now],
                status="canceled",
                quality_notes="the deadline passed before anyone accepted the task",
                updated_at=now,
            )
            if changed:
                await _settle(conn, task_id, "refund", None)
            return changed

    async def fail(self, task_id: str, acceptor: str, reason: str, now: float) -> bool:
        """progress → failed (a house agent's run did not succeed): the escrow goes back to the publisher."""
        async with self._db.transaction() as conn:
            changed = await self._move(
                conn,
                task_id,
                [tasks.c.status == "progress", tasks.c.acceptor == acceptor],
                status="failed",
                quality_notes=reason,
                updated_at=now,
            )
            if changed:
                await _settle(conn, task_id, "refund", None)
            return changed

    async def set_run(self, task_id: str, run_id: str) -> None:
        async with self._db.connect() as conn:
            await conn.execute(update(tasks).where(tasks.c.id == task_id).values(run_id=run_id))

    async def _move(
        self, conn: AsyncConnection, task_id: str, when: list[ColumnElement[bool]], **values: object
    ) -> bool:
        result = await conn.execute(update(tasks).where(tasks.c.id == task_id, *when).values(**values))
        if result.rowcount != 1:
            return False
        await _copy_status(conn, task_id, values["status"])
        return True

    # --- reads -------------------------------------------------------------------------------

    async def get(self, task_id: str) -> TaskRow | None:
        async with self._db.connect() as conn:
            row = (await conn.execute(select(*_COLUMNS).where(tasks.c.id == task_id))).first()
            if row is None:
                return None
            found = await _with_capabilities(conn, [TaskRow.model_validate(row._mapping)])
        return found[0]

    async def list_tasks(
        self, status: TaskStatus | None, capability: str | None, offset: int, limit: int
    ) -> tuple[list[TaskRow], int]:
        """A page of tasks, newest first, and how many match in all."""
        if capability is not None:
            page, count = _by_capability(status, capability)
        else:
            where = [] if status is None else [tasks.c.status == status]
            page = select(*_COLUMNS).where(*where).order_by(tasks.c.created_at.desc(), tasks.c.id.desc())
            count = select(func.count()).select_from(tasks).where(*where)
        page = page.offset(offset).limit(limit)
        async with self._db.connect() as conn:
            rows = [TaskRow.model_validate(row._mapping) for row in await conn.execute(page)]
            total = (await conn.execute(count)).scalar_one()
            return await _with_capabilities(conn, rows), total

    async def due(self, now: float, limit: int) -> list[str]:
        """Open tasks whose deadline has passed, the longest overdue first (the partial index)."""
        query = (
            select(tasks.c.id)
            .where(tasks.c.status == "open", tasks.c.deadline.is_not(None), tasks.c.deadline <= now)
            .order_by(tasks.c.deadline)
            .limit(limit)
        )
        async with self._db.connect() as conn:
            return list((await conn.execute(query)).scalars())

    async def in_progress_by_run(self, run_id: str) -> TaskRow | None:
        """The task in progress whose run is ``run_id`` (a house agent's), if any."""
        query = select(*_COLUMNS).where(tasks.c.status == "progress", tasks.c.run_id == run_id)
        async with self._db.connect() as conn:
            row = (await conn.execute(query)).first()
            if row is None:
                return None
            found = await _with_capabilities(conn, [TaskRow.model_validate(row._mapping)])
        return found[0]

    async def in_progress_by(self, acceptors: Sequence[str]) -> list[TaskRow]:
        """Tasks in progress accepted by one of ``acceptors`` (the house agents, at start-up)."""
        if not acceptors:
            return []
        query = select(*_COLUMNS).where(
            and_(tasks.c.status == "progress", tasks.c.acceptor.in_(list(acceptors)))
        )
        async with self._db.connect() as conn:
            return [TaskRow.model_validate(row._mapping) for row in await conn.execute(query)]


def _by_capability(status: TaskStatus | None, capability: str) -> tuple[Select[Any], Select[Any]]:
    """The page (unlimited) and the count of tasks with ``capability``, both from its capability rows.

    Their copies of created_at and status order and filter them, so both walk an index
    ((capability, created_at, task_id), or (capability, status, created_at, task_id) with a
    status) and the page reads only its own tasks.
    """
    where = [task_capabilities.c.capability == capability]
    if status is not None:
        where.append(task_capabilities.c.status == status)
    page = (
        select(*_COLUMNS)
        .select_from(task_capabilities.join(tasks, tasks.c.id == task_capabilities.c.task_id))
        .where(*where)
        .order_by(task_capabilities.c.created_at.desc(), task_capabilities.c.task_id.desc())
    )
    return page, select(func.count()).select_from(task_capabilities).where(*where)


async def _copy_status(conn: AsyncConnection, task_id: str, status: object) -> None:
    await conn.execute(
        update(task_capabilities).where(task_capabilities.c.task_id == task_id).values(status=status)
    )


async def _settle(
    conn: AsyncConnection, task_id: str, outcome: Literal["release", "refund"], payee: str | None
) -> None:
    # The status change that leads here happens once, so the hold is still open; if it is not,
    # money already moved for this task: roll the status change back rather than pay twice.
    if not await ledger.settle_hold(conn, task_id, outcome, payee):
        raise ConflictError(f"the escrow of task {task_id} was settled already")


async def _with_capabilities(conn: AsyncConnection, rows: list[TaskRow]) -> list[TaskRow]:
    if not rows:
        return rows
    query = (
        select(task_capabilities.c.task_id, task_capabilities.c.capability)
        .where(task_capabilities.c.task_id.in_([row.id for row in rows]))
        .order_by(task_capabilities.c.task_id, task_capabilities.c.capability)
    )
    found: dict[str, list[str]] = {}
    for task_id, capability in await conn.execute(query):
        found.setdefault(task_id, []).append(capability)
    return [row.model_copy(update={"capabilities": found.get(row.id, [])}) for row in rows]
