"""The recommendation feed's reads: public capabilities and open tasks in ranking order.

Every stream is read in the feed's order, (owner trust, created_at, kind, id) descending, from
one index (``platform_tasks_feed``, ``task_capabilities_feed``, ``capabilities_feed``,
``capabilities_feed_category``), starting strictly after a key: a page is an index range, never
an OFFSET. The owner's trust and a capability's category are copies in the item rows, kept by
triggers (migration 0008). The rules (which streams, in which tier, merged how) are
:mod:`runtime.platform.feed`'s.
"""

from __future__ import annotations

import json
from typing import Literal, NamedTuple

from pydantic import BaseModel
from sqlalchemy import ColumnElement, ScalarSelect, Table, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from runtime.store.database import Database
from runtime.store.schema import (
    capabilities,
    capability_orders,
    ledger_entries,
    ledger_postings,
    node_capabilities,
    nodes,
    platform_tasks,
    task_capabilities,
)

__all__ = ["CAPABILITY", "TASK", "CommunityCounts", "FeedKey", "FeedQueries", "FeedRow", "ItemKind"]

ItemKind = Literal["task", "capability"]
TASK, CAPABILITY = 1, 0  # the kind's place in the key: at equal trust and time, tasks first


class FeedKey(NamedTuple):
    """An item's place in the feed; the feed is in descending key order."""

    trust: float
    created_at: float
    kind: int
    id: str


class FeedRow(BaseModel):
    kind: ItemKind
    id: str
    owner: str
    title: str
    description: str
    amount: int  # cents: a task's budget, a capability's price
    tags: list[str]  # a task's required capabilities; a capability's category
    trust: float
    created_at: float

    @property
    def key(self) -> FeedKey:
        return FeedKey(self.trust, self.created_at, TASK if self.kind == "task" else CAPABILITY, self.id)


class CommunityCounts(BaseModel):
    nodes: int
    public_capabilities: int
    open_tasks: int
    done_tasks: int
    completed_orders: int
    credits_moved: int  # cents paid out of escrow to whoever did the work


def _after(
    trust: ColumnElement[float],
    created: ColumnElement[float],
    ident: ColumnElement[str],
    kind: int,
    key: FeedKey,
) -> ColumnElement[bool]:
    """Rows of a stream of ``kind`` that come after ``key`` in the feed (a range of its index)."""
    if kind == key.kind:
        return tuple_(trust, created, ident) < tuple_(key.trust, key.created_at, key.id)
    if kind < key.kind:  # at equal (trust, time) this kind comes after the key's
        return tuple_(trust, created) <= tuple_(key.trust, key.created_at)
    return tuple_(trust, created) < tuple_(key.trust, key.created_at)


class FeedQueries:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def node_capabilities(self, node_id: str) -> list[str]:
        async with self._db.connect() as conn:
            rows = await conn.execute(
                select(node_capabilities.c.capability)
                .where(node_capabilities.c.node_id == node_id)
                .order_by(node_capabilities.c.capability)
            )
            return list(rows.scalars())

    async def open_tasks(
        self, capability: str | None, after: FeedKey | None, limit: int, exclude_owner: str
    ) -> list[FeedRow]:
        """Open tasks (needing ``capability``, when given) after ``after``, not ``exclude_owner``'s."""
        t = platform_tasks
        if capability is None:
            trust, created, ident = t.c.owner_trust, t.c.created_at, t.c.id
            query = select(t).where(t.c.status == "open")
        else:
            tc = task_capabilities
            trust, created, ident = tc.c.owner_trust, tc.c.created_at, tc.c.task_id
            query = (
                select(t)
                .select_from(tc.join(t, t.c.id == tc.c.task_id))
                .where(tc.c.capability == capability, tc.c.status == "open")
            )
        if after is not None:
            query = query.where(_after(trust, created, ident, TASK, after))
        query = (
            query.where(t.c.publisher != exclude_owner)
            .order_by(trust.desc(), created.desc(), ident.desc())
            .limit(limit)
        )
        async with self._db.connect() as conn:
            rows = (await conn.execute(query)).all()
            tags = await _task_tags(conn, [row.id for row in rows])
        return [
            FeedRow(
                kind="task",
                id=row.id,
                owner=row.publisher,
                title=row.title,
                description=row.description,
                amount=row.budget,
                tags=tags.get(row.id, []),
                trust=row.owner_trust,
                created_at=row.created_at,
            )
            for row in rows
        ]

    async def public_capabilities(
        self, category: str | None, after: FeedKey | None, limit: int, exclude_owner: str
    ) -> list[FeedRow]:
        """Public capabilities (of ``category``, when given) after ``after``, not ``exclude_owner``'s."""
        c = capabilities
        query = select(c.c.owner, c.c.id, c.c.spec, c.c.price_cents, c.c.owner_trust, c.c.created_at).where(
            c.c.visibility == "public"
        )
        if category is not None:
            query = query.where(c.c.category == category)
        if after is not None:
            query = query.where(_after(c.c.owner_trust, c.c.created_at, c.c.id, CAPABILITY, after))
        query = (
            query.where(c.c.owner != exclude_owner)
            .order_by(c.c.owner_trust.desc(), c.c.created_at.desc(), c.c.id.desc())
            .limit(limit)
        )
        async with self._db.connect() as conn:
            rows = (await conn.execute(query)).all()
        items = []
        for row in rows:
            spec = json.loads(row.spec)
            items.append(
                FeedRow(
                    kind="capability",
                    id=row.id,
                    owner=row.owner,
                    title=spec["name"],
                    description=spec.get("description", ""),
                    amount=row.price_cents,
                    tags=[spec.get("category", "general")],
                    trust=row.owner_trust,
                    created_at=row.created_at,
                )
            )
        return items

    async def community_counts(self) -> CommunityCounts:
        def count(table: Table, *where: ColumnElement[bool]) -> ScalarSelect[int]:
            return select(func.count()).select_from(table).where(*where).scalar_subquery()

        released = (
            select(func.coalesce(func.sum(ledger_postings.c.amount), 0))
            .select_from(
                ledger_postings.join(ledger_entries, ledger_entries.c.id == ledger_postings.c.entry_id)
            )
            .where(ledger_entries.c.kind == "escrow_release", ledger_postings.c.amount > 0)
            .scalar_subquery()
        )
        query = select(
            count(nodes).label("nodes"),
            count(capabilities, capabilities.c.visibility == "public").label("public_capabilities"),
            count(platform_tasks, platform_tasks.c.status == "open").label("open_tasks"),
            count(platform_tasks, platform_tasks.c.status == "done").label("done_tasks"),
            count(capability_orders, capability_orders.c.status == "completed").label("completed_orders"),
            released.label("credits_moved"),
        )
        async with self._db.connect() as conn:
            row = (await conn.execute(query)).one()
        return CommunityCounts.model_validate(row._mapping)


async def _task_tags(conn: AsyncConnection, task_ids: list[str]) -> dict[str, list[str]]:
    if not task_ids:
        return {}
    rows = await conn.execute(
        select(task_capabilities.c.task_id, task_capabilities.c.capability)
        .where(task_capabilities.c.task_id.in_(task_ids))
        .order_by(task_capabilities.c.task_id, task_capabilities.c.capability)
    )
    found: dict[str, list[str]] = {}
    for task_id, capability in rows:
        found.setdefault(task_id, []).append(capability)
    return found
