"""Connections to the store's database: an embedded SQLite file, or a PostgreSQL server.

Both go through SQLAlchemy's async engine (aiosqlite, asyncpg). The engines differ in how many
writers they let in, and this module is where that difference is kept:

- SQLite: one connection for the whole process, as before (one writer; WAL lets the file be read
  by backups meanwhile). Its statements run in autocommit mode, each its own transaction, and an
  ``asyncio.Lock`` gives a block of statements the connection to itself, so a transaction is
  never joined by another coroutine's statement.
- PostgreSQL: a pool. A single statement runs on an autocommit connection (no BEGIN/COMMIT round
  trips); a block that must be atomic runs in a transaction, taking the locks it needs.

The statements on the hot paths (appending events, a long-poll's read, a run's status) are
:class:`Prepared`: compiled from their Core statement once per engine and run by :meth:`Database.fetch`
on the driver itself, one round trip, without SQLAlchemy's execution path around it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import aiosqlite
import asyncpg
from sqlalchemy import ClauseElement, event, func, select
from sqlalchemy.engine import URL, make_url
from sqlalchemy.engine.interfaces import Dialect as SQLDialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool
from sqlalchemy.sql.compiler import SQLCompiler

__all__ = ["Database", "Dialect", "Prepared", "database_url"]

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


class Prepared:
    """A statement of a hot path, compiled once per engine, for :meth:`Database.fetch`.

    SQLAlchemy's execution path costs more than the statement on these paths: on SQLite its
    aiosqlite adapter takes four trips to aiosqlite's thread (cursor, execute, fetch, close) where
    ``execute_fetchall`` takes one, and on both engines it looks the statement up by its cache key
    and builds a result per call; the worker's reads were 3-6x slower per call than the
    hand-written store's (bench/README.md). The SQL is still the Core statement's, written once,
    and its parameters are converted as SQLAlchemy would; the rows are the driver's own, which is
    right for the columns these statements read (text, integers, floats: the drivers' own types).
    """

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}

    def compiled(self, dialect: SQLDialect) -> _Compiled:
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            compiled = self._compiled[dialect.name] = _Compiled.of(self.statement, dialect)
        return compiled


@dataclass(frozen=True)
class _Compiled:
    sql: str
    compiled: SQLCompiler
    names: tuple[str, ...]  # of the parameters, in the statement's order
    converters: tuple[tuple[int, Callable[[Any], Any]], ...]  # by position, where one applies

    @classmethod
    def of(cls, statement: ClauseElement, dialect: SQLDialect) -> _Compiled:
        compiled = statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        names = tuple(compiled.positiontup or ())
        converters = []
        for position, name in enumerate(names):
            convert = compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
            if convert is not None:
                converters.append((position, convert))
        return cls(compiled.string, compiled, names, tuple(converters))

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        values = self.compiled.construct_params(params)
        assert values is not None
        args = [values[name] for name in self.names]
        for position, convert in self.converters:
            args[position] = convert(args[position])
        return args


class _Drivers:
    """PostgreSQL: asyncpg connections of their own for :meth:`Database.fetch`, kept open and reused.

    Checking a connection out of SQLAlchemy's pool and back costs about as much as the statement
    (a few trips through the event loop); ``size`` connections are enough, the statements are short.
    """

    def __init__(self, url: URL, size: int) -> None:
        self._dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._idle: list[asyncpg.Connection] = []
        self._slots = asyncio.Semaphore(size)

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection]:
        async with self._slots:
            conn = self._idle.pop() if self._idle else await asyncpg.connect(self._dsn)
            try:
                yield conn
            except BaseException:
                # A failed or canceled statement (asyncpg may still be busy with it): not reused.
                conn.terminate()
                raise
            self._idle.append(conn)

    async def close(self) -> None:
        while self._idle:
            await self._idle.pop().close()


class Database:
    """The engine, and the two ways to run statements on it: :meth:`connect` and :meth:`transaction`."""

    def __init__(self, engine: AsyncEngine, shared: AsyncConnection | None) -> None:
        self.engine = engine
        self.dialect: Dialect = "sqlite" if shared is not None else "postgresql"
        self._shared = shared
        self._lock = asyncio.Lock()
        self._raw: aiosqlite.Connection | None = None
        self._drivers = None if shared is not None else _Drivers(engine.url, size=10)

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
        if self._drivers is not None:
            await self._drivers.close()

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

    async def fetch(self, prepared: Prepared, params: Mapping[str, Any]) -> Sequence[Sequence[Any]]:
        """Run ``prepared`` with ``params`` as one statement of its own, on the driver; its rows.

        SQLite: ``execute_fetchall`` on the shared connection, under the lock. PostgreSQL:
        asyncpg's ``fetch`` on a connection of :class:`_Drivers` (autocommit), prepared once per
        connection by asyncpg's statement cache.
        """
        compiled = prepared.compiled(self.engine.dialect)
        args = compiled.arguments(params)
        if self._shared is not None:
            async with self._lock:
                await self._sqlite_ready()
                assert self._raw is not None
                return list(await self._raw.execute_fetchall(compiled.sql, args))
        assert self._drivers is not None
        async with self._drivers.acquire() as driver:
            rows: Sequence[Sequence[Any]] = await driver.fetch(compiled.sql, *args)
        return rows

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
