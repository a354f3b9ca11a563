"""The /v1 platform's shared memory: ``platform_memory`` and its participants and tags.

Visibility is part of every read's WHERE clause, never a filter applied afterwards: an entry is
read by its author and by the nodes listed as its participants, and by no one else. The
participant and tag filters are index lookups on their tables. The text search ``q`` is a
case-insensitive substring match of the content or a tag (``LIKE`` with the pattern's ``%``,
``_`` and escape character escaped), the same on both engines and for any script: CJK text has no
word boundaries for a full-text index to find, and a substring is what a reader of it searches.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel
from sqlalchemy import ColumnElement, Table, exists, func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from runtime.store.database import Database
from runtime.store.schema import nodes
from runtime.store.schema import platform_memory as memory
from runtime.store.schema import platform_memory_participants as participants
from runtime.store.schema import platform_memory_tags as tags

__all__ = ["MemoryQueries", "MemoryRow"]


class MemoryRow(BaseModel):
    id: str
    author: str
    content: str
    participants: list[str]
    tags: list[str]
    created_at: float


class MemoryQueries:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, entry: MemoryRow) -> None:
        """The entry with its participants and tags, in one transaction."""
        async with self._db.transaction() as conn:
            await conn.execute(
                insert(memory).values(
                    id=entry.id, author=entry.author, content=entry.content, created_at=entry.created_at
                )
            )
            if entry.participants:
                await conn.execute(
                    insert(participants), [{"entry_id": entry.id, "node_id": n} for n in entry.participants]
                )
            if entry.tags:
                await conn.execute(insert(tags), [{"entry_id": entry.id, "tag": t} for t in entry.tags])

    async def unknown_nodes(self, node_ids: Sequence[str]) -> list[str]:
        """Those of ``node_ids`` that are not nodes of the registry."""
        if not node_ids:
            return []
        async with self._db.connect() as conn:
            known = set((await conn.execute(select(nodes.c.id).where(nodes.c.id.in_(node_ids)))).scalars())
        return [node for node in node_ids if node not in known]

    async def visible(
        self,
        viewer: str,
        *,
        participant: str | None,
        tag: str | None,
        q: str | None,
        page: int,
        page_size: int,
    ) -> tuple[list[MemoryRow], int]:
        """The entries ``viewer`` may read that match the filters, newest first, and how many."""
        where = [_involves(viewer)]
        if participant is not None:
            where.append(_involves(participant))
        if tag is not None:
            where.append(exists().where(tags.c.entry_id == memory.c.id, tags.c.tag == tag))
        if q is not None:
            where.append(
                or_(
                    memory.c.content.icontains(q, autoescape=True),
                    exists().where(tags.c.entry_id == memory.c.id, tags.c.tag.icontains(q, autoescape=True)),
                )
            )
        async with self._db.connect() as conn:
            total = (await conn.execute(select(func.count()).select_from(memory).where(*where))).scalar_one()
            rows = (
                await conn.execute(
                    select(memory)
                    .where(*where)
                    .order_by(memory.c.created_at.desc(), memory.c.id.desc())
                    .limit(page_size)
                    .offset((page - 1) * page_size)
                )
            ).all()
            ids = [row.id for row in rows]
            listed = await _members(conn, participants, "node_id", ids)
            tagged = await _members(conn, tags, "tag", ids)
        entries = [
            MemoryRow(**row._mapping, participants=listed.get(row.id, []), tags=tagged.get(row.id, []))
            for row in rows
        ]
        return entries, int(total)


def _involves(node: str) -> ColumnElement[bool]:
    """The entry is ``node``'s: its author, or one of its participants."""
    return or_(
        memory.c.author == node,
        exists().where(participants.c.entry_id == memory.c.id, participants.c.node_id == node),
    )


async def _members(
    conn: AsyncConnection, table: Table, column: str, ids: Sequence[str]
) -> dict[str, list[str]]:
    """The values of ``table.column`` (participants or tags) of each entry in ``ids``, sorted."""
    if not ids:
        return {}
    found: dict[str, list[str]] = {}
    rows = await conn.execute(
        select(table.c.entry_id, table.c[column])
        .where(table.c.entry_id.in_(ids))
        .order_by(table.c.entry_id, table.c[column])
    )
    for entry_id, value in rows:
        found.setdefault(entry_id, []).append(value)
    return found
