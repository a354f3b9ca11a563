"""Connections to the store's database: an embedded SQLite file, or a PostgreSQL server.

Both go through SQLAlchemy's async engine (aiosqlite, asyncpg). The engines differ in how many
writers they let in, and this module is where that difference is kept:

- SQLite: one connection for the whole process, as before (one writer; WAL lets the file be read
  by backups meanwhile). Its statements run in autocommit mode, each its own transaction, and an
  ``asyncio.Lock`` gives a block of statements the connection to itself, so a transaction is
  never joined by another coroutine's statement.
- PostgreSQL: a pool. A single statement runs on an autocommit connection (no BEGIN/COMMIT round
  trips); a block that must be atomic runs in a transaction, taking the locks it needs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

import aiosqlite
from sqlalchemy import event, func, select
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

__all__ = ["Database", "Dialect", "database_url"]

Dialect = Literal["sqlite", "postgresql"]


def database_url(target: str | Path) -> URL:
    """The SQLAlchemy URL of a SQLite file path or a database URL (``postgresql://`` → asyncpg)."""
    if isinstance(target, Path):
        return URL.create("sqlite+aiosqlite", database=str(target))
    url = make_url(target)
    if url.get_backend_name() == "postgresql":
        return url.set(drivername="postgresql+asyncpg")
    if url.get_backend_name() == "sqlite":
        return url.set(drivername="sqlite+aiosqlite")
    raise ValueError(
        f"unsupported database URL {url.render_as_string()!r}: use postgresql://... or sqlite:///..."
    )


class Database:
    """The engine, and the two ways to run statements on it: :meth:`connect` and :meth:`transaction`."""

    def __init__(self, engine: AsyncEngine, shared: AsyncConnection | None) -> None:
        self.engine = engine
        self.dialect: Dialect = "sqlite" if shared is not None else "postgresql"
        self._shared = shared
        self._lock = asyncio.Lock()
        self._raw: aiosqlite.Connection | None = None

    @classmethod
    @asynccontextmanager
    async def open(cls, url: URL) -> AsyncIterator[Database]:
        """The engine of ``url``; closed, with every connection, when the block ends."""
        if url.get_backend_name() == "sqlite":
            if url.database:
                Path(url.database).parent.mkdir(parents=True, exist_ok=True)
            engine = create_async_engine(url, poolclass=NullPool)
            _configure_sqlite(engine)
        else:
            engine = create_async_engine(url, pool_size=10, max_overflow=20)
        try:
            database = cls(engine, None) if engine.dialect.name != "sqlite" else await cls._sqlite(engine)
            try:
                yield database
            finally:
                await database._close()
        finally:
            await engine.dispose()

    @classmethod
    async def _sqlite(cls, engine: AsyncEngine) -> Database:
        conn = await engine.connect()
        shared = await conn.execution_options(isolation_level="AUTOCOMMIT")
        database = cls(engine, shared)
        await database._attach_driver()
        return database

    async def _attach_driver(self) -> None:
        assert self._shared is not None
        raw = await self._shared.get_raw_connection()
        self._raw = raw.driver_connection

    async def _sqlite_ready(self) -> AsyncConnection:
        """The shared connection, replaced first if a canceled statement left it invalidated.

        SQLAlchemy invalidates a connection whose statement was interrupted by a cancellation (a
        client that went away): its state is unknown, so it is closed, and every later statement
        would fail until it is rolled back, which opens a new one. Called with the lock held.
        """
        assert self._shared is not None
        if self._shared.invalidated:
            await self._shared.rollback()
            await self._attach_driver()
        return self._shared

    async def _close(self) -> None:
        if self._shared is not None:
            await self._shared.close()

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        """A connection whose every statement is a transaction of its own."""
        if self._shared is not None:
            async with self._lock:
                yield await self._sqlite_ready()
            return
        async with self.engine.connect() as conn:
            yield await conn.execution_options(isolation_level="AUTOCOMMIT")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A connection in one transaction: committed when the block ends, rolled back if it raises.

        On SQLite the transaction starts with ``BEGIN IMMEDIATE``: it holds the write lock from the
        start, so what it read cannot change before it writes.
        """
        if self._shared is None:
            async with self.engine.begin() as conn:
                yield conn
            return
        async with self._lock:
            shared = await self._sqlite_ready()
            await shared.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                yield shared
            except BaseException:
                if not shared.invalidated:  # an invalidated connection was closed: nothing to undo
                    await asyncio.shield(shared.exec_driver_sql("ROLLBACK"))
                raise
            await shared.exec_driver_sql("COMMIT")

    @asynccontextmanager
    async def sqlite_driver(self) -> AsyncIterator[aiosqlite.Connection]:
        """SQLite's aiosqlite connection, for the event log's hot path.

        SQLAlchemy's aiosqlite adapter takes three trips to aiosqlite's thread per statement
        (cursor, execute, fetch) where ``execute_fetchall`` takes one: appending an event through
        it halved the events stored per second.
        """
        async with self._lock:
            await self._sqlite_ready()
            assert self._raw is not None, "sqlite_driver is SQLite's"
            yield self._raw

    async def lock_owner(self, conn: AsyncConnection, scope: str, owner: str) -> None:
        """In a transaction: wait for the other transactions on the same ``scope`` and ``owner``.

        PostgreSQL takes a transaction-scoped advisory lock; SQLite's ``BEGIN IMMEDIATE`` has
        serialized every writer already.
        """
        if self.dialect == "postgresql":
            await conn.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"{scope}:{owner}"))))


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The driver's own transaction handling off: SQLAlchemy (and Database.transaction) say
        # when a transaction begins, which is what Alembic's transactional DDL needs.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # WAL: readers never block the writer; NORMAL sync is durable against a process crash.
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=5000"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
            conn.exec_driver_sql("BEGIN")
