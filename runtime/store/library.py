"""A user's library: the ``prompts`` and ``personalizations`` tables, one shape."""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import Select, Table, exists, func, literal, or_, select

from runtime.store.database import Database
from runtime.store.dialects import upsert
from runtime.store.schema import personalizations, prompts

__all__ = ["Kind", "LibraryItem", "LibraryQueries"]

Kind = Literal["prompt", "personalization"]
_TABLES: dict[Kind, Table] = {"prompt": prompts, "personalization": personalizations}


class LibraryItem(BaseModel):
    name: str
    content: str
    created_at: float
    updated_at: float


class LibraryQueries:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def list(self, kind: Kind, owner: str) -> list[LibraryItem]:
        table = _TABLES[kind]
        async with self._db.connect() as conn:
            rows = await conn.execute(_select(table).where(table.c.owner == owner).order_by(table.c.name))
            return [LibraryItem.model_validate(row._mapping) for row in rows]

    async def find(self, kind: Kind, owner: str, name: str) -> LibraryItem | None:
        table = _TABLES[kind]
        async with self._db.connect() as conn:
            row = (
                await conn.execute(_select(table).where(table.c.owner == owner, table.c.name == name))
            ).first()
        return None if row is None else LibraryItem.model_validate(row._mapping)

    async def put(self, kind: Kind, owner: str, name: str, content: str, max_items: int) -> bool:
        """Create or replace the item; False (nothing written) for a new name past ``max_items``.

        The limit is checked in the statement that inserts, in a transaction holding the owner's
        lock on PostgreSQL, so concurrent requests cannot pass it.
        """
        table = _TABLES[kind]
        now = time.time()
        mine = table.c.owner == owner
        allowed = or_(
            exists().where(mine, table.c.name == name),
            select(func.count()).select_from(table).where(mine).scalar_subquery() < max_items,
        )
        source = select(literal(owner), literal(name), literal(content), literal(now), literal(now)).where(
            allowed
        )
        statement = upsert(self._db, table).from_select(
            ["owner", "name", "content", "created_at", "updated_at"], source
        )
        statement = statement.on_conflict_do_update(
            index_elements=["owner", "name"],
            set_={"content": statement.excluded.content, "updated_at": statement.excluded.updated_at},
        )
        async with self._db.transaction() as conn:
            await self._db.lock_owner(conn, table.name, owner)
            written = (await conn.execute(statement)).rowcount
        return bool(written)


def _select(table: Table) -> Select[Any]:
    return select(table.c.name, table.c.content, table.c.created_at, table.c.updated_at)
