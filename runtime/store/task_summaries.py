"""A user's tasks as a list: one row per task run with its capability, order price, times and tokens.

A page costs three statements at most, whatever the length of its tasks' logs: the page of runs
(newest first, found by the ``runs_owner`` index, with the capability from ``task_origins`` and
the price from ``capability_orders`` joined); then, by primary key, the few events that say when
each task started and ended: offset 0 (``run_started``), offset 1 (the ``status_changed`` of a
task that waited as pending) and its last one (``runs.next_offset - 1``: its final event, whose
``run_completed`` carries the run's token usage). Only tasks without a ``run_completed`` (running,
failed, canceled) have their ``model_response`` usages summed, the one read that grows with a log
(a failed run's own usage may be zeros, when it was interrupted by a crash). No index is added.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from sqlalchemy import ColumnElement, Integer, and_, case, cast, func, or_, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

from runtime.store.database import Database
from runtime.store.runs_events import RunStatus
from runtime.store.schema import capability_orders, events, runs, task_origins

__all__ = ["TaskSummaryQueries", "TaskSummaryRow"]

_FINALS = ("run_completed", "run_failed", "run_canceled")


class TaskSummaryRow(BaseModel):
    id: str
    status: RunStatus
    conversation_id: str | None
    workspace_id: str | None
    capability_id: str | None
    amount: int | None  # cents; set when the task is a paid capability order
    created_at: float
    updated_at: float
    started_at: float | None
    finished_at: float | None
    prompt_tokens: int
    completion_tokens: int
    error: str | None


class TaskSummaryQueries:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def page(
        self,
        owner: str,
        *,
        status: RunStatus | None,
        conversation_id: str | None,
        offset: int,
        limit: int,
    ) -> tuple[list[TaskSummaryRow], int]:
        """The owner's task runs matching the filters, newest first; and how many match in all."""
        where = [runs.c.owner == owner, runs.c.kind == "task"]
        if status is not None:
            where.append(runs.c.status == status)
        if conversation_id is not None:
            where.append(runs.c.conversation_id == conversation_id)
        condition = and_(*where)
        query = (
            select(
                runs.c.id,
                runs.c.status,
                runs.c.conversation_id,
                runs.c.workspace_id,
                func.coalesce(task_origins.c.capability_id, capability_orders.c.capability_id).label(
                    "capability_id"
                ),
                capability_orders.c.amount,
                runs.c.created_at,
                runs.c.updated_at,
                runs.c.error,
                runs.c.next_offset,
            )
            .select_from(
                runs.outerjoin(task_origins, task_origins.c.task_id == runs.c.id).outerjoin(
                    capability_orders, capability_orders.c.id == runs.c.id
                )
            )
            .where(condition)
            .order_by(runs.c.created_at.desc(), runs.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        async with self._db.connect() as conn:
            rows = [dict(row._mapping) for row in await conn.execute(query)]
            total = (await conn.execute(select(func.count()).select_from(runs).where(condition))).scalar_one()
            stats = {row["id"]: _Stats() for row in rows}
            await self._ends(conn, rows, stats)
            await self._sum_usage(
                conn, [run_id for run_id, found in stats.items() if found.tokens is None], stats
            )
        items = []
        for row in rows:
            found = stats[row["id"]]
            prompt, completion = found.tokens or (0, 0)
            started = None if row["status"] == "pending" else found.started  # run_started comes when queued
            items.append(
                TaskSummaryRow.model_validate(
                    {
                        **row,
                        "started_at": started,
                        "finished_at": found.finished,
                        "prompt_tokens": prompt,
                        "completion_tokens": completion,
                    }
                )
            )
        return items, int(total)

    async def _ends(
        self, conn: AsyncConnection, rows: list[dict[str, Any]], stats: dict[str, _Stats]
    ) -> None:
        """Start and end times (and a completed run's usage) from each run's first two and last event."""
        if not rows:
            return
        wanted = or_(
            *(
                and_(
                    events.c.run_id == row["id"],
                    events.c.seq.in_(sorted({0, 1, max(row["next_offset"] - 1, 0)})),
                )
                for row in rows
            )
        )
        completed = events.c.type == "run_completed"
        query = select(
            events.c.run_id,
            events.c.seq,
            events.c.type,
            events.c.created_at,
            case((completed, self._usage("prompt_tokens"))).label("prompt_tokens"),
            case((completed, self._usage("completion_tokens"))).label("completion_tokens"),
        ).where(wanted)
        last = {row["id"]: row["next_offset"] - 1 for row in rows}
        for event in await conn.execute(query):
            found = stats[event.run_id]
            if event.seq == 0 and event.type == "run_started" and found.started is None:
                found.started = event.created_at
            elif event.seq == 1 and event.type == "status_changed":  # it waited as pending until then
                found.started = event.created_at
            if event.seq == last[event.run_id] and event.type in _FINALS:
                found.finished = event.created_at
                if event.type == "run_completed":
                    found.tokens = (int(event.prompt_tokens or 0), int(event.completion_tokens or 0))

    async def _sum_usage(self, conn: AsyncConnection, run_ids: list[str], stats: dict[str, _Stats]) -> None:
        """The summed usage of the model calls of runs with no ``run_completed``."""
        if not run_ids:
            return
        query = (
            select(
                events.c.run_id,
                func.coalesce(func.sum(self._usage("prompt_tokens")), 0).label("prompt_tokens"),
                func.coalesce(func.sum(self._usage("completion_tokens")), 0).label("completion_tokens"),
            )
            .where(events.c.run_id.in_(run_ids), events.c.type == "model_response")
            .group_by(events.c.run_id)
        )
        for row in await conn.execute(query):
            stats[row.run_id].tokens = (int(row.prompt_tokens), int(row.completion_tokens))

    def _usage(self, field: str) -> ColumnElement[Any]:
        if self._db.dialect == "sqlite":
            return cast(func.json_extract(events.c.data, f"$.usage.{field}"), Integer)
        return cast(cast(events.c.data, JSONB)["usage"][field].astext, Integer)


class _Stats:
    """What a task's events say about it."""

    def __init__(self) -> None:
        self.started: float | None = None
        self.finished: float | None = None
        self.tokens: tuple[int, int] | None = None  # (prompt, completion)
