"""Workspaces: the ``workspaces`` table (the directories are :mod:`runtime.workspaces.records`' part)."""

from __future__ import annotations

import time
from typing import Literal

from pydantic import BaseModel, Field
from sqlalchemy import select, update

from runtime.store.database import Database
from runtime.store.dialects import upsert
from runtime.store.schema import workspaces

__all__ = ["PythonMode", "WorkspaceQueries", "WorkspaceRecord"]

PythonMode = Literal["stateful", "fresh"]


class WorkspaceRecord(BaseModel):
    workspace_id: str
    created_at: float
    python_mode: PythonMode = Field(
        description="stateful: execute_python keeps one interpreter per conversation (variables, "
        "imports and open files survive between calls); fresh: a new python3 process per call."
    )


_SELECT = select(workspaces.c.id.label("workspace_id"), workspaces.c.created_at, workspaces.c.python_mode)


class WorkspaceQueries:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def insert_if_missing(self, owner: str, workspace_id: str) -> None:
        statement = (
            upsert(self._db, workspaces)
            .values(owner=owner, id=workspace_id, created_at=time.time())
            .on_conflict_do_nothing()
        )
        async with self._db.connect() as conn:
            await conn.execute(statement)

    async def set_python_mode(self, owner: str, workspace_id: str, python_mode: PythonMode) -> None:
        async with self._db.connect() as conn:
            await conn.execute(
                update(workspaces)
                .where(workspaces.c.owner == owner, workspaces.c.id == workspace_id)
                .values(python_mode=python_mode)
            )

    async def find(self, owner: str, workspace_id: str) -> WorkspaceRecord | None:
        async with self._db.connect() as conn:
            row = (
                await conn.execute(
                    _SELECT.where(workspaces.c.owner == owner, workspaces.c.id == workspace_id)
                )
            ).first()
        return None if row is None else WorkspaceRecord.model_validate(row._mapping)

    async def list(self, owner: str) -> list[WorkspaceRecord]:
        async with self._db.connect() as conn:
            rows = await conn.execute(
                _SELECT.where(workspaces.c.owner == owner).order_by(workspaces.c.created_at, workspaces.c.id)
            )
            return [WorkspaceRecord.model_validate(row._mapping) for row in rows]
