"""A2A contextIds a client chose: the ``context_aliases`` table."""

from __future__ import annotations

from sqlalchemy import select

from runtime.store.database import Database
from runtime.store.dialects import upsert
from runtime.store.schema import context_aliases as aliases

__all__ = ["ContextAliasQueries"]


class ContextAliasQueries:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def insert_if_missing(self, owner: str, context_id: str, conversation_id: str) -> None:
        statement = (
            upsert(self._db, aliases)
            .values(owner=owner, context_id=context_id, conversation_id=conversation_id)
            .on_conflict_do_nothing()
        )
        async with self._db.connect() as conn:
            await conn.execute(statement)

    async def conversation(self, owner: str, context_id: str) -> str | None:
        async with self._db.connect() as conn:
            found = await conn.execute(
                select(aliases.c.conversation_id).where(
                    aliases.c.owner == owner, aliases.c.context_id == context_id
                )
            )
            return found.scalar_one_or_none()

    async def context(self, conversation_id: str) -> str | None:
        async with self._db.connect() as conn:
            found = await conn.execute(
                select(aliases.c.context_id).where(aliases.c.conversation_id == conversation_id).limit(1)
            )
            return found.scalar_one_or_none()
