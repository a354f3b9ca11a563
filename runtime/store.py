"""The embedded store: runs and their event logs in one SQLite file (WAL).

The connection is in autocommit mode: each statement is a transaction of its own, so a write is
stored when its statement returns, and a write that must be atomic is one statement (a batch of
events is one INSERT ... SELECT). How a run's events are batched, and when its loop waits for
them, is :class:`runtime.engine.runs.StoreSink`'s part. Every query runs as one ``execute_fetchall``
step, so no statement is left open between two awaits on the shared connection. Offsets are
per run, from 0, assigned inside the INSERT so they are never reused or renumbered. The schema is
versioned with ``PRAGMA user_version``; each migration is a list of statements applied once.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal

import aiosqlite
from pydantic import BaseModel

from runtime.engine.events import Event, RunFailed, Usage, event_adapter
from runtime.errors import NotFoundError

__all__ = ["RunRecord", "RunStatus", "Store", "StoredEvent"]

RunStatus = Literal["pending", "running", "completed", "failed", "canceled"]

_MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE runs (
            id TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            kind TEXT NOT NULL,
            status TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            error TEXT
        )""",
        "CREATE INDEX runs_owner ON runs (owner, created_at)",
        """CREATE TABLE events (
            run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            type TEXT NOT NULL,
            data TEXT NOT NULL,
            created_at REAL NOT NULL,
            PRIMARY KEY (run_id, seq)
        ) WITHOUT ROWID""",
    ],
    [
        """CREATE TABLE workspaces (
            owner TEXT NOT NULL,
            id TEXT NOT NULL,
            created_at REAL NOT NULL,
            PRIMARY KEY (owner, id)
        ) WITHOUT ROWID""",
        """CREATE TABLE conversations (
            id TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            workspace_id TEXT NOT NULL,
            title TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        )""",
        "CREATE INDEX conversations_owner ON conversations (owner, workspace_id, updated_at)",
        """CREATE TABLE conversation_messages (
            conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            message TEXT NOT NULL,
            PRIMARY KEY (conversation_id, seq)
        ) WITHOUT ROWID""",
        "ALTER TABLE runs ADD COLUMN workspace_id TEXT",
        "ALTER TABLE runs ADD COLUMN conversation_id TEXT",
        "CREATE INDEX runs_conversation ON runs (conversation_id)",
        """CREATE TABLE prompts (
            owner TEXT NOT NULL,
            name TEXT NOT NULL,
            content TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            PRIMARY KEY (owner, name)
        ) WITHOUT ROWID""",
        """CREATE TABLE personalizations (
            owner TEXT NOT NULL,
            name TEXT NOT NULL,
            content TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            PRIMARY KEY (owner, name)
        ) WITHOUT ROWID""",
    ],
    [
        # runtime.features.idempotency: one row per (owner, scope, key); the first answer is kept in it.
        """CREATE TABLE idempotency_keys (
            owner TEXT NOT NULL,
            scope TEXT NOT NULL,
            key TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            state TEXT NOT NULL,
            status INTEGER,
            content_type TEXT,
            body BLOB,
            reason TEXT,
            created_at REAL NOT NULL,
            expires_at REAL NOT NULL,
            PRIMARY KEY (owner, scope, key)
        )""",
        "CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at)",
    ],
    [
        # runtime.features.capabilities: users' own capabilities (the global ones live in memory).
        """CREATE TABLE capabilities (
            owner TEXT NOT NULL,
            id TEXT NOT NULL,
            spec TEXT NOT NULL,
            created_at REAL NOT NULL,
            PRIMARY KEY (owner, id)
        ) WITHOUT ROWID""",
        # runtime.features.capability_runs: how a task was started (surface, capability), when it matters.
        """CREATE TABLE task_origins (
            task_id TEXT PRIMARY KEY,
            surface TEXT NOT NULL,
            capability_id TEXT
        ) WITHOUT ROWID""",
        # runtime.features.context_aliases: A2A contextIds a client chose, each naming one conversation.
        """CREATE TABLE context_aliases (
            owner TEXT NOT NULL,
            context_id TEXT NOT NULL,
            conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
            PRIMARY KEY (owner, context_id)
        ) WITHOUT ROWID""",
        "CREATE INDEX context_aliases_conversation ON context_aliases (conversation_id)",
    ],
    [
        # runtime.workspaces.records: how execute_python runs in the workspace's conversations.
        "ALTER TABLE workspaces ADD COLUMN python_mode TEXT NOT NULL DEFAULT 'stateful'",
    ],
]


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


