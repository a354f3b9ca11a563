"""A durable queue of tasks: each task's request is stored with its run.

runs.request: the task's request as JSON (runtime.tasks.queue.QueuedRequest: owner, workspace,
conversation, message, model key, loop configuration), from which any worker rebuilds the task. A
task past its worker's running cap is stored pending with no worker_id: any worker with a free
slot claims the oldest such run (runs_queue) and runs it. Runs written before this revision have
no request: a pending one of those is ended as interrupted at start-up, as before.
platform_tasks_run: the worker that ends a house agent's run (any worker, once queued) finds the
marketplace task it settles by the run's id.
Self-contained, as every revision is: later changes to the schema module do not change it.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("request", sa.Text))
    op.create_index("runs_queue", "runs", ["status", "created_at"])
    op.create_index("platform_tasks_run", "platform_tasks", ["run_id"])


def downgrade() -> None:
    op.drop_index("platform_tasks_run", table_name="platform_tasks")
    op.drop_index("runs_queue", table_name="runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("request")
