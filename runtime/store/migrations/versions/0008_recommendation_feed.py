"""The recommendation feed walks indexes in its ranking order: sort keys copied into the items.

The feed ranks public capabilities and open tasks by their owner's trust, then recency. The
owner's trust lives on ``nodes``; each item gets a copy (``owner_trust``: capabilities, tasks and
their capability rows), and capabilities a copy of their spec's category (the key a caller's
capabilities match), so a page is read in order from one index per stream. Triggers keep the
copies: an inserted item takes its owner's current trust (its category from its spec), and a
node's trust_score change is written to its items in the same statement's transaction, so no
writer of these tables has to know about the feed. Existing rows are filled here.
Self-contained, as every revision is: later changes to the schema module do not change it.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_PRIOR = sa.text("0.5")  # the trust of a node nobody has rated (and of an owner with no node)

_OWNER_OF = {
    "platform_tasks": "publisher",
    "capabilities": "owner",
}

_SQLITE_TRIGGERS = [
    """CREATE TRIGGER platform_tasks_owner_trust AFTER INSERT ON platform_tasks BEGIN
         UPDATE platform_tasks SET owner_trust =
           COALESCE((SELECT trust_score FROM nodes WHERE id = NEW.publisher), 0.5)
         WHERE id = NEW.id;
       END""",
    """CREATE TRIGGER task_capabilities_owner_trust AFTER INSERT ON task_capabilities BEGIN
         UPDATE task_capabilities SET owner_trust =
           (SELECT owner_trust FROM platform_tasks WHERE id = NEW.task_id)
         WHERE task_id = NEW.task_id AND capability = NEW.capability;
       END""",
    """CREATE TRIGGER capabilities_feed_keys AFTER INSERT ON capabilities BEGIN
         UPDATE capabilities SET
           owner_trust = COALESCE((SELECT trust_score FROM nodes WHERE id = NEW.owner), 0.5),
           category = COALESCE(json_extract(NEW.spec, '$.category'), 'general')
         WHERE owner = NEW.owner AND id = NEW.id;
       END""",
    """CREATE TRIGGER nodes_trust_to_feed AFTER UPDATE OF trust_score ON nodes BEGIN
         UPDATE platform_tasks SET owner_trust = NEW.trust_score WHERE publisher = NEW.id;
         UPDATE task_capabilities SET owner_trust = NEW.trust_score
           WHERE task_id IN (SELECT id FROM platform_tasks WHERE publisher = NEW.id);
         UPDATE capabilities SET owner_trust = NEW.trust_score WHERE owner = NEW.id;
       END""",
]

_POSTGRESQL_TRIGGERS = [
    """CREATE FUNCTION platform_tasks_owner_trust() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         NEW.owner_trust := COALESCE((SELECT trust_score FROM nodes WHERE id = NEW.publisher), 0.5);
         RETURN NEW;
       END $$""",
    """CREATE TRIGGER platform_tasks_owner_trust BEFORE INSERT ON platform_tasks
       FOR EACH ROW EXECUTE FUNCTION platform_tasks_owner_trust()""",
    """CREATE FUNCTION task_capabilities_owner_trust() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         NEW.owner_trust := (SELECT owner_trust FROM platform_tasks WHERE id = NEW.task_id);
         RETURN NEW;
       END $$""",
    """CREATE TRIGGER task_capabilities_owner_trust BEFORE INSERT ON task_capabilities
       FOR EACH ROW EXECUTE FUNCTION task_capabilities_owner_trust()""",
    """CREATE FUNCTION capabilities_feed_keys() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         NEW.owner_trust := COALESCE((SELECT trust_score FROM nodes WHERE id = NEW.owner), 0.5);
         NEW.category := COALESCE(NEW.spec::json ->> 'category', 'general');
         RETURN NEW;
       END $$""",
    """CREATE TRIGGER capabilities_feed_keys BEFORE INSERT ON capabilities
       FOR EACH ROW EXECUTE FUNCTION capabilities_feed_keys()""",
    """CREATE FUNCTION nodes_trust_to_feed() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         UPDATE platform_tasks SET owner_trust = NEW.trust_score WHERE publisher = NEW.id;
         UPDATE task_capabilities SET owner_trust = NEW.trust_score
           WHERE task_id IN (SELECT id FROM platform_tasks WHERE publisher = NEW.id);
         UPDATE capabilities SET owner_trust = NEW.trust_score WHERE owner = NEW.id;
         RETURN NULL;
       END $$""",
    """CREATE TRIGGER nodes_trust_to_feed AFTER UPDATE OF trust_score ON nodes
       FOR EACH ROW WHEN (OLD.trust_score IS DISTINCT FROM NEW.trust_score)
       EXECUTE FUNCTION nodes_trust_to_feed()""",
]


def upgrade() -> None:
    for table in ("platform_tasks", "task_capabilities", "capabilities"):
        op.add_column(table, sa.Column("owner_trust", sa.Double, nullable=False, server_default=_PRIOR))
    op.add_column(
        "capabilities", sa.Column("category", sa.Text, nullable=False, server_default=sa.text("'general'"))
    )
    for table, owner in _OWNER_OF.items():
        op.execute(
            f"UPDATE {table} SET owner_trust = COALESCE("
            f"(SELECT trust_score FROM nodes WHERE nodes.id = {table}.{owner}), 0.5)"
        )
    op.execute(
        "UPDATE task_capabilities SET owner_trust ="
        " (SELECT owner_trust FROM platform_tasks WHERE platform_tasks.id = task_capabilities.task_id)"
    )
    postgresql = op.get_bind().dialect.name == "postgresql"
    category = "spec::json ->> 'category'" if postgresql else "json_extract(spec, '$.category')"
    op.execute(f"UPDATE capabilities SET category = COALESCE({category}, 'general')")
    for statement in _POSTGRESQL_TRIGGERS if postgresql else _SQLITE_TRIGGERS:
        op.execute(statement)
    op.create_index("platform_tasks_feed", "platform_tasks", ["status", "owner_trust", "created_at", "id"])
    op.create_index(
        "task_capabilities_feed",
        "task_capabilities",
        ["capability", "status", "owner_trust", "created_at", "task_id"],
    )
    op.create_index("capabilities_feed", "capabilities", ["visibility", "owner_trust", "created_at", "id"])
    op.create_index(
        "capabilities_feed_category",
        "capabilities",
        ["visibility", "category", "owner_trust", "created_at", "id"],
    )


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for name, table in (
        ("platform_tasks_owner_trust", "platform_tasks"),
        ("task_capabilities_owner_trust", "task_capabilities"),
        ("capabilities_feed_keys", "capabilities"),
        ("nodes_trust_to_feed", "nodes"),
    ):
        op.execute(f"DROP TRIGGER {name} ON {table}" if postgresql else f"DROP TRIGGER {name}")
        if postgresql:
            op.execute(f"DROP FUNCTION {name}()")
    op.drop_index("capabilities_feed_category", table_name="capabilities")
    op.drop_index("capabilities_feed", table_name="capabilities")
    op.drop_index("task_capabilities_feed", table_name="task_capabilities")
    op.drop_index("platform_tasks_feed", table_name="platform_tasks")
    with op.batch_alter_table("capabilities", table_kwargs={"sqlite_with_rowid": False}) as batch:
        batch.drop_column("category")
        batch.drop_column("owner_trust")
    with op.batch_alter_table("task_capabilities", table_kwargs={"sqlite_with_rowid": False}) as batch:
        batch.drop_column("owner_trust")
    with op.batch_alter_table("platform_tasks") as batch:
        batch.drop_column("owner_trust")
