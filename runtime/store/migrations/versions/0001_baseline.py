"""Baseline: the schema the store's own migrations had reached (``PRAGMA user_version`` 5).

A SQLite file made before Alembic is stamped at this revision once its own steps are complete
(:mod:`runtime.store.legacy`); a new database is created by it. Self-contained on purpose: later
changes to :mod:`runtime.store.schema` must not change what this revision creates.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import sqlite

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TIME: sa.types.TypeEngine[float] = sa.Double().with_variant(sqlite.REAL(), "sqlite")
_NO_ROWID = {"sqlite_with_rowid": False}


def upgrade() -> None:
    op.create_table(
        "runs",
        # nullable: what SQLite made of "id TEXT PRIMARY KEY" in a rowid table (PostgreSQL's keys are never null).
        sa.Column("id", sa.Text, primary_key=True, nullable=True),
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("workspace_id", sa.Text),
        sa.Column("conversation_id", sa.Text),
    )
    op.create_index("runs_owner", "runs", ["owner", "created_at"])
    op.create_index("runs_conversation", "runs", ["conversation_id"])
    op.create_table(
        "events",
        sa.Column("run_id", sa.Text, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("run_id", "seq"),
        **_NO_ROWID,
    )
    op.create_table(
        "workspaces",
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("id", sa.Text, nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("python_mode", sa.Text, nullable=False, server_default=sa.text("'stateful'")),
        sa.PrimaryKeyConstraint("owner", "id"),
        **_NO_ROWID,
    )
    op.create_table(
        "conversations",
        sa.Column("id", sa.Text, primary_key=True, nullable=True),
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("workspace_id", sa.Text, nullable=False),
        sa.Column("title", sa.Text, nullable=False, server_default=sa.text("''")),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
    )
    op.create_index("conversations_owner", "conversations", ["owner", "workspace_id", "updated_at"])
    op.create_table(
        "conversation_messages",
        sa.Column(
            "conversation_id", sa.Text, sa.ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("conversation_id", "seq"),
        **_NO_ROWID,
    )
    for table in ("prompts", "personalizations"):
        op.create_table(
            table,
            sa.Column("owner", sa.Text, nullable=False),
            sa.Column("name", sa.Text, nullable=False),
            sa.Column("content", sa.Text, nullable=False),
            sa.Column("created_at", _TIME, nullable=False),
            sa.Column("updated_at", _TIME, nullable=False),
            sa.PrimaryKeyConstraint("owner", "name"),
            **_NO_ROWID,
        )
    op.create_table(
        "idempotency_keys",
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("fingerprint", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("status", sa.Integer),
        sa.Column("content_type", sa.Text),
        sa.Column("body", sa.LargeBinary),
        sa.Column("reason", sa.Text),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("expires_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("owner", "scope", "key"),
    )
    op.create_index("idempotency_keys_expiry", "idempotency_keys", ["expires_at"])
    op.create_table(
        "capabilities",
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("id", sa.Text, nullable=False),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("owner", "id"),
        **_NO_ROWID,
    )
    op.create_table(
        "task_origins",
        sa.Column("task_id", sa.Text, primary_key=True),
        sa.Column("surface", sa.Text, nullable=False),
        sa.Column("capability_id", sa.Text),
        **_NO_ROWID,
    )
    op.create_table(
        "context_aliases",
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("context_id", sa.Text, nullable=False),
        sa.Column(
            "conversation_id", sa.Text, sa.ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False
        ),
        sa.PrimaryKeyConstraint("owner", "context_id"),
        **_NO_ROWID,
    )
    op.create_index("context_aliases_conversation", "context_aliases", ["conversation_id"])
