"""One long-lived sandbox per key: per workspace, shared by the tasks running in it; per MCP session.

Files and installed packages persist between messages because the container does: it stays up
while any caller holds a lease and for ``idle_timeout`` seconds after the last one ends, then it is
removed (at once after :meth:`WorkspaceSandboxes.end`). The next lease starts a fresh container on
the same workspace directory. With several Docker engines, a container starts on the engine its
workspace is placed on (:mod:`runtime.workspaces.placement`), mounting its directory or its volume.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from runtime.errors import ConflictError, UnavailableError
from runtime.workspaces.placement import OnMove, Placements
from sandbox.base import Sandbox, SandboxFactory, SandboxRequest
from sandbox.errors import SandboxStartError

__all__ = ["WorkspaceSandboxes"]

log = structlog.get_logger(__name__)


@dataclass
class _Slot:
    stack: AsyncExitStack = field(default_factory=AsyncExitStack)
    sandbox: Sandbox | None = None
    leases: int = 0
    idle_timer: asyncio.TimerHandle | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    ended: bool = False  # removed as soon as the last lease ends


class WorkspaceSandboxes:
    """Sandboxes keyed by owner and a name: a workspace id (tasks) or an MCP session id.

    ``kind`` labels the containers' run (``<kind>:<name>``); ``max_per_owner`` caps the sandboxes
    one owner may have at once (a lease beyond it is a :class:`ConflictError`).
    """

    def __init__(
        self,
        factory: SandboxFactory,
        idle_timeout: float,
        *,
        kind: str = "workspace",
        max_per_owner: int | None = None,
        placements: Placements | None = None,
    ) -> None:
        self._factory = factory
        self._placements = placements  # several engines: each workspace's sandbox starts on its own
        self._idle_timeout = idle_timeout
        self._kind = kind
        self._max_per_owner = max_per_owner
        self._slots: dict[tuple[str, str], _Slot] = {}
        self._closing: set[asyncio.Task[None]] = set()

    @asynccontextmanager
    async def lease(
        self,
        owner: str,
        workspace_id: str,
        files_dir: Path | None,
        *,
        workspace: str | None = None,
        on_move: OnMove | None = None,
    ) -> AsyncIterator[Sandbox]:
        """The sandbox of ``workspace_id`` (the key's name), started on ``files_dir`` if needed.

        ``workspace``: the workspace whose files it mounts, when the key's name is not one (an MCP
        session's); its placement says on which engine, and whether ``files_dir`` or a volume.
        ``on_move``: told when starting it moved the workspace off an engine that went away.
        """
        key = (owner, workspace_id)
        if key not in self._slots and self._max_per_owner is not None:
            held = sum(1 for slot_owner, _ in self._slots if slot_owner == owner)
            if held >= self._max_per_owner:
                raise ConflictError(
                    f"{held} {self._kind} sandboxes are open for this user, the most allowed; "
                    "end one (or wait for it to be idle long enough to be removed) and try again"
                )
        slot = self._slots.setdefault(key, _Slot())
        slot.leases += 1
        if slot.idle_timer is not None:
            slot.idle_timer.cancel()
            slot.idle_timer = None
        try:
            async with slot.lock:
                if slot.sandbox is not None and not await slot.sandbox.alive():
                    log.warning("sandbox_died", kind=self._kind, name=workspace_id, sandbox=slot.sandbox.id)
                    await slot.stack.aclose()
                    slot.stack, slot.sandbox = AsyncExitStack(), None
                if slot.sandbox is None:
                    request = SandboxRequest(
                        owner=owner, run_id=f"{self._kind}:{workspace_id}", workspace_dir=files_dir
                    )
                    if self._placements is not None:
                        request = await self._placed(request, owner, workspace or workspace_id, on_move)
                    slot.sandbox = await slot.stack.enter_async_context(self._factory.open(request))
                    log.info("sandbox_started", kind=self._kind, name=workspace_id, sandbox=slot.sandbox.id)
            yield slot.sandbox
        finally:
            slot.leases -= 1
            if slot.leases == 0 and self._slots.get(key) is slot:
                if slot.ended:
                    self._expire(key, slot)
                else:
                    loop = asyncio.get_running_loop()
                    slot.idle_timer = loop.call_later(self._idle_timeout, self._expire, key, slot)

    async def _placed(
        self, request: SandboxRequest, owner: str, workspace: str, on_move: OnMove | None
    ) -> SandboxRequest:
        assert self._placements is not None
        try:
            placed = await self._placements.locate(owner, workspace, on_move)
        except UnavailableError as e:  # to a run, no engine to start on is its sandbox failing to start
            raise SandboxStartError(str(e)) from e
        if placed.volume is None and request.workspace_dir is None:
            # Its files moved from a volume to a host directory since the caller looked (failover).
            raise UnavailableError(f"workspace {workspace} was just placed anew; try again")
        return request.model_copy(
            update={
                "engine": placed.engine,
                "workspace_volume": placed.volume,
                "workspace_dir": request.workspace_dir if placed.volume is None else None,
            }
        )

    def end(self, owner: str, name: str) -> None:
        """The key's sandbox is no longer wanted: removed now, or when its last lease ends."""
        slot = self._slots.get((owner, name))
        if slot is None:
            return
        slot.ended = True
        if slot.idle_timer is not None:
            slot.idle_timer.cancel()
            slot.idle_timer = None
        if slot.leases == 0:
            self._expire((owner, name), slot)

    def _expire(self, key: tuple[str, str], slot: _Slot) -> None:
        if slot.leases or self._slots.get(key) is not slot:
            return
        del self._slots[key]
        task = asyncio.ensure_future(self._close(key, slot))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _close(self, key: tuple[str, str], slot: _Slot) -> None:
        async with slot.lock:
            await slot.stack.aclose()
        log.info("sandbox_stopped", kind=self._kind, name=key[1])

    async def aclose(self) -> None:
        """Remove every sandbox (at shutdown, after the tasks and sessions using them have ended)."""
        slots = list(self._slots.items())
        self._slots.clear()
        for _, slot in slots:
            if slot.idle_timer is not None:
                slot.idle_timer.cancel()
        await asyncio.gather(*(self._close(key, slot) for key, slot in slots), return_exceptions=True)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    def active(self) -> int:
        return len(self._slots)
