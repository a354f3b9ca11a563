"""Placement of workspaces on Docker engines, over the real store (SQLite and PostgreSQL).

The engines are a table of statuses the test sets (the seam placement sees, ``SandboxEngines``);
the tests on two real engines are tests/api/test_docker_engines.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from runtime.errors import UnavailableError
from runtime.store import Store
from runtime.workspaces.placement import Placements, volume_name
from sandbox.base import EngineStatus

pytestmark = pytest.mark.both_engines


class Engines:
    """Engines whose state the test sets: sandboxes on each, None when unreachable."""

    def __init__(self, **engines: tuple[str, int | None, int | None]) -> None:
        self.state = dict(engines)  # name -> (files, capacity, sandboxes)

    def _status(self, name: str) -> EngineStatus:
        files, capacity, sandboxes = self.state[name]
        problem = None if sandboxes is not None else "ConnectionError: gone"
        return EngineStatus(name=name, files=files, capacity=capacity, sandboxes=sandboxes, problem=problem)  # type: ignore[arg-type]

    async def engines(self) -> list[EngineStatus]:
        return [self._status(name) for name in self.state]

    async def probe(self, name: str) -> EngineStatus | None:
        return self._status(name) if name in self.state else None


@pytest.fixture
async def store(store_target: str | Path) -> AsyncIterator[Store]:
    async with Store.open(store_target) as store:
        yield store


async def test_a_new_workspace_goes_to_the_engine_with_most_room_and_stays(store: Store) -> None:
    engines = Engines(one=("bind", 4, 3), two=("volume", 10, 2))
    placements = Placements(store, engines)
    placed = await placements.locate("alice", "ws1")
    assert (placed.engine, placed.volume, placed.lost) == ("two", volume_name("alice", "ws1"), None)
    engines.state["two"] = ("volume", 10, 10)  # full now: a placed workspace stays with its files
    assert (await placements.locate("alice", "ws1")).engine == "two"
    assert (await placements.locate("alice", "ws2")).engine == "one"  # a new one goes where room is
    assert (await placements.locate("alice", "ws2")).volume is None  # a bind engine: the host directory
    assert await placements.find("bob", "ws1") is None  # per owner


async def test_no_room_anywhere_is_unavailable(store: Store) -> None:
    placements = Placements(store, Engines(one=("bind", 1, 1), two=("volume", 2, None)))
    with pytest.raises(UnavailableError, match="no Docker engine has room"):
        await placements.locate("alice", "ws1")
    assert await placements.find("alice", "ws1") is None


async def test_an_engine_gone_moves_the_workspace_and_keeps_what_was_lost(store: Store) -> None:
    engines = Engines(one=("bind", None, 0), two=("volume", None, 0))
    engines.state["one"] = ("bind", 1, 1)  # full: the workspace goes to two
    placements = Placements(store, engines)
    first = await placements.locate("alice", "ws1")
    assert first.engine == "two"

    engines.state["two"] = ("volume", None, None)  # unreachable
    engines.state["one"] = ("bind", 1, 0)
    moved = await placements.locate("alice", "ws1")
    assert (moved.engine, moved.volume) == ("one", None)
    assert moved.lost is not None
    assert (moved.lost.engine, moved.lost.volume) == ("two", first.volume)
    assert moved.lost.reason == "engine two unreachable: ConnectionError: gone"
    assert await placements.find("alice", "ws1") == moved  # every worker reads the same row

    del engines.state["one"]  # taken out of AGENT_DOCKER_HOSTS, and two is back
    engines.state["two"] = ("volume", None, 0)
    again = await placements.locate("alice", "ws1")
    assert again.engine == "two" and again.lost is not None
    assert again.lost.engine == "one" and again.lost.volume is None
    assert again.lost.reason == "engine one is no longer configured (AGENT_DOCKER_HOSTS)"


async def test_gone_with_nowhere_to_go_keeps_the_placement(store: Store) -> None:
    engines = Engines(one=("volume", None, 0))
    placements = Placements(store, engines)
    placed = await placements.locate("alice", "ws1")
    engines.state["one"] = ("volume", None, None)
    with pytest.raises(UnavailableError, match="engine one, which is gone"):
        await placements.locate("alice", "ws1")
    assert await placements.find("alice", "ws1") == placed  # nothing lost yet: it may come back


async def test_workers_placing_at_once_agree(store: Store) -> None:
    engines = Engines(one=("bind", None, 0), two=("volume", None, 0))
    # Two workers whose counts differ (each sees the other engine emptier) place the same workspace.
    other = Engines(one=("bind", None, 5), two=("volume", None, 0))
    results = await asyncio.gather(
        Placements(store, engines).locate("alice", "ws1"), Placements(store, other).locate("alice", "ws1")
    )
    assert results[0] == results[1]
    assert results[0].engine in ("one", "two")

    # Both find its engine gone at once: one moves it, the other reads the move.
    gone = Engines(**{results[0].engine: ("volume", None, None), "three": ("volume", None, 0)})
    moved = await asyncio.gather(*(Placements(store, gone).locate("alice", "ws1") for _ in range(2)))
    assert moved[0] == moved[1]
    assert moved[0].engine == "three" and moved[0].lost is not None
