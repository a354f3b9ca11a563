"""Which Docker engine holds a workspace's sandbox and files, with several engines (``AGENT_DOCKER_HOSTS``).

A workspace is placed on first use on the engine with the most room left, and stays there: its
files are there (a host directory, or a Docker volume on that engine), so every sandbox of it, from
any worker, starts there too. The placement is a row of the store, so every worker finds it.

Capacity steers placement (new workspaces, ephemeral sandboxes); it does not move a placed
workspace: its next sandbox starts on its engine even when that engine is full, since a task that
cannot reach its files is worse than a busy engine. An engine that is unreachable when a
workspace's sandbox is about to start, or no longer configured, is given up for that workspace: it
is placed anew, without its files, and the placement keeps what was lost (engine, volume, when,
why) for the API to say. Nothing is deleted on the lost engine: an operator can recover the
volume there by hand.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable

import structlog

from runtime.errors import UnavailableError
from runtime.store import Store
from runtime.store.placements import LostFiles, PlacementRecord
from sandbox.base import EngineStatus, SandboxEngines

__all__ = ["LostFiles", "OnMove", "PlacementRecord", "Placements", "volume_name"]

log = structlog.get_logger(__name__)

OnMove = Callable[[PlacementRecord], Awaitable[None]]
"""Told of a workspace this worker just placed anew, off an engine that went away."""


def volume_name(owner: str, workspace_id: str) -> str:
    """The Docker volume of a workspace on a volume engine: its owner's key (as its host directory's) and id."""
    return f"aw-ws-{hashlib.sha256(owner.encode()).hexdigest()[:16]}-{workspace_id}"


class Placements:
    def __init__(self, store: Store, engines: SandboxEngines) -> None:
        self._rows = store.placements
        self._engines = engines

    async def find(self, owner: str, workspace_id: str) -> PlacementRecord | None:
        """The workspace's placement as recorded; None before its first use."""
        return await self._rows.find(owner, workspace_id)

    async def locate(self, owner: str, workspace_id: str, on_move: OnMove | None = None) -> PlacementRecord:
        """Where the workspace's next sandbox starts: placed now if new, placed anew if its engine is gone.

        ``on_move`` is awaited with the new placement when this call moved the workspace.
        """
        placed = await self._rows.find(owner, workspace_id)
        if placed is not None:
            status = await self._engines.probe(placed.engine)
            if status is not None and status.sandboxes is not None:
                return placed
            reason = (
                f"engine {placed.engine} is no longer configured (AGENT_DOCKER_HOSTS)"
                if status is None
                else f"engine {placed.engine} unreachable: {status.problem}"
            )
            moved = await self._move(owner, workspace_id, placed, reason)
            if on_move is not None and moved.lost is not None and moved.lost.at == moved.placed_at:
                await on_move(moved)
            return moved
        target = _roomiest(await self._engines.engines())
        if target is None:
            raise UnavailableError(
                "no Docker engine has room for another workspace's sandbox; try again later"
            )
        volume = volume_name(owner, workspace_id) if target.files == "volume" else None
        placed = await self._rows.place(owner, workspace_id, target.name, volume, time.time())
        log.info("workspace_placed", workspace=workspace_id, engine=placed.engine, volume=placed.volume)
        return placed

    async def _move(
        self, owner: str, workspace_id: str, lost: PlacementRecord, reason: str
    ) -> PlacementRecord:
        others = [s for s in await self._engines.engines() if s.name != lost.engine]
        target = _roomiest(others)
        if target is None:
            raise UnavailableError(
                f"the workspace's files are on Docker engine {lost.engine}, which is gone ({reason}), "
                "and no other engine has room; try again later"
            )
        volume = volume_name(owner, workspace_id) if target.files == "volume" else None
        placed = await self._rows.move(owner, workspace_id, lost, target.name, volume, reason, time.time())
        log.warning(
            "workspace_files_lost",
            workspace=workspace_id,
            lost_engine=lost.engine,
            lost_volume=lost.volume,
            engine=placed.engine,
            reason=reason,
        )
        return placed


def _roomiest(statuses: list[EngineStatus]) -> EngineStatus | None:
    usable = [s for s in statuses if s.room > 0]
    return max(usable, key=lambda s: s.room) if usable else None
