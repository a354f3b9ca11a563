"""Users' own capabilities: the ``capabilities`` table (specs stored as JSON text).

A public one (``visibility``) is also found by every other user, by its id alone: ids are unique
among public capabilities (a partial unique index), so an insert that would publish a taken id
is refused by the database.
"""

from __future__ import annotations

import builtins
from typing import Literal

from pydantic import BaseModel
from sqlalchemy import BigInteger, delete, func, insert, literal, select
from sqlalchemy.exc import IntegrityError

from runtime.store.database import Database
from runtime.store.schema import capabilities

__all__ = ["CapabilityQueries", "OwnCapabilityRow", "Visibility"]

Visibility = Literal["private", "public"]


class OwnCapabilityRow(BaseModel):
    owner: str
    spec: str
    created_at: float
    visibility: Visibility
    price_cents: int


_COLUMNS = (
    capabilities.c.owner,
    capabilities.c.spec,
    capabilities.c.created_at,
    capabilities.c.visibility,
    capabilities.c.price_cents,
)


class CapabilityQueries:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def find(self, owner: str, capability_id: str) -> OwnCapabilityRow | None:
        async with self._db.connect() as conn:
            row = (
                await conn.execute(
                    select(*_COLUMNS).where(capabilities.c.owner == owner, capabilities.c.id == capability_id)
                )
            ).first()
        return None if row is None else OwnCapabilityRow.model_validate(row._mapping)

    async def list(self, owner: str) -> list[OwnCapabilityRow]:
        async with self._db.connect() as conn:
            rows = await conn.execute(
                select(*_COLUMNS)
                .where(capabilities.c.owner == owner)
                .order_by(capabilities.c.created_at, capabilities.c.id)
            )
            return [OwnCapabilityRow.model_validate(row._mapping) for row in rows]

    async def find_public(self, capability_id: str) -> OwnCapabilityRow | None:
        async with self._db.connect() as conn:
            row = (
                await conn.execute(
                    select(*_COLUMNS).where(
                        capabilities.c.visibility == "public", capabilities.c.id == capability_id
                    )
                )
            ).first()
        return None if row is None else OwnCapabilityRow.model_validate(row._mapping)

    async def list_public(self, exclude_owner: str) -> builtins.list[OwnCapabilityRow]:
        """Every public capability but ``exclude_owner``'s, newest first."""
        async with self._db.connect() as conn:
            rows = await conn.execute(
                select(*_COLUMNS)
                .where(capabilities.c.visibility == "public", capabilities.c.owner != exclude_owner)
                .order_by(capabilities.c.created_at.desc(), capabilities.c.id)
            )
            return [OwnCapabilityRow.model_validate(row._mapping) for row in rows]

    async def insert(
        self,
        owner: str,
        capability_id: str,
        spec: str,
        created_at: float,
        max_own: int,
        visibility: Visibility = "private",
        price_cents: int = 0,
    ) -> Literal["created", "exists", "limit"]:
        """Insert unless the id is taken (by the owner, or by a public one when this one is public)
        or the owner has ``max_own`` already, checked atomically."""
        under_limit = (
            select(func.count())
            .select_from(capabilities)
            .where(capabilities.c.owner == owner)
            .scalar_subquery()
            < max_own
        )
        statement = insert(capabilities).from_select(
            ["owner", "id", "spec", "created_at", "visibility", "price_cents"],
            select(
                literal(owner),
                literal(capability_id),
                literal(spec),
                literal(created_at),
                literal(visibility),
                literal(price_cents, BigInteger),
            ).where(under_limit),
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
