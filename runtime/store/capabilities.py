"""Users' own capabilities: the ``capabilities`` table (specs stored as JSON text)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel
from sqlalchemy import delete, func, insert, literal, select
from sqlalchemy.exc import IntegrityError

from runtime.store.database import Database
from runtime.store.schema import capabilities

__all__ = ["CapabilityQueries", "OwnCapabilityRow"]


class OwnCapabilityRow(BaseModel):
    spec: str
    created_at: float


class CapabilityQueries:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def find(self, owner: str, capability_id: str) -> OwnCapabilityRow | None:
        async with self._db.connect() as conn:
            row = (
                await conn.execute(
                    select(capabilities.c.spec, capabilities.c.created_at).where(
                        capabilities.c.owner == owner, capabilities.c.id == capability_id
                    )
                )
            ).first()
        return None if row is None else OwnCapabilityRow.model_validate(row._mapping)

    async def list(self, owner: str) -> list[OwnCapabilityRow]:
        async with self._db.connect() as conn:
            rows = await conn.execute(
                select(capabilities.c.spec, capabilities.c.created_at)
                .where(capabilities.c.owner == owner)
                .order_by(capabilities.c.created_at, capabilities.c.id)
            )
            return [OwnCapabilityRow.model_validate(row._mapping) for row in rows]

    async def insert(
        self, owner: str, capability_id: str, spec: str, created_at: float, max_own: int
    ) -> Literal["created", "exists", "limit"]:
        """Insert unless the id is taken or the owner has ``max_own`` already, checked atomically."""
        under_limit = (
            select(func.count())
            .select_from(capabilities)
            .where(capabilities.c.owner == owner)
            .scalar_subquery()
            < max_own
        )
        statement = insert(capabilities).from_select(
            ["owner", "id", "spec", "created_at"],
            select(literal(owner), literal(capability_id), literal(spec), literal(created_at)).where(
                under_limit
            ),
        )
        try:
            async with self._db.transaction() as conn:
                await self._db.lock_owner(conn, "capabilities", owner)
                written = (await conn.execute(statement)).rowcount
        except IntegrityError:
            return "exists"
        return "created" if written else "limit"

    async def delete(self, owner: str, capability_id: str) -> bool:
        async with self._db.connect() as conn:
            result = await conn.execute(
                delete(capabilities).where(capabilities.c.owner == owner, capabilities.c.id == capability_id)
            )
        return bool(result.rowcount)
