"""Sandboxes on several Docker engines: which engine holds each workspace's sandbox and files.

workspace_placements: one row per placed workspace, naming its engine (an AGENT_DOCKER_HOSTS
name) and, on an engine whose workspaces are Docker volumes, the volume holding its files (NULL:
the host directory under the data directory). When its engine went away the workspace is placed
anew and the lost_* columns keep what was lost (engine, volume, when, why) for the API to show.
Self-contained, as every revision is: later changes to the schema module do not change it.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import sqlite

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_TIME: sa.types.TypeEngine[float] = sa.Double().with_variant(sqlite.REAL(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "workspace_placements",
        sa.Column("owner", sa.Text, primary_key=True),
        sa.Column("workspace_id", sa.Text, primary_key=True),
        sa.Column("engine", sa.Text, nullable=False),
        sa.Column("volume", sa.Text),
        sa.Column("placed_at", _TIME, nullable=False),
        sa.Column("lost_engine", sa.Text),
        sa.Column("lost_volume", sa.Text),
        sa.Column("lost_at", _TIME),
        sa.Column("lost_reason", sa.Text),
        sqlite_with_rowid=False,
    )
    op.create_index("workspace_placements_engine", "workspace_placements", ["engine"])


def downgrade() -> None:
    op.drop_index("workspace_placements_engine", table_name="workspace_placements")
    op.drop_table("workspace_placements")
