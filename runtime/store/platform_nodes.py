"""The agent platform's nodes: ``nodes``, ``node_capabilities`` and ``api_keys``.

Write functions take the caller's connection so they compose with other aggregates' statements in
one transaction (register = node + key + signup grant; complete = task + payment + counter).
The registry's filters (capability, minimum trust) are index lookups: ``completed_tasks`` and
``trust_score`` are columns kept up to date by the transactions that change them. Each capability
row carries a copy of its node's ``trust_score`` (written with it), so a list filtered by
capability walks ``node_capabilities_trust`` in page order and counts from that index alone.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import Select, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from runtime.store.database import Database
from runtime.store.schema import api_keys, node_capabilities, nodes

__all__ = [
    "NodeKind",
    "NodeQueries",
    "NodeRecord",
    "add_api_key",
    "increment_completed",
    "insert_node",
    "node_kind",
    "set_capabilities",
    "set_trust",
    "update_nickname",
]

NodeKind = Literal["operator", "registered", "house"]


class NodeRecord(BaseModel):
    id: str
    kind: NodeKind
    nickname: str
    capabilities: list[str]
    trust_score: float
    ratings_count: int
    completed_tasks: int
    created_at: float


async def insert_node(
    conn: AsyncConnection,
    node_id: str,
    kind: NodeKind,
    nickname: str,
    *,
    email: str | None = None,
    password_hash: str | None = None,
) -> bool:
    """Insert the node; False (and nothing written) if the id is taken."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    # ON CONFLICT rather than catching the IntegrityError: on PostgreSQL a failed statement would
    # abort the caller's whole transaction.
    statement = (
        dialect.insert(nodes)
        .values(
            id=node_id,
            kind=kind,
            nickname=nickname,
            email=email,
            password_hash=password_hash,
            created_at=time.time(),
        )
        .on_conflict_do_nothing(index_elements=[nodes.c.id])
    )
    return bool((await conn.execute(statement)).rowcount)


async def node_kind(conn: AsyncConnection, node_id: str) -> NodeKind | None:
    found = await conn.execute(select(nodes.c.kind).where(nodes.c.id == node_id))
    kind: NodeKind | None = found.scalar_one_or_none()
    return kind


async def set_capabilities(conn: AsyncConnection, node_id: str, capabilities: Sequence[str]) -> None:
    """Replace the node's capabilities with ``capabilities`` (duplicates are kept once)."""
    if conn.dialect.name == "postgresql":  # two workers starting at once replace a house agent's together
        await conn.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"node_capabilities:{node_id}"))))
    await conn.execute(delete(node_capabilities).where(node_capabilities.c.node_id == node_id))
    unique = list(dict.fromkeys(capabilities))
    if unique:
        trust = (await conn.execute(select(nodes.c.trust_score).where(nodes.c.id == node_id))).scalar_one()
        await conn.execute(
            insert(node_capabilities),
            [{"node_id": node_id, "capability": c, "trust_score": trust} for c in unique],
        )


async def update_nickname(conn: AsyncConnection, node_id: str, nickname: str) -> bool:
    result = await conn.execute(update(nodes).where(nodes.c.id == node_id).values(nickname=nickname))
    return bool(result.rowcount)


async def add_api_key(conn: AsyncConnection, key_hash: str, node_id: str) -> None:
    await conn.execute(insert(api_keys).values(key_hash=key_hash, node_id=node_id, created_at=time.time()))


async def increment_completed(conn: AsyncConnection, node_id: str) -> None:
    """One more task completed by the node (in the transaction that completes it)."""
    await conn.execute(
        update(nodes).where(nodes.c.id == node_id).values(completed_tasks=nodes.c.completed_tasks + 1)
    )


async def set_trust(conn: AsyncConnection, node_id: str, score: float, count: int) -> None:
    """The node's trust score and number of ratings (in the transaction that rates it)."""
    await conn.execute(
        update(nodes).where(nodes.c.id == node_id).values(trust_score=score, ratings_count=count)
    )
    await conn.execute(
        update(node_capabilities).where(node_capabilities.c.node_id == node_id).values(trust_score=score)
    )


