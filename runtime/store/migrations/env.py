"""Alembic's entry point, run by :func:`runtime.store.migrate.upgrade` on a connection it passes in.

The caller owns the connection and its transaction: every step of an upgrade, and the version
stamp, commit together or not at all.
"""

from __future__ import annotations

from alembic import context

from runtime.store.schema import metadata

context.configure(
    connection=context.config.attributes["connection"],
    target_metadata=metadata,
    transactional_ddl=True,  # SQLite's DDL is transactional too: a failed step leaves nothing behind
)
with context.begin_transaction():
    context.run_migrations()
