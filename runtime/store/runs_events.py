"""Runs and their event logs: the queries of the ``runs`` and ``events`` tables.

Offsets are per run, from 0, assigned inside the statement that appends a batch, so they are
never reused or renumbered, and a batch is stored whole or not at all, in one round trip:

- SQLite (one writer): ``INSERT ... SELECT`` reads the run's ``MAX(seq) + 1`` and inserts the
  batch (a JSON array read with ``json_each``) in one statement; SQLite runs the SELECT to
  completion before inserting, so the batch's items follow that offset in order.
- PostgreSQL (concurrent writers): the same statement first advances ``runs.next_offset`` by the
  batch's size (``UPDATE ... RETURNING`` in a CTE). The UPDATE locks the run's row until the
  statement commits and re-reads the row once it has the lock, so two writers of one run get
  disjoint ranges, in commit order; the statement also sends the ``NOTIFY`` that wakes readers
  elsewhere (delivered at commit, never before the events are visible).

Appending, reading events, reading a run and setting its status are the paths a running task and
its long-polling readers take many times a second: their statements are
:class:`~runtime.store.database.Prepared`, run on the driver itself.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import ColumnElement, Integer, and_, bindparam, cast, func, insert, or_, select, text, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import RowMapping

from runtime.engine.events import FINAL_EVENT_TYPES, Event, RunFailed, Usage, event_adapter
from runtime.errors import ConflictError, NotFoundError
from runtime.store.database import Database, Prepared
from runtime.store.schema import events, runs, worker_instances
from runtime.store.wakeups import (
    CANCEL_CHANNEL,
    CHANNEL,
    QUEUE_CHANNEL,
    CancelHandler,
    QueueHandler,
    Wakeups,
    cancel_payload,
)

__all__ = ["ACTIVE", "QueuedRun", "RunEvents", "RunRecord", "RunStatus", "StoredEvent"]

RunStatus = Literal["pending", "running", "completed", "failed", "canceled"]
ACTIVE: tuple[RunStatus, ...] = ("pending", "running")


class RunRecord(BaseModel):
    id: str
    owner: str
    kind: str
    status: RunStatus
    created_at: float
    updated_at: float
    error: str | None = None
    workspace_id: str | None = None
    conversation_id: str | None = None


class StoredEvent(BaseModel):
    offset: int
    timestamp: float
    event: Event


_RUN_COLUMNS = (
    runs.c.id,
    runs.c.owner,
    runs.c.kind,
    runs.c.status,
    runs.c.created_at,
    runs.c.updated_at,
    runs.c.error,
    runs.c.workspace_id,
    runs.c.conversation_id,
)

_RUN_FIELDS = tuple(column.name for column in _RUN_COLUMNS)

_GET_RUN = Prepared(select(*_RUN_COLUMNS).where(runs.c.id == bindparam("run_id")))

_FROM_OFFSET = (
    select(events.c.seq, events.c.type, events.c.data, events.c.created_at)
    .where(events.c.run_id == bindparam("run_id"), events.c.seq >= bindparam("from_offset"))
    .order_by(events.c.seq)
)
_EVENTS = Prepared(_FROM_OFFSET)
_EVENTS_LIMITED = Prepared(_FROM_OFFSET.limit(bindparam("limit")))  # SQLite takes no LIMIT NULL

_NOTIFY_CANCEL = Prepared(select(func.pg_notify(CANCEL_CHANNEL, bindparam("payload"))))
_LAST_EVENT_TYPE = Prepared(
    select(events.c.type).where(events.c.run_id == bindparam("run_id")).order_by(events.c.seq.desc()).limit(1)
)

_CHANGE_STATUS = (
    update(runs)
    .where(runs.c.id == bindparam("run_id"))
    .values(status=bindparam("new_status"), error=bindparam("new_error"), updated_at=bindparam("now"))
)
_SET_STATUS = {
    "sqlite": Prepared(_CHANGE_STATUS),
    "postgresql": Prepared(
        select(func.pg_notify(CHANNEL, _CHANGE_STATUS.returning(runs.c.id).cte("changed").c.id))
    ),
}

_APPEND = {
    "sqlite": Prepared(
        text(
            """INSERT INTO events (run_id, seq, type, data, created_at)
    SELECT :run_id, base.next + batch.key, batch.value ->> 0, batch.value ->> 1, :now
    FROM (SELECT COALESCE(MAX(seq) + 1, 0) AS next FROM events WHERE run_id = :run_id) AS base,
         json_each(:batch) AS batch
    ORDER BY batch.key
    RETURNING seq"""
        )
    ),
    "postgresql": Prepared(
        text(
            """WITH base AS (
        UPDATE runs SET next_offset = next_offset + CAST(:count AS integer) WHERE id = CAST(:run_id AS text)
        RETURNING next_offset - CAST(:count AS integer) AS next
    ), notified AS (SELECT pg_notify(:channel, CAST(:run_id AS text)))
    INSERT INTO events (run_id, seq, type, data, created_at)
    SELECT CAST(:run_id AS text), base.next + CAST(batch.ord AS integer) - 1, batch.type, batch.data,
           CAST(:now AS double precision)
    FROM base, notified,
         unnest(CAST(:types AS text[]), CAST(:datas AS text[])) WITH ORDINALITY AS batch(type, data, ord)
    RETURNING seq"""
        )
    ),
}


_QUEUED = and_(runs.c.status == "pending", runs.c.worker_id.is_(None), runs.c.request.is_not(None))
"""A task in the queue: pending, claimed by no worker, its request stored."""


class QueuedRun(BaseModel):
    """A run taken out of the queue (claimed, or canceled while it waited), and its stored request."""

    id: str
    request: str


class RunEvents:
    """Every query of runs and events; readers wait on :meth:`watch`."""

    def __init__(self, db: Database, wakeups: Wakeups, instance: str | None = None) -> None:
        self._db = db
        self._wakeups = wakeups
        self.instance = instance
        """The worker instance whose runs this store creates (``runs.worker_id``); None: no lease."""

    def watch(self, run_id: str) -> asyncio.Event:
        """An ``asyncio.Event`` set at the run's next change (an event appended, its status set).

        Take it before reading, so a change between the read and the wait is not missed.
        """
        return self._wakeups.watch(run_id)

    async def create_run(
        self,
        run_id: str,
        owner: str,
        kind: str,
        status: RunStatus = "running",
        *,
        workspace_id: str | None = None,
        conversation_id: str | None = None,
    ) -> RunRecord:
        record = _new_record(run_id, owner, kind, status, workspace_id, conversation_id)
        async with self._db.connect() as conn:
            await conn.execute(insert(runs).values(**record.model_dump(), worker_id=self.instance))
        return record

    async def admit_task(
        self,
        run_id: str,
        owner: str,
        *,
        workspace_id: str,
        conversation_id: str,
        max_active: int,
        request: str,
        first: Event,
        queued: bool,
    ) -> RunRecord:
        """Create a task run unless the owner has ``max_active`` active tasks or the conversation one.

        Counted and inserted in one transaction, under a lock per owner on PostgreSQL, so two
        workers cannot both admit past the limit; refused with :class:`ConflictError`. The run is
        stored with its ``request`` and its ``first`` event (offset 0), in the same transaction: a
        queued run (``queued``: pending, no worker) may be claimed by another worker at once, and
        its log must already begin. Not queued: running, held by this store's instance.
        """
        status: RunStatus = "pending" if queued else "running"
        record = _new_record(run_id, owner, "task", status, workspace_id, conversation_id)
        async with self._db.transaction() as conn:
            await self._db.lock_owner(conn, "tasks", owner)
            active = (
                await conn.execute(
                    select(runs.c.id, runs.c.owner, runs.c.conversation_id)
                    .where(runs.c.kind == "task", runs.c.status.in_(ACTIVE))
                    .where(or_(runs.c.owner == owner, runs.c.conversation_id == conversation_id))
                    .order_by(runs.c.created_at, runs.c.id)
                )
            ).all()
            mine = [row.id for row in active if row.owner == owner]
            if len(mine) >= max_active:
                raise ConflictError(
                    f"a task is already running for this user ({', '.join(mine)}); wait for it to finish "
                    "or cancel it"
                )
            if any(row.conversation_id == conversation_id for row in active):
                raise ConflictError(f"conversation {conversation_id} already has a running task")
            await conn.execute(
                insert(runs).values(
                    **record.model_dump(),
                    worker_id=None if queued else self.instance,
                    request=request,
                    next_offset=1,
                )
            )
            await conn.execute(insert(events).values(**_event_row(run_id, 0, first, record.created_at)))
            if queued and self._db.dialect == "postgresql":
                await conn.execute(select(func.pg_notify(QUEUE_CHANNEL, run_id)))  # sent at commit
        if queued:
            self._wakeups.queued()
        return record

    async def claim_queued(self) -> QueuedRun | None:
        """Take the oldest task of the queue for this store's instance (running from now); None if empty.

        One statement: PostgreSQL's ``FOR UPDATE SKIP LOCKED`` lets workers claiming at once take
        different runs instead of waiting on each other's; SQLite has one writer, and the UPDATE's
        own condition keeps a run from being claimed twice on either engine.
        """
        oldest = (
            select(runs.c.id)
            .where(runs.c.kind == "task", _QUEUED)
            .order_by(runs.c.created_at, runs.c.id)
            .limit(1)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        claim = (
            update(runs)
            .where(runs.c.id == oldest, _QUEUED)
            .values(status="running", worker_id=self.instance, updated_at=time.time())
            .returning(runs.c.id, runs.c.request)
        )
        async with self._db.connect() as conn:
            row = (await conn.execute(claim)).first()
        if row is None:
            return None
        self._wakeups.wake(row.id)
        return QueuedRun(id=row.id, request=row.request)

    async def cancel_queued(self, run_id: str, final: Event, error: str) -> QueuedRun | None:
        """End the run as canceled with its ``final`` event if it still waits in the queue; None if not.

        The status and the final event are written in one transaction, conditional on the run being
        unclaimed: a worker claiming it at the same moment, or another cancel, finds it gone, so its
        end is written once.
        """
        now = time.time()
        async with self._db.transaction() as conn:
            row = (
                await conn.execute(
                    update(runs)
                    .where(runs.c.id == run_id, _QUEUED)
                    .values(
                        status="canceled", error=error, updated_at=now, next_offset=runs.c.next_offset + 1
                    )
                    .returning(runs.c.next_offset, runs.c.request)
                )
            ).first()
            if row is None:
                return None
            await conn.execute(insert(events).values(**_event_row(run_id, row.next_offset - 1, final, now)))
            if self._db.dialect == "postgresql":
                await conn.execute(select(func.pg_notify(CHANNEL, run_id)))
        self._wakeups.wake(run_id)
        return QueuedRun(id=run_id, request=row.request)

    async def queue_length(self) -> int:
        """Tasks waiting in the queue, of every worker."""
        async with self._db.connect() as conn:
            found = await conn.execute(
                select(func.count()).select_from(runs).where(runs.c.kind == "task", _QUEUED)
            )
            return int(found.scalar_one())

    def on_queued(self, handler: QueueHandler) -> None:
        """Call ``handler()`` whenever a task is queued, by any worker (and after a lost listener)."""
        self._wakeups.on_queued.append(handler)

    async def conversation_active(self, conversation_id: str) -> bool:
        """The conversation has a pending or running task."""
        async with self._db.connect() as conn:
            found = await conn.execute(
                select(runs.c.id)
                .where(
                    runs.c.conversation_id == conversation_id,
                    runs.c.kind == "task",
                    runs.c.status.in_(ACTIVE),
                )
                .limit(1)
            )
            return found.first() is not None

    async def set_status(self, run_id: str, status: RunStatus, error: str | None = None) -> None:
        """Set the run's status; its readers are woken (a waiting poll sees that it ended)."""
        params = {"run_id": run_id, "new_status": status, "new_error": error, "now": time.time()}
        await self._db.fetch(_SET_STATUS[self._db.dialect], params)
        self._wakeups.wake(run_id)

    async def get_run(self, run_id: str, owner: str | None = None) -> RunRecord:
        """The run; :class:`NotFoundError` if it does not exist or belongs to another owner."""
        rows = await self._db.fetch(_GET_RUN, {"run_id": run_id})
        record = dict(zip(_RUN_FIELDS, rows[0], strict=True)) if rows else None
        if record is None or (owner is not None and record["owner"] != owner):
            raise NotFoundError(f"run {run_id} not found")
        return RunRecord.model_validate(record)

    async def list_tasks(
        self,
        owner: str,
        *,
        conversation_id: str | None = None,
        status: RunStatus | None = None,
        updated_after: float | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[RunRecord], int]:
        """The owner's tasks matching every filter given, newest first; and how many match in all."""
        where = [runs.c.owner == owner, runs.c.kind == "task"]
        if conversation_id is not None:
            where.append(runs.c.conversation_id == conversation_id)
        if status is not None:
            where.append(runs.c.status == status)
        if updated_after is not None:
            where.append(runs.c.updated_at > updated_after)
        condition = and_(*where)
        async with self._db.connect() as conn:
            rows = (
                await conn.execute(
                    select(*_RUN_COLUMNS)
                    .where(condition)
                    .order_by(runs.c.created_at.desc(), runs.c.id)
                    .limit(limit)
                    .offset(offset)
                )
            ).all()
            total = (await conn.execute(select(func.count()).select_from(runs).where(condition))).scalar_one()
        return [_run_record(row._mapping) for row in rows], total

    async def append(self, run_id: str, event: Event) -> StoredEvent:
        now = time.time()
        offsets = await self._insert(run_id, [event], now)
        return StoredEvent(offset=offsets[0], timestamp=now, event=event)

    async def append_batch(self, run_id: str, batch: Sequence[Event]) -> None:
        """Append ``batch`` in order, in one statement: the next offsets, all or none."""
        await self._insert(run_id, batch, time.time())

    async def _insert(self, run_id: str, batch: Sequence[Event], now: float) -> list[int]:
        items = [(event.type, event.model_dump_json(exclude={"type"})) for event in batch]
        if self._db.dialect == "sqlite":
            params: dict[str, Any] = {"run_id": run_id, "now": now, "batch": json.dumps(items)}
        else:
            params = {
                "run_id": run_id,
                "count": len(items),
                "channel": CHANNEL,
                "now": now,
                "types": [kind for kind, _ in items],
                "datas": [data for _, data in items],
            }
        offsets = [row[0] for row in await self._db.fetch(_APPEND[self._db.dialect], params)]
        if len(offsets) != len(items):  # PostgreSQL: no run row to lock, nothing was inserted
            raise NotFoundError(f"run {run_id} not found")
        self._wakeups.wake(run_id)
        return sorted(offsets)

    async def events(self, run_id: str, from_offset: int = 0, limit: int | None = None) -> list[StoredEvent]:
        params = {"run_id": run_id, "from_offset": from_offset, "limit": limit}
        rows = await self._db.fetch(_EVENTS if limit is None else _EVENTS_LIMITED, params)
        return [
            StoredEvent(
                offset=seq,
                timestamp=created,
                event=event_adapter.validate_python({"type": kind, **json.loads(data)}),
            )
            for seq, kind, data, created in rows
        ]

    async def fail_interrupted_runs(self, reason: str, *, at_start: bool = True) -> list[str]:
        """End as failed, with a final event, the active runs no live worker holds; their ids.

        Those are the runs of a worker whose lease expired (or whose row is gone), and, at start-up
        (``at_start``), the ones this instance's previous process left and the ones no worker ever
        held (written before leases existed). A worker's own live runs, and other live workers',
        are never touched. The runs are claimed first, in one transaction whose ``FOR UPDATE SKIP
        LOCKED`` lets two workers sweeping at once take disjoint runs; a claimed run is this
        instance's, so if this worker dies before ending it, the next sweep after its lease finds it.
        """
        now = time.time()
        live = select(worker_instances.c.id).where(worker_instances.c.lease_expires_at >= now)
        orphaned: ColumnElement[bool] = runs.c.worker_id.not_in(live)
        if at_start:
            # A queued task waits for any worker: it is no one's to end.
            unheld = and_(runs.c.worker_id.is_(None), ~_QUEUED)
            orphaned = or_(orphaned, unheld, runs.c.worker_id == self.instance)
        elif self.instance is not None:
            orphaned = and_(orphaned, runs.c.worker_id != self.instance)
        async with self._db.transaction() as conn:
            run_ids = list(
                (
                    await conn.execute(
                        select(runs.c.id)
                        .where(runs.c.status.in_(ACTIVE), orphaned)
                        .order_by(runs.c.created_at)
                        .with_for_update(skip_locked=True)
                    )
                ).scalars()
            )
            if run_ids:
                await conn.execute(update(runs).where(runs.c.id.in_(run_ids)).values(worker_id=self.instance))
        for run_id in run_ids:
            await self._end_interrupted(run_id, reason)
        return run_ids

    async def _end_interrupted(self, run_id: str, reason: str) -> None:
        # A worker that died between its run's final event and its status wrote the event already.
        last = await self._db.fetch(_LAST_EVENT_TYPE, {"run_id": run_id})
        if not last or last[0][0] not in FINAL_EVENT_TYPES:
            iterations = await self._max_iteration(run_id)
            await self.append(
                run_id, RunFailed(error=reason, response="", iterations=iterations, usage=Usage())
            )
        await self.set_status(run_id, "failed", reason)

    async def request_cancel(self, run_id: str, reason: str) -> None:
        """Ask the worker running ``run_id`` to cancel it (PostgreSQL: ``NOTIFY``; no answer)."""
        if self._db.dialect == "sqlite":  # one process: the handler is this process's
            self._wakeups.cancel_requested(run_id, reason)
            return
        await self._db.fetch(_NOTIFY_CANCEL, {"payload": cancel_payload(run_id, reason)})

    def on_cancel_request(self, handler: CancelHandler) -> None:
        """Call ``handler(run_id, reason)`` for every cancel request sent by any worker."""
        self._wakeups.on_cancel = handler

    async def _max_iteration(self, run_id: str) -> int:
        iteration: ColumnElement[Any]
        if self._db.dialect == "sqlite":
            iteration = func.json_extract(events.c.data, "$.iteration")
        else:
            iteration = cast(cast(events.c.data, JSONB)["iteration"].astext, Integer)
        async with self._db.connect() as conn:
            found = await conn.execute(
                select(func.coalesce(func.max(iteration), 0)).where(events.c.run_id == run_id)
            )
            return int(found.scalar_one())


def _new_record(
    run_id: str,
    owner: str,
    kind: str,
    status: RunStatus,
    workspace_id: str | None,
    conversation_id: str | None,
) -> RunRecord:
    now = time.time()
    return RunRecord(
        id=run_id,
        owner=owner,
        kind=kind,
        status=status,
        created_at=now,
        updated_at=now,
        workspace_id=workspace_id,
        conversation_id=conversation_id,
    )


def _event_row(run_id: str, seq: int, event: Event, now: float) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "seq": seq,
        "type": event.type,
        "data": event.model_dump_json(exclude={"type"}),
        "created_at": now,
    }


def _run_record(row: RowMapping) -> RunRecord:
    return RunRecord.model_validate(row)