_NODE_COLUMNS = (
    nodes.c.id,
    nodes.c.kind,
    nodes.c.nickname,
    nodes.c.trust_score,
    nodes.c.ratings_count,
    nodes.c.completed_tasks,
    nodes.c.created_at,
)


class NodeQueries:
    """The read side, and the statements that need no caller's transaction."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def node_exists(self, node_id: str) -> bool:
        async with self._db.connect() as conn:
            found = await conn.execute(select(nodes.c.id).where(nodes.c.id == node_id))
            return found.first() is not None

    async def get_node(self, node_id: str) -> NodeRecord | None:
        async with self._db.connect() as conn:
            row = (await conn.execute(select(*_NODE_COLUMNS).where(nodes.c.id == node_id))).first()
            if row is None:
                return None
            capabilities = await _capabilities_of(conn, [node_id])
        return NodeRecord(**row._mapping, capabilities=capabilities.get(node_id, []))

    async def list_nodes(
        self, capability: str | None, min_trust: float | None, page: int, page_size: int
    ) -> tuple[list[NodeRecord], int]:
        """One page of nodes, the most trusted first, and how many match in all."""
        if capability is not None:
            page_query, count = _by_capability(capability, min_trust)
        else:
            conditions = [] if min_trust is None else [nodes.c.trust_score >= min_trust]
            page_query = (
                select(*_NODE_COLUMNS).where(*conditions).order_by(nodes.c.trust_score.desc(), nodes.c.id)
            )
            count = select(func.count()).select_from(nodes).where(*conditions)
        page_query = page_query.limit(page_size).offset((page - 1) * page_size)
        async with self._db.connect() as conn:
            total = int((await conn.execute(count)).scalar_one())
            rows = (await conn.execute(page_query)).all()
            capabilities = await _capabilities_of(conn, [row.id for row in rows])
        return [NodeRecord(**row._mapping, capabilities=capabilities.get(row.id, [])) for row in rows], total

    async def trust_scores(self, node_ids: Sequence[str]) -> dict[str, tuple[NodeKind, float]]:
        """Each existing node's kind and trust score, in one query (a page's capabilities' ratings)."""
        if not node_ids:
            return {}
        statement = select(nodes.c.id, nodes.c.kind, nodes.c.trust_score).where(
            nodes.c.id.in_(sorted(set(node_ids)))
        )
        async with self._db.connect() as conn:
            rows = (await conn.execute(statement)).all()
        return {row.id: (row.kind, float(row.trust_score)) for row in rows}

    async def node_for_key(self, key_hash: str) -> str | None:
        async with self._db.connect() as conn:
            found = await conn.execute(select(api_keys.c.node_id).where(api_keys.c.key_hash == key_hash))
            return found.scalar_one_or_none()

    async def password_hash(self, node_id: str) -> str | None:
        async with self._db.connect() as conn:
            found = await conn.execute(select(nodes.c.password_hash).where(nodes.c.id == node_id))
            return found.scalar_one_or_none()


def _by_capability(capability: str, min_trust: float | None) -> tuple[Select[Any], Select[Any]]:
    """The page (unlimited) and the count of nodes with ``capability``, both from its capability rows.

    The rows' copy of trust_score orders and filters them, so both walk the index
    (capability, trust_score DESC, node_id) and the page reads only its own nodes.
    """
    where = [node_capabilities.c.capability == capability]
    if min_trust is not None:
        where.append(node_capabilities.c.trust_score >= min_trust)
    page = (
        select(*_NODE_COLUMNS)
        .select_from(node_capabilities.join(nodes, nodes.c.id == node_capabilities.c.node_id))
        .where(*where)
        .order_by(node_capabilities.c.trust_score.desc(), node_capabilities.c.node_id)
    )
    return page, select(func.count()).select_from(node_capabilities).where(*where)


async def _capabilities_of(conn: AsyncConnection, node_ids: list[str]) -> dict[str, list[str]]:
    if not node_ids:
        return {}
    rows = await conn.execute(
        select(node_capabilities.c.node_id, node_capabilities.c.capability)
        .where(node_capabilities.c.node_id.in_(node_ids))
        .order_by(node_capabilities.c.node_id, node_capabilities.c.capability)
    )
    found: dict[str, list[str]] = {}
    for node_id, capability in rows:
        found.setdefault(node_id, []).append(capability)
    return found
