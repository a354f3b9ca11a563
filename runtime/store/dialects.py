"""Statements whose SQL differs by engine, built once for both."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite

from runtime.store.database import Database

__all__ = ["upsert"]


def upsert(db: Database, table: Table) -> Any:
    """``INSERT`` with ``ON CONFLICT`` clauses (``on_conflict_do_nothing`` / ``_do_update``) for ``db``."""
    return (postgresql.insert if db.dialect == "postgresql" else sqlite.insert)(table)
