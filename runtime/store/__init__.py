"""The store: every table of the worker, on an embedded SQLite file or a PostgreSQL server.

One schema (:mod:`~runtime.store.schema`, SQLAlchemy Core), migrated by Alembic at start-up
(:mod:`~runtime.store.migrate`), and every query, grouped by aggregate, in this package: feature
modules ask the :class:`Store`, they never write SQL. Runs and their events are the store's own
methods; every other aggregate is an attribute (``store.conversations``, ``store.workspaces``,
``store.library``, ``store.capabilities``, ``store.idempotency``, ``store.context_aliases``,
``store.task_origins``, ``store.task_summaries``). How each engine runs statements, and keeps what
must be atomic atomic, is
:mod:`~runtime.store.database`'s part.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from pathlib import Path

from sqlalchemy import literal, select
from sqlalchemy.ext.asyncio import AsyncConnection

from runtime.store.capabilities import CapabilityQueries
from runtime.store.capability_orders import CapabilityOrderQueries
from runtime.store.context_aliases import ContextAliasQueries
from runtime.store.conversations import ConversationQueries, ConversationRecord
from runtime.store.database import Database, Dialect, database_url
from runtime.store.idempotency import IdempotencyQueries
from runtime.store.library import LibraryQueries
from runtime.store.migrate import upgrade
from runtime.store.placements import PlacementQueries
from runtime.store.platform_feed import FeedQueries
from runtime.store.platform_ledger import LedgerQueries
from runtime.store.platform_memory import MemoryQueries
from runtime.store.platform_nodes import NodeQueries
from runtime.store.platform_search import SearchQueries
from runtime.store.platform_tasks import PlatformTaskQueries
from runtime.store.platform_trust import TrustQueries
from runtime.store.runs_events import ACTIVE, QueuedRun, RunEvents, RunRecord, RunStatus, StoredEvent
from runtime.store.task_origins import TaskOriginQueries
from runtime.store.task_summaries import TaskSummaryQueries
from runtime.store.wakeups import Wakeups
from runtime.store.workers import SharedSecrets, WorkerQueries
from runtime.store.workspaces import WorkspaceQueries

__all__ = [
    "ACTIVE",
    "ConversationRecord",
    "Dialect",
    "QueuedRun",
    "RunRecord",
    "RunStatus",
    "Store",
    "StoredEvent",
    "migrate_database",
]


class Store(RunEvents):
    """Runs and events (the inherited methods), and one query object per other aggregate."""

    def __init__(self, db: Database, wakeups: Wakeups, instance: str | None = None) -> None:
        super().__init__(db, wakeups, instance)
        self.dialect: Dialect = db.dialect
        self.conversations = ConversationQueries(db)
        self.workspaces = WorkspaceQueries(db)
        self.library = LibraryQueries(db)
        self.capabilities = CapabilityQueries(db)
        self.capability_orders = CapabilityOrderQueries(db)
        self.idempotency = IdempotencyQueries(db, instance)
        self.context_aliases = ContextAliasQueries(db)
        self.task_origins = TaskOriginQueries(db)
        self.task_summaries = TaskSummaryQueries(db)
        self.nodes = NodeQueries(db)
        self.ledger = LedgerQueries(db)
        self.platform_tasks = PlatformTaskQueries(db)
        self.platform_trust = TrustQueries(db)
        self.platform_memory = MemoryQueries(db)
        self.search = SearchQueries(db)
        self.feed = FeedQueries(db)
        self.placements = PlacementQueries(db)
        self.workers = WorkerQueries(db)
        self.secrets = SharedSecrets(db)

    def transaction(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """One transaction, for the store functions that take a connection (the platform's)."""
        return self._db.transaction()

    async def ping(self) -> None:
        """One round trip to the database (the readiness probe's question); raises if it fails."""
        async with self._db.connect() as conn:
            await conn.execute(select(literal(1)))

    @classmethod
    @asynccontextmanager
    async def open(cls, target: str | Path, instance: str | None = None) -> AsyncIterator[Store]:
        """The store at ``target`` (a SQLite file's path, or a database URL), migrated to this code.

        ``postgresql://...`` is PostgreSQL through asyncpg; ``sqlite:///path`` or a path is SQLite.
        ``instance``: the worker instance whose runs this store creates (their lease holder).
        """
        url = database_url(target)
        async with AsyncExitStack() as stack:
            db = await stack.enter_async_context(Database.open(url))
            await upgrade(db)
            wakeups = Wakeups()
            if db.dialect == "postgresql":
                await stack.enter_async_context(wakeups.listening(url))
            yield cls(db, wakeups, instance)


async def migrate_database(target: str | Path) -> str:
    """Migrate the database at ``target`` without opening a store; returns its revision now."""
    async with Database.open(database_url(target)) as db:
        return await upgrade(db)
