"""A user's tasks as a list: one row per task run with its capability, order price, times and tokens.

Two statements per page, whatever its size: the page of runs (newest first, with the capability
from ``task_origins`` and the price from ``capability_orders`` joined), then one grouped read of
those runs' events for what only the events know: when the task started (``run_started``, or the
``status_changed`` of a task that waited as pending), when it ended (its final event), and the
tokens of its model calls (``model_response`` usages summed, so a running or canceled task shows
what it has used so far). The page is found by the ``runs_owner`` index (owner, created_at); the
events by their primary key (run_id, seq), so no index is added for this list.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from sqlalchemy import ColumnElement, Integer, and_, case, cast, func, select
from sqlalchemy.dialects.postgresql import JSONB

from runtime.store.database import Database
from runtime.store.runs_events import RunStatus
from runtime.store.schema import capability_orders, events, runs, task_origins

__all__ = ["TaskSummaryQueries", "TaskSummaryRow"]

_STARTS = ("run_started", "status_changed")
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
            stats = await self._event_stats(conn, [row["id"] for row in rows])
        empty = {"started_at": None, "finished_at": None, "prompt_tokens": 0, "completion_tokens": 0}
        items = [TaskSummaryRow.model_validate({**row, **stats.get(row["id"], empty)}) for row in rows]
        for item in items:
            if item.status == "pending":  # its run_started was written when it was queued
                item.started_at = None
        return items, int(total)

    async def _event_stats(self, conn: Any, run_ids: list[str]) -> dict[str, dict[str, Any]]:
        if not run_ids:
            return {}
        is_response = events.c.type == "model_response"
        query = (
            select(
                events.c.run_id,
                func.max(case((events.c.type.in_(_STARTS), events.c.created_at))).label("started_at"),
                func.max(case((events.c.type.in_(_FINALS), events.c.created_at))).label("finished_at"),
                func.coalesce(func.sum(case((is_response, self._usage("prompt_tokens")))), 0).label(
                    "prompt_tokens"
                ),
                func.coalesce(func.sum(case((is_response, self._usage("completion_tokens")))), 0).label(
                    "completion_tokens"
                ),
            )
            .where(events.c.run_id.in_(run_ids), events.c.type.in_((*_STARTS, *_FINALS, "model_response")))
            .group_by(events.c.run_id)
        )
        return {row.run_id: dict(row._mapping) for row in await conn.execute(query)}

    def _usage(self, field: str) -> ColumnElement[Any]:
        if self._db.dialect == "sqlite":
            return cast(func.json_extract(events.c.data, f"$.usage.{field}"), Integer)
        return cast(cast(events.c.data, JSONB)["usage"][field].astext, Integer)
