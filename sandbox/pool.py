"""A warm pool: hardened sandboxes started before anyone asks for one, each handed out once.

Only ephemeral sandboxes (a tmpfs ``/workspace``: ``/chat`` runs) come from the pool. A
workspace's sandbox has the workspace's directory bind-mounted at ``/workspace``; a bind mount
cannot be added to a running container, and copying the files into a spare would make a second
copy that is no longer the workspace. So a workspace's (or MCP session's) sandbox starts cold:
once per workspace and idle period, since it is long-lived and shared by the workspace's tasks.

A spare is claimed by one run, never shared and never returned: it is removed once that run ends
and the pool starts a new one. Both wait until the run has ended and ``_SETTLE`` seconds more:
creating and removing containers keeps the engine busy for a few hundred ms of CPU, which on a
small host slowed the claiming run's own tool calls and answer by ~10 ms (bench/README.md). Only
a claim that empties the pool starts the refill at once, since the next run would start cold.
With ``size`` 0, or when the pool is empty, :meth:`WarmPool.open` starts a sandbox cold; it is
removed the same way, behind the run's answer. Spares carry the instance label like every
sandbox (a restarted worker reaps them) and the pool label.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from types import TracebackType

import structlog

from sandbox.base import Sandbox, SandboxFactory, SandboxRequest

__all__ = ["WarmPool"]

log = structlog.get_logger(__name__)

_RETRY_DELAY = 5.0  # after a spare failed to start (engine down, image gone): do not spin
_WARM_UP_TIMEOUT = 30.0
_SETTLE = 0.1  # after a run ends: time for its answer to go out before the engine gets busy


@dataclass
class _Spare:
    sandbox: Sandbox
    stack: AsyncExitStack  # holds the factory's context: closing it removes the container


class WarmPool:
    """A :class:`~sandbox.base.SandboxFactory` that hands out pre-started spares; ``async with`` runs it."""

    def __init__(self, factory: SandboxFactory, size: int) -> None:
        self._factory = factory
        self._size = size
        self._ready: deque[_Spare] = deque()
        self._wanted = asyncio.Event()
        self._filler: asyncio.Task[None] | None = None
        self._removing: set[asyncio.Task[None]] = set()
        self._serial = itertools.count(1)
        # Counted here, read by the worker's metrics at each scrape (sandbox/ knows no metrics).
        self._claims = 0
        self._cold_starts = 0
        self._spares_started = 0
        self._spare_start_seconds = 0.0

    async def __aenter__(self) -> WarmPool:
        if self._size > 0:
            self._filler = asyncio.create_task(self._fill(), name="sandbox-pool-filler")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop refilling, remove the spares, and wait for the removal of claimed ones."""
        if self._filler is not None:
            self._filler.cancel()
            await asyncio.wait([self._filler])
        while self._ready:
            self._remove_later(self._ready.popleft())
        if self._removing:
            await asyncio.wait(list(self._removing))

    @property
    def ready(self) -> int:
        """Spares waiting to be claimed."""
        return len(self._ready)

    @property
    def size(self) -> int:
        """Spares the pool keeps started."""
        return self._size

    @property
    def claims(self) -> int:
        """Spares handed out since the pool started."""
        return self._claims

    @property
    def cold_starts(self) -> int:
        """Sandboxes this pool started on demand, having no spare ready (or being off)."""
        return self._cold_starts

    @property
    def spares_started(self) -> int:
        return self._spares_started

    @property
    def spare_start_seconds(self) -> float:
        """Time spent starting spares (creating one until it answered its first command), in all."""
        return self._spare_start_seconds

    @asynccontextmanager
    async def open(self, request: SandboxRequest) -> AsyncIterator[Sandbox]:
        """A spare when one is ready and the request needs no workspace's files; else a cold start."""
        spare = await self._claim(request) if request.ephemeral else None
        if spare is None:
            self._cold_starts += 1
            stack = AsyncExitStack()
            spare = _Spare(await stack.enter_async_context(self._factory.open(request)), stack)
        try:
            yield spare.sandbox
        finally:
            self._remove_later(spare, settle=_SETTLE)

    async def _claim(self, request: SandboxRequest) -> _Spare | None:
        while self._ready:
            spare = self._ready.popleft()
            if not self._ready:
                self._wanted.set()
            try:
                alive = await spare.sandbox.alive()
            except BaseException:  # canceled mid-claim: the spare is nobody's, so it goes
                self._remove_later(spare)
                raise
            if alive:
                self._claims += 1
                log.info("sandbox_claimed", sandbox=spare.sandbox.id, owner=request.owner, run=request.run_id)
                return spare
            log.warning("pool_spare_died", sandbox=spare.sandbox.id)
            self._remove_later(spare)
        return None

    async def _fill(self) -> None:
        while True:
            self._wanted.clear()  # before looking: a claim from here on wakes the wait below
            while len(self._ready) < self._size:
                request = SandboxRequest(owner="", run_id=f"pool-{next(self._serial)}", pool=True)
                stack = AsyncExitStack()
                started = time.monotonic()
                try:
                    sandbox = await stack.enter_async_context(self._factory.open(request))
                    # A new container's first command is a few ms slower: pay it here, not in a run.
                    await sandbox.run_bash("true", _WARM_UP_TIMEOUT)
                except asyncio.CancelledError:
                    await stack.aclose()
                    raise
                except Exception:
                    await stack.aclose()
                    log.exception("pool_spare_failed", retry_in=_RETRY_DELAY)
                    await asyncio.sleep(_RETRY_DELAY)
                    continue
                self._spares_started += 1
                self._spare_start_seconds += time.monotonic() - started
                self._ready.append(_Spare(sandbox, stack))
            await self._wanted.wait()

    def _remove_later(self, spare: _Spare, settle: float = 0.0) -> None:
        """Remove ``spare`` in the background, after ``settle`` seconds, and refill its place."""
        task = asyncio.ensure_future(self._retire(spare, settle))
        self._removing.add(task)
        task.add_done_callback(self._removed)

    async def _retire(self, spare: _Spare, settle: float) -> None:
        if settle:
            await asyncio.sleep(settle)
        self._wanted.set()
        await spare.stack.aclose()

    def _removed(self, task: asyncio.Task[None]) -> None:
        self._removing.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("pool_removal_failed", error=str(task.exception()))
