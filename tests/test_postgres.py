"""The throwaway PostgreSQL cluster the store's tests run on (tests/postgres.py)."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from tests import postgres
from tests.conftest import postgres_unavailable
from tests.postgres import Cluster


async def test_each_test_database_is_fresh_and_dropped_afterwards(postgres_cluster: Cluster) -> None:
    async with postgres_cluster.fresh_database() as first, postgres_cluster.fresh_database() as second:
        assert first != second
        conn = await asyncpg.connect(first)
        try:
            await conn.execute("CREATE TABLE t (x int)")
            assert await conn.fetchval("SHOW fsync") == "off"  # speed: the data is thrown away
        finally:
            await conn.close()
        conn = await asyncpg.connect(second)
        try:
            assert await conn.fetchval("SELECT to_regclass('t')") is None
        finally:
            await conn.close()
    admin = await asyncpg.connect(postgres_cluster.url("postgres"))
    try:
        names = {first.rsplit("/", 1)[1], second.rsplit("/", 1)[1]}
        left = await admin.fetch("SELECT datname FROM pg_database WHERE datname = ANY($1)", list(names))
    finally:
        await admin.close()
    assert left == []


def test_without_server_binaries_the_cluster_is_unavailable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(postgres, "_VERSION_DIRS", tmp_path / "none")
    monkeypatch.setenv("PATH", str(tmp_path))

    with (
        pytest.raises(postgres.PostgresUnavailable, match="install Debian's postgresql"),
        postgres.running_cluster(),
    ):
        pass


def test_without_postgres_its_tests_skip_locally_but_fail_on_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no binaries"):
        postgres_unavailable("no binaries")

    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="no binaries"):
        postgres_unavailable("no binaries")
