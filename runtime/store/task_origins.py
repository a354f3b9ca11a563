"""How a task was started (surface, capability): the ``task_origins`` table."""

from __future__ import annotations

from pydantic import BaseModel
from sqlalchemy import insert, select

from runtime.store.database import Database
from runtime.store.schema import task_origins

__all__ = ["OriginRow", "TaskOriginQueries"]


class OriginRow(BaseModel):
    surface: str
    capability_id: str | None


class TaskOriginQueries:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def insert(self, task_id: str, surface: str, capability_id: str | None) -> None:
        async with self._db.connect() as conn:
            await conn.execute(
                insert(task_origins).values(task_id=task_id, surface=surface, capability_id=capability_id)
            )

    async def find(self, task_id: str) -> OriginRow | None:
        async with self._db.connect() as conn:
            row = (
                await conn.execute(
                    select(task_origins.c.surface, task_origins.c.capability_id).where(
                        task_origins.c.task_id == task_id
                    )
                )
            ).first()
        return None if row is None else OriginRow.model_validate(row._mapping)
