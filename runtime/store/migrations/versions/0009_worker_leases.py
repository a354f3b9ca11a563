"""Many workers on one database: worker instances with their lease, the lease holder of each run.

worker_instances: one row per worker instance (AGENT_INSTANCE_ID), its heartbeat and the time its
lease expires; a worker renews it every few seconds. runs.worker_id names the instance that runs an
active run: the run's lease is its worker's (one statement renews every run a worker holds), so a
run whose worker's lease has expired, or whose worker has no row, is another worker's to end.
idempotency_keys.worker_id likewise names the worker answering a key's first request while it is
in flight, so a worker's start-up closes only the keys that worker, or a dead one, left in flight.
shared_secrets: secrets every worker of the database must share (the feed cursor's key), created
once by whichever worker needs it first.
Self-contained, as every revision is: later changes to the schema module do not change it.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import sqlite

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_TIME: sa.types.TypeEngine[float] = sa.Double().with_variant(sqlite.REAL(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "worker_instances",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("started_at", _TIME, nullable=False),
        sa.Column("heartbeat_at", _TIME, nullable=False),
        sa.Column("lease_expires_at", _TIME, nullable=False),
        sqlite_with_rowid=False,
    )
    op.add_column("runs", sa.Column("worker_id", sa.Text))
    op.create_index("runs_worker", "runs", ["worker_id", "status"])
    op.add_column("idempotency_keys", sa.Column("worker_id", sa.Text))
    op.create_table(
        "shared_secrets",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("value", sa.LargeBinary, nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("shared_secrets")
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.drop_column("worker_id")
    op.drop_index("runs_worker", table_name="runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("worker_id")
    op.drop_table("worker_instances")
