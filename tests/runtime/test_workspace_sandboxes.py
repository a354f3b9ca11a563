"""Keyed long-lived sandboxes below HTTP, on a fake factory: end(), the per-owner cap, the run label."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from runtime.errors import ConflictError
from runtime.workspaces.sandboxes import WorkspaceSandboxes
from sandbox.base import ExecResult, OnOutput, SandboxRequest


class FakeSandbox:
    def __init__(self, request: SandboxRequest) -> None:
        self.request = request

    @property
    def id(self) -> str:
        return self.request.run_id

    async def run_bash(self, command: str, timeout: float, on_output: OnOutput | None = None) -> ExecResult:
        raise NotImplementedError

    async def run_python(
        self, code: str, timeout: float, on_output: OnOutput | None = None, session: str | None = None
    ) -> ExecResult:
        raise NotImplementedError

    async def alive(self) -> bool:
        return True


class FakeFactory:
    def __init__(self) -> None:
        self.open_ids: list[str] = []

    @asynccontextmanager
    async def open(self, request: SandboxRequest) -> AsyncIterator[FakeSandbox]:
        self.open_ids.append(request.run_id)
        try:
            yield FakeSandbox(request)
        finally:
            self.open_ids.remove(request.run_id)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_an_ended_key_is_removed_at_once(tmp_path: Path) -> None:
    factory = FakeFactory()
    sandboxes = WorkspaceSandboxes(factory, idle_timeout=600, kind="mcp")
    async with sandboxes.lease("alice", "s1", tmp_path) as sandbox:
        assert sandbox.id == "mcp:s1"

    assert factory.open_ids == ["mcp:s1"]  # idle, kept for the next lease
    sandboxes.end("alice", "s1")
    await settle()
    assert factory.open_ids == [] and sandboxes.active() == 0
    sandboxes.end("alice", "never-leased")  # nothing to do
    await sandboxes.aclose()


async def test_a_key_ended_while_leased_goes_when_the_lease_ends(tmp_path: Path) -> None:
    factory = FakeFactory()
    sandboxes = WorkspaceSandboxes(factory, idle_timeout=600)
    async with sandboxes.lease("alice", "ws", tmp_path):
        sandboxes.end("alice", "ws")
        await settle()
        assert factory.open_ids == ["workspace:ws"]  # still in use

    await settle()
    assert factory.open_ids == []
    await sandboxes.aclose()


async def test_an_owner_has_at_most_max_per_owner_sandboxes(tmp_path: Path) -> None:
    factory = FakeFactory()
    sandboxes = WorkspaceSandboxes(factory, idle_timeout=600, kind="mcp", max_per_owner=2)
    for key in ("a", "b"):
        async with sandboxes.lease("alice", key, tmp_path):
            pass

    with pytest.raises(ConflictError, match="2 mcp sandboxes are open"):
        async with sandboxes.lease("alice", "c", tmp_path):
            pass
    async with sandboxes.lease("alice", "a", tmp_path):  # one of hers: reused, not counted again
        pass
    async with sandboxes.lease("bob", "c", tmp_path):  # another owner's count
        pass
    sandboxes.end("alice", "b")
    async with sandboxes.lease("alice", "c", tmp_path):  # room again
        pass

    await sandboxes.aclose()
    assert factory.open_ids == []
