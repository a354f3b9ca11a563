"""Keyword search over the market: public capabilities, nodes (agents) and open tasks.

Every word of a query must appear (case-insensitive substring, ``%``/``_`` escaped) in one of a
hit's searchable fields, so any script matches as written: "数据分析" finds "提供数据分析服务"
without a tokenizer, the same on both engines. A public capability's name, description and
category are read out of its stored spec with the engine's JSON function, never its system
prompt, which stays private to its owner. Substring search cannot use a B-tree index: each
call scans what its visibility/status filter leaves, newest (or most trusted) first, up to a
``limit``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from sqlalchemy import ColumnElement, Table, and_, cast, exists, func, or_, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from runtime.store.database import Database
from runtime.store.schema import capabilities, node_capabilities, nodes, platform_tasks, task_capabilities

__all__ = ["CapabilityHit", "NodeHit", "SearchQueries", "TaskHit"]


class CapabilityHit(BaseModel):
    owner: str
    id: str
    name: str
    description: str
    category: str
    price_cents: int
    created_at: float


class NodeHit(BaseModel):
    id: str
    kind: str
    nickname: str
    trust_score: float
    completed_tasks: int
    capabilities: list[str]


class TaskHit(BaseModel):
    id: str
    publisher: str
    title: str
    description: str
    budget: int
    deadline: float | None
    created_at: float
    capabilities: list[str]


def _matches(terms: list[str], fields: list[ColumnElement[Any]]) -> list[ColumnElement[bool]]:
    """One condition per term: it appears in one of ``fields``."""
    return [or_(*(field.icontains(term, autoescape=True) for field in fields)) for term in terms]


class SearchQueries:
    def __init__(self, db: Database) -> None:
        self._db = db

    def _spec(self, name: str) -> ColumnElement[Any]:
        """A top-level text field of a capability's stored JSON spec."""
        if self._db.dialect == "postgresql":
            return cast(capabilities.c.spec, postgresql.JSONB)[name].astext
        return func.json_extract(capabilities.c.spec, f"$.{name}")

    async def public_capabilities(
        self, terms: list[str], category: str | None, limit: int
    ) -> list[CapabilityHit]:
        """Public capabilities matching every term in id, name, description or category; newest first."""
        name, description, spec_category = (
            self._spec("name"),
            self._spec("description"),
            self._spec("category"),
        )
        where = [
            capabilities.c.visibility == "public",
            *_matches(terms, [capabilities.c.id, name, description, spec_category]),
        ]
        if category is not None:
            where.append(spec_category == category)
        query = (
            select(
                capabilities.c.owner,
                capabilities.c.id,
                name.label("name"),
                func.coalesce(description, "").label("description"),
                func.coalesce(spec_category, "general").label("category"),
                capabilities.c.price_cents,
                capabilities.c.created_at,
            )
            .where(*where)
            .order_by(capabilities.c.created_at.desc(), capabilities.c.id)
            .limit(limit)
        )
        async with self._db.connect() as conn:
            return [CapabilityHit.model_validate(row._mapping) for row in await conn.execute(query)]

    async def nodes(self, terms: list[str], limit: int) -> list[NodeHit]:
        """Nodes matching every term in id, nickname or one of their capabilities; most trusted first."""
        where = [
            or_(
                nodes.c.id.icontains(term, autoescape=True),
                nodes.c.nickname.icontains(term, autoescape=True),
                exists().where(
                    node_capabilities.c.node_id == nodes.c.id,
                    node_capabilities.c.capability.icontains(term, autoescape=True),
                ),
            )
            for term in terms
        ]
        query = (
            select(nodes.c.id, nodes.c.kind, nodes.c.nickname, nodes.c.trust_score, nodes.c.completed_tasks)
            .where(*where)
            .order_by(nodes.c.trust_score.desc(), nodes.c.id)
            .limit(limit)
        )
        async with self._db.connect() as conn:
            rows = (await conn.execute(query)).all()
            held = await _members(conn, node_capabilities, "node_id", [row.id for row in rows])
        return [NodeHit(**row._mapping, capabilities=held.get(row.id, [])) for row in rows]

    async def open_tasks(self, terms: list[str], now: float, limit: int) -> list[TaskHit]:
        """Open tasks (deadline still to come) matching every term in title, description or a
        required capability; newest first."""
        where = [
            platform_tasks.c.status == "open",
            or_(platform_tasks.c.deadline.is_(None), platform_tasks.c.deadline > now),
            *(
                or_(
                    platform_tasks.c.title.icontains(term, autoescape=True),
                    platform_tasks.c.description.icontains(term, autoescape=True),
                    exists().where(
                        and_(
                            task_capabilities.c.task_id == platform_tasks.c.id,
                            task_capabilities.c.capability.icontains(term, autoescape=True),
                        )
                    ),
                )
                for term in terms
            ),
        ]
        query = (
            select(
                platform_tasks.c.id,
                platform_tasks.c.publisher,
                platform_tasks.c.title,
                platform_tasks.c.description,
                platform_tasks.c.budget,
                platform_tasks.c.deadline,
                platform_tasks.c.created_at,
            )
            .where(*where)
            .order_by(platform_tasks.c.created_at.desc(), platform_tasks.c.id)
            .limit(limit)
        )
        async with self._db.connect() as conn:
            rows = (await conn.execute(query)).all()
            required = await _members(conn, task_capabilities, "task_id", [row.id for row in rows])
        return [TaskHit(**row._mapping, capabilities=required.get(row.id, [])) for row in rows]


async def _members(conn: AsyncConnection, table: Table, key: str, ids: list[str]) -> dict[str, list[str]]:
    """The ``capability`` values of ``table`` for each of ``ids`` (by its ``key`` column), sorted."""
    if not ids:
        return {}
    column = table.c[key]
    found: dict[str, list[str]] = {}
    rows = await conn.execute(
        select(column, table.c.capability).where(column.in_(ids)).order_by(column, table.c.capability)
    )
    for owner, capability in rows:
        found.setdefault(owner, []).append(capability)
    return found
