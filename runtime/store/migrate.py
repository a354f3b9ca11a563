"""Bringing a database to the schema of this code: Alembic, run in-process at start-up and by
``agent-worker migrate``.

A SQLite file made before the store used Alembic has no ``alembic_version`` table; it says how far
it got with ``PRAGMA user_version``. Such a file gets the missing home-made steps
(:mod:`runtime.store.legacy`), is stamped at the baseline revision (the schema those steps end
at) and then upgraded like any other, all in one transaction: a failed upgrade leaves the file as
it was. On PostgreSQL, concurrent workers starting together take an advisory lock, so one
migrates and the others then find nothing to do.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text

from runtime.store.database import Database
from runtime.store.legacy import LEGACY_STEPS

__all__ = ["BASELINE", "head_revision", "upgrade"]

SCRIPTS = Path(__file__).with_name("migrations")
BASELINE = "0001"
_MIGRATION_LOCK = 0x6167_656E_7400  # any constant key: the advisory lock migrations take on PostgreSQL


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


async def upgrade(db: Database) -> str:
    """Migrate to the newest revision; returns the revision the database is at now."""
    async with db.engine.connect() as conn:
        return await conn.run_sync(_upgrade)


def _upgrade(conn: Connection) -> str:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
    config = _config(conn)
    if conn.dialect.name == "sqlite" and _adopt_legacy(conn):
        command.stamp(config, BASELINE)
    command.upgrade(config, "head")
    revision = MigrationContext.configure(conn).get_current_revision()
    conn.commit()
    assert revision is not None
    return revision


def _adopt_legacy(conn: Connection) -> bool:
    """Finish a pre-Alembic file's own steps; True if it is one (and must be stamped)."""
    tables = set(inspect(conn).get_table_names())
    if "alembic_version" in tables:
        return False
    version = int(conn.exec_driver_sql("PRAGMA user_version").scalar_one())
    if version == 0 and "runs" not in tables:
        return False  # a new file: the migrations create everything
    for statements in LEGACY_STEPS[version:]:
        for statement in statements:
            conn.exec_driver_sql(statement)
    conn.exec_driver_sql(f"PRAGMA user_version = {len(LEGACY_STEPS)}")
    return True


def _config(conn: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    config.attributes["connection"] = conn
    return config