class Store:
    """All reads and writes of runs and events; one connection, owned by :meth:`open`."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    @property
    def connection(self) -> aiosqlite.Connection:
        """The one connection, for the repositories of other tables (workspaces, prompts, ...)."""
        return self._conn

    @classmethod
    @asynccontextmanager
    async def open(cls, path: Path) -> AsyncIterator[Store]:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit: every statement is its own transaction, one trip to aiosqlite's thread. A
        # separate COMMIT was a second trip, ~0.3 ms each on a small VM, on every write.
        conn = await aiosqlite.connect(path, isolation_level=None)
        try:
            # WAL: readers never block the writer; NORMAL sync is durable against a process crash.
            await conn.execute("PRAGMA journal_mode=WAL")
            await conn.execute("PRAGMA synchronous=NORMAL")
            await conn.execute("PRAGMA foreign_keys=ON")
            await conn.execute("PRAGMA busy_timeout=5000")
            await _migrate(conn)
            yield cls(conn)
        finally:
            await conn.close()

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
        now = time.time()
        await self._conn.execute(
            "INSERT INTO runs (id, owner, kind, status, created_at, updated_at, workspace_id, conversation_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (run_id, owner, kind, status, now, now, workspace_id, conversation_id),
        )
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

    async def set_status(self, run_id: str, status: RunStatus, error: str | None = None) -> None:
        await self._conn.execute(
            "UPDATE runs SET status = ?, error = ?, updated_at = ? WHERE id = ?",
            (status, error, time.time(), run_id),
        )

    async def get_run(self, run_id: str, owner: str | None = None) -> RunRecord:
        """The run; :class:`NotFoundError` if it does not exist or belongs to another owner."""
        rows = await self._conn.execute_fetchall(f"{_SELECT_RUN} WHERE id = ?", (run_id,))
        row = next(iter(rows), None)
        if row is None or (owner is not None and row[1] != owner):
            raise NotFoundError(f"run {run_id} not found")
        return _run_record(row)

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
        where = "owner = ? AND kind = 'task'"
        params: list[object] = [owner]
        for clause, value in (
            ("conversation_id = ?", conversation_id),
            ("status = ?", status),
            ("updated_at > ?", updated_after),
        ):
            if value is not None:
                where += f" AND {clause}"
                params.append(value)
        rows = await self._conn.execute_fetchall(
            f"{_SELECT_RUN} WHERE {where} ORDER BY created_at DESC, id LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
        counted = await self._conn.execute_fetchall(f"SELECT COUNT(*) FROM runs WHERE {where}", params)
        total = next(iter(counted))[0]
        return [_run_record(row) for row in rows], total

    async def append(self, run_id: str, event: Event) -> StoredEvent:
        now = time.time()
        rows = await self._conn.execute_fetchall(
            f"{_INSERT_EVENTS} RETURNING seq", (run_id, now, run_id, _batch([event]))
        )
        row = next(iter(rows), None)
        assert row is not None
        return StoredEvent(offset=row[0], timestamp=now, event=event)

    async def append_batch(self, run_id: str, events: Sequence[Event]) -> None:
        """Append ``events`` in order, in one statement: the next offsets, all or none."""
        await self._conn.execute_fetchall(_INSERT_EVENTS, (run_id, time.time(), run_id, _batch(events)))

    async def events(self, run_id: str, from_offset: int = 0, limit: int | None = None) -> list[StoredEvent]:
        rows = await self._conn.execute_fetchall(
            "SELECT seq, type, data, created_at FROM events WHERE run_id = ? AND seq >= ? ORDER BY seq LIMIT ?",
            (run_id, from_offset, -1 if limit is None else limit),
        )
        return [
            StoredEvent(
                offset=seq,
                timestamp=created,
                event=event_adapter.validate_python({"type": kind, **json.loads(data)}),
            )
            for seq, kind, data, created in rows
        ]

    async def fail_interrupted_runs(self, reason: str) -> list[str]:
        """Mark every run left ``pending``/``running`` by a previous process as failed, with an event."""
        rows = await self._conn.execute_fetchall("SELECT id FROM runs WHERE status IN ('pending', 'running')")
        run_ids = [row[0] for row in rows]
        for run_id in run_ids:
            iterations = await self._max_iteration(run_id)
            await self.append(
                run_id, RunFailed(error=reason, response="", iterations=iterations, usage=Usage())
            )
            await self.set_status(run_id, "failed", reason)
        return run_ids

    async def _max_iteration(self, run_id: str) -> int:
        rows = await self._conn.execute_fetchall(
            "SELECT COALESCE(MAX(json_extract(data, '$.iteration')), 0) FROM events WHERE run_id = ?",
            (run_id,),
        )
        row = next(iter(rows), None)
        return int(row[0]) if row else 0


_SELECT_RUN = (
    "SELECT id, owner, kind, status, created_at, updated_at, error, workspace_id, conversation_id FROM runs"
)


# SQLite runs the SELECT to completion before inserting (it reads the table it writes), so
# ``next`` is the run's next offset once, and the batch's items follow it in order.
_INSERT_EVENTS = """INSERT INTO events (run_id, seq, type, data, created_at)
    SELECT ?, base.next + batch.key, batch.value ->> 0, batch.value ->> 1, ?
    FROM (SELECT COALESCE(MAX(seq) + 1, 0) AS next FROM events WHERE run_id = ?) AS base,
         json_each(?) AS batch
    ORDER BY batch.key"""


def _batch(events: Sequence[Event]) -> str:
    """The events as :data:`_INSERT_EVENTS` reads them: a JSON array of ``[type, data]``."""
    return json.dumps([[event.type, event.model_dump_json(exclude={"type"})] for event in events])


def _run_record(row: sqlite3.Row) -> RunRecord:
    return RunRecord(
        id=row[0],
        owner=row[1],
        kind=row[2],
        status=row[3],
        created_at=row[4],
        updated_at=row[5],
        error=row[6],
        workspace_id=row[7],
        conversation_id=row[8],
    )


async def _migrate(conn: aiosqlite.Connection) -> None:
    rows = await conn.execute_fetchall("PRAGMA user_version")
    row = next(iter(rows), None)
    version = row[0] if row else 0
    for number, statements in enumerate(_MIGRATIONS[version:], start=version + 1):
        await conn.execute("BEGIN")  # a migration is applied whole or not at all
        for statement in statements:
            await conn.execute(statement)
        await conn.execute(f"PRAGMA user_version = {number}")
        await conn.execute("COMMIT")
