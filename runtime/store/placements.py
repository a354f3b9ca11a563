"""Workspace placements: which Docker engine holds a workspace's sandbox and files.

Every worker of one database reads the same row, so a workspace's sandbox starts where its files
are whichever worker runs its task. Placing and moving are single statements that lose to a worker
that got there first (insert if missing; update only while the row still names the old engine), and
the row read back afterwards is the one everybody uses.
"""

from __future__ import annotations

from pydantic import BaseModel, Field
from sqlalchemy import select, update

from runtime.store.database import Database
from runtime.store.dialects import upsert
from runtime.store.schema import workspace_placements

__all__ = ["LostFiles", "PlacementQueries", "PlacementRecord"]

_T = workspace_placements


class LostFiles(BaseModel):
    """A workspace's files that stayed behind on an engine that went away."""

    engine: str = Field(description="The engine (an AGENT_DOCKER_HOSTS name) that held them.")
    volume: str | None = Field(description="The Docker volume on that engine that held them.")
    at: float = Field(description="When the workspace was placed anew without them, Unix seconds.")
    reason: str = Field(description="Why the engine was given up.")


class PlacementRecord(BaseModel):
    engine: str = Field(description="The engine holding the workspace's sandbox and files.")
    volume: str | None = Field(description="The Docker volume holding its files; None: a host directory.")
    placed_at: float
    lost: LostFiles | None = Field(description="The files lost the last time its engine went away.")


_SELECT = select(
    _T.c.engine,
    _T.c.volume,
    _T.c.placed_at,
    _T.c.lost_engine,
    _T.c.lost_volume,
    _T.c.lost_at,
    _T.c.lost_reason,
)


def _record(row: object) -> PlacementRecord:
    m = row._mapping  # type: ignore[attr-defined]
    lost = None
    if m["lost_engine"] is not None:
        lost = LostFiles(
            engine=m["lost_engine"], volume=m["lost_volume"], at=m["lost_at"], reason=m["lost_reason"]
        )
    return PlacementRecord(engine=m["engine"], volume=m["volume"], placed_at=m["placed_at"], lost=lost)


class PlacementQueries:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def find(self, owner: str, workspace_id: str) -> PlacementRecord | None:
        async with self._db.connect() as conn:
            row = (
                await conn.execute(_SELECT.where(_T.c.owner == owner, _T.c.workspace_id == workspace_id))
            ).first()
        return None if row is None else _record(row)

    async def place(
        self, owner: str, workspace_id: str, engine: str, volume: str | None, now: float
    ) -> PlacementRecord:
        """Place an unplaced workspace; the placement in force afterwards (another worker's, if it won)."""
        statement = (
            upsert(self._db, _T)
            .values(owner=owner, workspace_id=workspace_id, engine=engine, volume=volume, placed_at=now)
            .on_conflict_do_nothing()
        )
        async with self._db.connect() as conn:
            await conn.execute(statement)
        placed = await self.find(owner, workspace_id)
        assert placed is not None  # rows are never deleted here
        return placed

    async def move(
        self,
        owner: str,
        workspace_id: str,
        lost: PlacementRecord,
        engine: str,
        volume: str | None,
        reason: str,
        now: float,
    ) -> PlacementRecord:
        """Place the workspace anew, off ``lost``'s engine, unless another worker moved it first."""
        statement = (
            update(_T)
            .where(_T.c.owner == owner, _T.c.workspace_id == workspace_id, _T.c.engine == lost.engine)
            .values(
                engine=engine,
                volume=volume,
                placed_at=now,
                lost_engine=lost.engine,
                lost_volume=lost.volume,
                lost_at=now,
                lost_reason=reason,
            )
        )
        async with self._db.connect() as conn:
            await conn.execute(statement)
        placed = await self.find(owner, workspace_id)
        assert placed is not None
        return placed
