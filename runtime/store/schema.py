"""The store's tables, defined once for both engines (SQLAlchemy Core).

Timestamps are seconds since the epoch as floats (``REAL`` on SQLite, ``DOUBLE PRECISION`` on
PostgreSQL); JSON documents are stored as text, as the first SQLite schema stored them. The
migrations (:mod:`runtime.store.migrations`) create exactly these tables; a test compares the two.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.types import TypeEngine

__all__ = [
    "api_keys",
    "capabilities",
    "capability_orders",
    "context_aliases",
    "conversation_messages",
    "conversations",
    "events",
    "idempotency_keys",
    "ledger_balances",
    "ledger_entries",
    "ledger_holds",
    "ledger_postings",
    "metadata",
    "node_capabilities",
    "nodes",
    "personalizations",
    "platform_memory",
    "platform_memory_participants",
    "platform_memory_tags",
    "platform_tasks",
    "platform_trust_ratings",
    "prompts",
    "runs",
    "shared_secrets",
    "task_capabilities",
    "task_origins",
    "worker_instances",
    "workspace_placements",
    "workspaces",
]

# Tables created WITHOUT ROWID before keep it (sqlite_with_rowid=False): the schema is the same file.
Timestamp: TypeEngine[float] = Double().with_variant(sqlite.REAL(), "sqlite")

metadata = MetaData()

runs = Table(
    "runs",
    metadata,
    # nullable, as SQLite made "id TEXT PRIMARY KEY" of a rowid table (PostgreSQL's keys are never null).
    Column("id", Text, primary_key=True, nullable=True),
    Column("owner", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    Column("error", Text),
    Column("workspace_id", Text),
    Column("conversation_id", Text),
    # The offset the run's next event gets. PostgreSQL advances it in the statement that appends,
    # under the run row's lock, so concurrent writers neither repeat nor skip an offset; on SQLite
    # (one writer) a trigger keeps it equal to MAX(seq) + 1.
    Column("next_offset", Integer, nullable=False, server_default=text("0")),
    # The worker instance running the run while it is active: the run's lease is that worker's
    # (worker_instances), so one heartbeat renews every run a worker holds.
    Column("worker_id", Text),
    # A task's request as JSON (runtime.tasks.queue.QueuedRequest): a pending run without a
    # worker_id is in the queue, and whichever worker claims it rebuilds the task from this.
    Column("request", Text),
    Index("runs_owner", "owner", "created_at"),
    Index("runs_conversation", "conversation_id"),
    Index("runs_worker", "worker_id", "status"),
    Index("runs_queue", "status", "created_at"),
)

worker_instances = Table(
    "worker_instances",
    metadata,
    Column("id", Text, primary_key=True),
    Column("started_at", Timestamp, nullable=False),
    Column("heartbeat_at", Timestamp, nullable=False),
    # Past this time the instance counts as gone: its runs are ended and its containers reaped.
    Column("lease_expires_at", Timestamp, nullable=False),
    sqlite_with_rowid=False,
)

shared_secrets = Table(
    "shared_secrets",
    metadata,
    Column("name", Text, primary_key=True),
    Column("value", LargeBinary, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    sqlite_with_rowid=False,
)

events = Table(
    "events",
    metadata,
    Column("run_id", Text, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("type", Text, nullable=False),
    Column("data", Text, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    sqlite_with_rowid=False,
)

workspaces = Table(
    "workspaces",
    metadata,
    Column("owner", Text, primary_key=True),
    Column("id", Text, primary_key=True),
    Column("created_at", Timestamp, nullable=False),
    # How execute_python runs in the workspace's conversations (runtime.workspaces.records).
    Column("python_mode", Text, nullable=False, server_default=text("'stateful'")),
    sqlite_with_rowid=False,
)

# Which Docker engine holds a workspace's sandbox and files (runtime.workspaces.placement), with
# AGENT_DOCKER_HOSTS; volume NULL: the host directory. lost_*: what went with an engine that went away.
workspace_placements = Table(
    "workspace_placements",
    metadata,
    Column("owner", Text, primary_key=True),
    Column("workspace_id", Text, primary_key=True),
    Column("engine", Text, nullable=False),
    Column("volume", Text),
    Column("placed_at", Timestamp, nullable=False),
    Column("lost_engine", Text),
    Column("lost_volume", Text),
    Column("lost_at", Timestamp),
    Column("lost_reason", Text),
    Index("workspace_placements_engine", "engine"),
    sqlite_with_rowid=False,
)

conversations = Table(
    "conversations",
    metadata,
    Column("id", Text, primary_key=True, nullable=True),
    Column("owner", Text, nullable=False),
    Column("workspace_id", Text, nullable=False),
    Column("title", Text, nullable=False, server_default=text("''")),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    Index("conversations_owner", "owner", "workspace_id", "updated_at"),
)

conversation_messages = Table(
    "conversation_messages",
    metadata,
    Column("conversation_id", Text, ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("message", Text, nullable=False),
    sqlite_with_rowid=False,
)


def _library_table(name: str) -> Table:
    return Table(
        name,
        metadata,
        Column("owner", Text, primary_key=True),
        Column("name", Text, primary_key=True),
        Column("content", Text, nullable=False),
        Column("created_at", Timestamp, nullable=False),
        Column("updated_at", Timestamp, nullable=False),
        sqlite_with_rowid=False,
    )


prompts = _library_table("prompts")
personalizations = _library_table("personalizations")

# One row per (owner, scope, key); the first answer is kept in it (runtime.features.idempotency).
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("owner", Text, primary_key=True),
    Column("scope", Text, primary_key=True),
    Column("key", Text, primary_key=True),
    Column("fingerprint", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("status", Integer),
    Column("content_type", Text),
    Column("body", LargeBinary),
    Column("reason", Text),
    Column("created_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp, nullable=False),
    # The worker instance answering the key's first request while it is in flight (see runs).
    Column("worker_id", Text),
    Index("idempotency_keys_expiry", "expires_at"),
)

# Users' own capabilities (the global ones live in memory).
capabilities = Table(
    "capabilities",
    metadata,
    Column("owner", Text, primary_key=True),
    Column("id", Text, primary_key=True),
    Column("spec", Text, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    # A public capability is listed and orderable by every user; its id is unique among public
    # ones, so an order names it by id alone. price_cents: what each order pays its owner.
    Column("visibility", Text, nullable=False, server_default=text("'private'")),
    Column("price_cents", BigInteger, nullable=False, server_default=text("0")),
    # Copies for the recommendation feed, kept by triggers (migration 0008): the owner's
    # trust_score and the spec's category (what a caller's capabilities match).
    Column("owner_trust", Double, nullable=False, server_default=text("0.5")),
    Column("category", Text, nullable=False, server_default=text("'general'")),
    Index("capabilities_feed", "visibility", "owner_trust", "created_at", "id"),
    Index("capabilities_feed_category", "visibility", "category", "owner_trust", "created_at", "id"),
    Index("capabilities_public_newest", "visibility", "created_at", "owner", "id"),
    Index(
        "capabilities_public_id",
        "id",
        unique=True,
        sqlite_where=text("visibility = 'public'"),
        postgresql_where=text("visibility = 'public'"),
    ),
    sqlite_with_rowid=False,
)

# Orders of priced capabilities (runtime.platform.orders): the id is the order's task's id and
# the id of the ledger hold that keeps its price in escrow until the task ends.
capability_orders = Table(
    "capability_orders",
    metadata,
    Column("id", Text, primary_key=True),
    Column("buyer", Text, nullable=False),
    Column("seller", Text, nullable=False),
    Column("capability_id", Text, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("status", Text, nullable=False),  # pending | running | completed | failed | canceled
    Column("demand_id", Text),
    Column("context_id", Text),
    Column("booked_hours", Double),
    Column("reason", Text),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    Index("capability_orders_buyer", "buyer", "created_at", "id"),
    Index("capability_orders_seller", "seller", "created_at", "id"),
    Index("capability_orders_status", "status", "created_at"),
)

# How a task was started (surface, capability), when it matters.
task_origins = Table(
    "task_origins",
    metadata,
    Column("task_id", Text, primary_key=True),
    Column("surface", Text, nullable=False),
    Column("capability_id", Text),
    sqlite_with_rowid=False,
)

# A2A contextIds a client chose, each naming one conversation.
context_aliases = Table(
    "context_aliases",
    metadata,
    Column("owner", Text, primary_key=True),
    Column("context_id", Text, primary_key=True),
    Column(
        "conversation_id",
        Text,
        ForeignKey("conversations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Index("context_aliases_conversation", "conversation_id"),
    sqlite_with_rowid=False,
)

# The task marketplace of the /v1 platform (runtime.platform.marketplace). Money is in cents
# (hundredths of a credit); the budget sits in escrow as the ledger hold whose id is the task's.
platform_tasks = Table(
    "platform_tasks",
    metadata,
    Column("id", Text, primary_key=True),
    Column("publisher", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("budget", BigInteger, nullable=False),
    # open → progress → done; open → canceled (publisher, or the deadline); progress → failed (a
    # house agent's run that did not succeed). Every change is a conditional UPDATE: one winner.
    Column("status", Text, nullable=False),
    Column("assignee", Text),
    Column("acceptor", Text),
    Column("deadline", Timestamp),
    Column("deliverables", Text),  # JSON
    Column("quality_notes", Text),
    Column("run_id", Text),  # a house agent's run on the task API
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    # A copy of the publisher's trust_score, kept by triggers (migration 0008), so the
    # recommendation feed reads open tasks in its ranking order from platform_tasks_feed.
    Column("owner_trust", Double, nullable=False, server_default=text("0.5")),
    Index("platform_tasks_feed", "status", "owner_trust", "created_at", "id"),
    Index("platform_tasks_status", "status", "created_at"),
    Index("platform_tasks_publisher", "publisher"),
    Index("platform_tasks_acceptor", "acceptor"),
    Index("platform_tasks_run", "run_id"),  # the worker that ends a house agent's run settles its task
    # The expiry sweep reads only open tasks with a deadline, in deadline order.
    Index(
        "platform_tasks_open_deadline",
        "deadline",
        sqlite_where=text("status = 'open' AND deadline IS NOT NULL"),
        postgresql_where=text("status = 'open' AND deadline IS NOT NULL"),
    ),
)

task_capabilities = Table(
    "task_capabilities",
    metadata,
    Column("task_id", Text, ForeignKey("platform_tasks.id", ondelete="CASCADE"), primary_key=True),
    Column("capability", Text, primary_key=True),
    # Copies of the task's created_at (never changes) and status (changed with the task's, in its
    # transaction), so a list filtered by capability walks one index in page order and counts
    # from it alone, without reading a task it does not show.
    Column("created_at", Timestamp, nullable=False),
    Column("status", Text, nullable=False),
    Index("task_capabilities_newest", "capability", "created_at", "task_id"),
    Column("owner_trust", Double, nullable=False, server_default=text("0.5")),  # the feed's, as above
    Index("task_capabilities_status_newest", "capability", "status", "created_at", "task_id"),
    Index("task_capabilities_feed", "capability", "status", "owner_trust", "created_at", "task_id"),
    sqlite_with_rowid=False,
)


# The agent platform's nodes (runtime.platform): registered users, operator users, house agents.
# completed_tasks, trust_score and ratings_count are kept up to date by the transactions that change
# them (a task completed, a rating), so the registry filters on indexed columns.
TRUST_PRIOR = 0.5
"""The trust score of a node nobody has rated yet (the prior mean of the trust formula)."""

nodes = Table(
    "nodes",
    metadata,
    Column("id", Text, primary_key=True),
    Column("kind", Text, nullable=False),  # operator | registered | house
    Column("nickname", Text, nullable=False),
    Column("email", Text),
    Column("password_hash", Text),
    Column("created_at", Timestamp, nullable=False),
    Column("completed_tasks", Integer, nullable=False, server_default=text("0")),
    Column("trust_score", Double, nullable=False, server_default=text(str(TRUST_PRIOR))),
    Column("ratings_count", Integer, nullable=False, server_default=text("0")),
    Index("nodes_trust", "trust_score"),
)

node_capabilities = Table(
    "node_capabilities",
    metadata,
    Column("node_id", Text, ForeignKey("nodes.id", ondelete="CASCADE"), primary_key=True),
    Column("capability", Text, primary_key=True),
    # A copy of the node's trust_score (set with it, in the rating's transaction), so the registry
    # filtered by capability walks one index in its order (most trusted first, then by id) and
    # counts from it alone.
    Column("trust_score", Double, nullable=False),
    sqlite_with_rowid=False,
)
Index(
    "node_capabilities_trust",
    node_capabilities.c.capability,
    node_capabilities.c.trust_score.desc(),
    node_capabilities.c.node_id,
)

# Registered nodes' API keys, only as SHA-256 hex digests.
api_keys = Table(
    "api_keys",
    metadata,
    Column("key_hash", Text, primary_key=True),
    Column("node_id", Text, ForeignKey("nodes.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Index("api_keys_node", "node_id"),
    sqlite_with_rowid=False,
)

# The double-entry ledger (runtime.store.platform_ledger). Amounts are hundredths of a credit.
LedgerId: TypeEngine[int] = BigInteger().with_variant(Integer(), "sqlite")  # SQLite: the rowid

ledger_entries = Table(
    "ledger_entries",
    metadata,
    Column("id", LedgerId, primary_key=True, autoincrement=True),
    Column("kind", Text, nullable=False),
    Column("task_id", Text),
    Column("memo", Text, nullable=False, server_default=text("''")),
    Column("created_at", Timestamp, nullable=False),
)

# One row per account an entry moves; balance_after is the account's balance once the entry is in.
ledger_postings = Table(
    "ledger_postings",
    metadata,
    Column("entry_id", LedgerId, ForeignKey("ledger_entries.id"), primary_key=True, autoincrement=False),
    Column("account", Text, primary_key=True),
    Column("amount", BigInteger, nullable=False),
    Column("balance_after", BigInteger, nullable=False),
    Index("ledger_postings_account", "account", "entry_id"),
    sqlite_with_rowid=False,
)

ledger_balances = Table(
    "ledger_balances",
    metadata,
    Column("account", Text, primary_key=True),
    Column("balance", BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

# Escrow holds, keyed by the task they pay for; state open → released | refunded, once.
ledger_holds = Table(
    "ledger_holds",
    metadata,
    Column("id", Text, primary_key=True),
    Column("payer", Text, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("state", Text, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("settled_at", Timestamp),
    sqlite_with_rowid=False,
)

# Trust ratings of the /v1 platform (runtime.platform.trust): one per done task (its key), by the
# task's publisher for its acceptor. The node's score is kept in nodes.trust_score by the
# transaction that adds a rating, so the registry filters on it through an index.
platform_trust_ratings = Table(
    "platform_trust_ratings",
    metadata,
    Column("task_id", Text, ForeignKey("platform_tasks.id", ondelete="CASCADE"), primary_key=True),
    Column("agent_id", Text, nullable=False),
    Column("rater", Text, nullable=False),
    Column("quality_score", Double, nullable=False),
    Column("on_time", Boolean, nullable=False),
    Column("comment", Text, nullable=False, server_default=text("''")),
    # The rating's evidence in [0, 1] (runtime.platform.trust): summed for the node's score.
    Column("evidence", Double, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Index("platform_trust_ratings_agent", "agent_id", "created_at"),
)

# Shared memory of the /v1 platform (runtime.platform.memory): an entry is visible to its author and
# its participants; participants and tags are rows so both filters are index lookups.
platform_memory = Table(
    "platform_memory",
    metadata,
    Column("id", Text, primary_key=True),
    Column("author", Text, nullable=False),
    Column("content", Text, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Index("platform_memory_author", "author", "created_at"),
)

platform_memory_participants = Table(
    "platform_memory_participants",
    metadata,
    Column("entry_id", Text, ForeignKey("platform_memory.id", ondelete="CASCADE"), primary_key=True),
    Column("node_id", Text, primary_key=True),
    Index("platform_memory_participants_node", "node_id", "entry_id"),
    sqlite_with_rowid=False,
)

platform_memory_tags = Table(
    "platform_memory_tags",
    metadata,
    Column("entry_id", Text, ForeignKey("platform_memory.id", ondelete="CASCADE"), primary_key=True),
    Column("tag", Text, primary_key=True),
    Index("platform_memory_tags_tag", "tag", "entry_id"),
    sqlite_with_rowid=False,
)
