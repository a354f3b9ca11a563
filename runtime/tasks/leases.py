"""This worker's lease on the database, and the sweep that cleans up after workers that died.

Every worker holds a lease (``worker_instances``) it renews each ``heartbeat_seconds``; its active
runs are held under it. Each heartbeat also sweeps: the runs of workers whose lease expired are
ended as interrupted (the state a restart leaves them in), their containers are removed through
``reap`` and their row is dropped. A killed worker's tasks are thus ended, by any worker still up,
between ``lease_seconds`` and ``lease_seconds + heartbeat_seconds`` after its last heartbeat. On
SQLite there is one worker: the lease is kept (the same code path) but nothing else sweeps.

One lease per worker rather than one per run: a heartbeat is one statement however many tasks the
worker runs, and what dies is a process, not a run.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import structlog
from pydantic import BaseModel, Field, model_validator

from runtime.store import Store
from runtime.tasks.manager import INTERRUPTED

__all__ = ["LeaseConfig", "WorkerLease"]

log = structlog.get_logger(__name__)

LostHandler = Callable[[], Awaitable[object]]
"""Called when this worker finds its own lease had expired (cut off from the database too long)."""
Reaper = Callable[[str], Awaitable[int]]
"""Cleans up what a dead worker instance left besides its runs (its containers); how many
containers it removed."""


class LeaseConfig(BaseModel):
    lease_seconds: float = Field(
        30.0,
        gt=0,
        description="Seconds a worker's lease lasts without a heartbeat; then any other worker ends its "
        "tasks as interrupted and removes its containers.",
    )
    heartbeat_seconds: float = Field(
        5.0,
        gt=0,
        description="Seconds between a worker's heartbeats (its lease renewed, dead workers swept).",
    )

    @model_validator(mode="after")
    def _beats_within_the_lease(self) -> LeaseConfig:
        if self.heartbeat_seconds >= self.lease_seconds:
            raise ValueError(
                "heartbeat_seconds must be less than lease_seconds, or the lease lapses between beats"
            )
        return self


class WorkerLease:
    def __init__(self, store: Store, instance: str, config: LeaseConfig, reap: Reaper) -> None:
        self._store = store
        self._instance = instance
        self._config = config
        self._reap = reap
        self._on_lost: list[LostHandler] = []
        self._after_cleanup: list[LostHandler] = []

    def on_lost(self, handler: LostHandler) -> None:
        """Call ``handler`` when a heartbeat finds the lease had expired: other workers may have
        ended this worker's tasks meanwhile (the task manager lets those go)."""
        self._on_lost.append(handler)

    def after_cleanup(self, handler: LostHandler) -> None:
        """Call ``handler`` after a sweep that ended a dead worker's runs or cleaned up after it (what
        that worker would have settled as its tasks ended: orders, house tasks)."""
        self._after_cleanup.append(handler)

    @asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        """Take the lease, end what this instance's last process and dead workers left, renew it
        until the block ends, then give it up (this worker's runs have ended by then)."""
        await self._store.workers.beat(self._instance, self._config.lease_seconds, starting=True)
        ended = await self._store.fail_interrupted_runs(INTERRUPTED, at_start=True)
        if ended:
            log.warning("runs_interrupted", count=len(ended), run_ids=ended)
        await self.sweep()
        beating = asyncio.create_task(self._beat(), name="worker-lease")
        try:
            yield
        finally:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating
            await self._store.workers.forget(self._instance, only_expired=False)

    async def sweep(self) -> list[str]:
        """End the runs of workers whose lease expired, remove their containers and rows; the runs."""
        ended = await self._store.fail_interrupted_runs(INTERRUPTED, at_start=False)
        if ended:
            log.warning("runs_of_lost_workers_interrupted", count=len(ended), run_ids=ended)
        cleaned = False
        for instance in await self._store.workers.expired():
            if instance == self._instance:
                continue  # a late heartbeat of our own: renewed below, never reaped by ourselves
            removed = await self._reap(instance)
            await self._store.workers.forget(instance)
            cleaned = True
            log.warning("lost_worker_cleaned_up", instance=instance, containers_removed=removed)
        if ended or cleaned:
            for handler in self._after_cleanup:
                await handler()
        return ended

    async def renew(self) -> None:
        """One heartbeat: renew the lease (calling the lost handlers if it had expired), then sweep."""
        if not await self._store.workers.beat(self._instance, self._config.lease_seconds):
            log.error("worker_lease_lost", instance=self._instance)
            for handler in self._on_lost:
                await handler()
        await self.sweep()

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self._config.heartbeat_seconds)
            try:
                await self.renew()
            except Exception:  # the database away for a moment: try again at the next beat
                log.exception("worker_heartbeat_failed", instance=self._instance)
