"""The /v1 platform's trust ratings: the ``platform_trust_ratings`` table.

A rating is added in one transaction with the node's new score (``nodes.trust_score`` and
``ratings_count``, through :func:`runtime.store.platform_nodes.set_trust`), computed from the sum
of all its ratings' evidence by the rule's formula (:mod:`runtime.platform.trust`). Ratings of one
node are serialized by a per-node lock (PostgreSQL's advisory lock; SQLite's single writer), so two
ratings landing together both count. The task id is the key: a task is rated once.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from runtime.errors import ConflictError
from runtime.store.database import Database
from runtime.store.platform_nodes import set_trust
from runtime.store.schema import platform_tasks as tasks
from runtime.store.schema import platform_trust_ratings as ratings

__all__ = ["RatingRow", "TaskParties", "TrustQueries"]

ScoreOf = Callable[[int, float], float]
"""(number of ratings, sum of their evidence) → the node's trust score."""


class RatingRow(BaseModel):
    task_id: str
    agent_id: str
    rater: str
    quality_score: float
    on_time: bool
    comment: str
    evidence: float
    created_at: float


class TaskParties(BaseModel):
    """Who may rate whom for a task: its publisher rates its acceptor once it is done."""

    publisher: str
    acceptor: str | None
    status: str


class TrustQueries:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def task_parties(self, task_id: str) -> TaskParties | None:
        async with self._db.connect() as conn:
            row = (
                await conn.execute(
                    select(tasks.c.publisher, tasks.c.acceptor, tasks.c.status).where(tasks.c.id == task_id)
                )
            ).first()
        return None if row is None else TaskParties.model_validate(row._mapping)

    async def add(self, rating: RatingRow, score_of: ScoreOf) -> tuple[float, int]:
        """Record ``rating`` and the node's new (score, count); :class:`ConflictError` if the task
        was rated already (nothing written)."""
        try:
            async with self._db.transaction() as conn:
                await self._db.lock_owner(conn, "trust", rating.agent_id)
                # Checked first so PostgreSQL's transaction is not aborted by a failed INSERT; the
                # key still refuses a duplicate that this check could not see.
                rated = await conn.execute(
                    select(ratings.c.task_id).where(ratings.c.task_id == rating.task_id)
                )
                if rated.first() is not None:
                    raise ConflictError(f"task {rating.task_id!r} has been rated already")
                await conn.execute(insert(ratings).values(**rating.model_dump()))
                totals = (
                    await conn.execute(
                        select(func.count(), func.coalesce(func.sum(ratings.c.evidence), 0.0)).where(
                            ratings.c.agent_id == rating.agent_id
                        )
                    )
                ).one()
                count, evidence = int(totals[0]), float(totals[1])
                score = score_of(count, evidence)
                await set_trust(conn, rating.agent_id, score, count)
        except IntegrityError:
            raise ConflictError(f"task {rating.task_id!r} has been rated already") from None
        return score, count

    async def history(self, agent_id: str, page: int, page_size: int) -> tuple[list[RatingRow], int]:
        """The node's ratings, newest first, one page of them, and how many there are."""
        mine = ratings.c.agent_id == agent_id
        async with self._db.connect() as conn:
            total = (await conn.execute(select(func.count()).select_from(ratings).where(mine))).scalar_one()
            rows = await conn.execute(
                select(ratings)
                .where(mine)
                .order_by(ratings.c.created_at.desc(), ratings.c.task_id.desc())
                .limit(page_size)
                .offset((page - 1) * page_size)
            )
            return [RatingRow.model_validate(row._mapping) for row in rows], int(total)
