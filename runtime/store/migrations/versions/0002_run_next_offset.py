"""runs.next_offset: the offset a run's next event gets, so PostgreSQL can assign offsets under a row lock.

Filled from each run's events. On SQLite a trigger keeps it equal to ``MAX(seq) + 1`` (its single
writer assigns offsets from the events themselves, in the statement that inserts them).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("next_offset", sa.Integer, nullable=False, server_default=sa.text("0")))
    op.execute(
        "UPDATE runs SET next_offset = (SELECT COALESCE(MAX(seq) + 1, 0) FROM events WHERE events.run_id = runs.id)"
    )
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            """CREATE TRIGGER events_next_offset AFTER INSERT ON events
               BEGIN UPDATE runs SET next_offset = NEW.seq + 1 WHERE id = NEW.run_id; END"""
        )
