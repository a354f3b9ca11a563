"""The store's migrations: an old SQLite data directory keeps every row, and Alembic's baseline is
the schema the old code made.

The old schema is the DDL of the release before Alembic (tests/runtime/data), applied step by step
with ``PRAGMA user_version`` as that release did; rows go in with plain ``sqlite3``, as its code
wrote them.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine
from sqlalchemy.ext.asyncio import create_async_engine

from api.cli import main
from runtime.engine.events import TextChunk
from runtime.features.capabilities import Capabilities
from runtime.features.capability_runs import CapabilityRuns
from runtime.features.context_aliases import ContextAliases
from runtime.features.idempotency import IdempotencyStore
from runtime.features.library import Library
from runtime.store import Store
from runtime.store.database import database_url
from runtime.store.migrate import BASELINE, _config, head_revision
from runtime.store.schema import metadata
from runtime.tasks.conversations import Conversations
from runtime.workspaces.records import WorkspaceConfig, Workspaces

OLD_SCHEMA = Path(__file__).parent / "data" / "store_before_alembic.sql"


def old_steps() -> list[str]:
    """The old release's migration steps, each a script of statements."""
    return OLD_SCHEMA.read_text().split("\n-- step ")[1:]


def make_old_file(path: Path, steps: int) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    for number, step in enumerate(old_steps()[:steps], start=1):
        conn.executescript(step.partition("\n")[2])
        conn.execute(f"PRAGMA user_version = {number}")
    return conn


def fill(conn: sqlite3.Connection) -> None:
    """A row in every table, as the old release wrote them."""
    conn.executescript(
        """
        INSERT INTO runs VALUES ('t1', 'alice', 'task', 'completed', 1.0, 2.0, NULL, 'default', 'c1');
        INSERT INTO runs VALUES ('t2', 'alice', 'task', 'failed', 3.0, 4.0, 'boom', 'default', 'c1');
        INSERT INTO workspaces VALUES ('alice', 'default', 1.0, 'fresh');
        INSERT INTO conversations VALUES ('c1', 'alice', 'default', 'hello', 1.0, 4.0);
        INSERT INTO prompts VALUES ('alice', 'p', 'be brief', 1.0, 1.0);
        INSERT INTO personalizations VALUES ('alice', 'default', 'metric units', 1.0, 1.0);
        INSERT INTO idempotency_keys VALUES ('alice', 'header', 'k1', 'fp', 'done', 201, 'application/json',
                                             X'7B7D', NULL, 1.0, 9999999999.0);
        INSERT INTO capabilities VALUES ('alice', 'mine', '{"id": "mine", "name": "Mine"}', 1.0);
        INSERT INTO task_origins VALUES ('t1', 'a2a-seed', 'mine');
        INSERT INTO context_aliases VALUES ('alice', 'ctx-1', 'c1');
        """
    )
    for seq in range(3):
        data = json.dumps({"iteration": 1, "content": f"chunk {seq}"})
        conn.execute("INSERT INTO events VALUES ('t1', ?, 'text_chunk', ?, 1.5)", (seq, data))
    for seq, role in enumerate(["user", "assistant"]):
        message = json.dumps({"role": role, "content": f"{role} says hi"})
        conn.execute("INSERT INTO conversation_messages VALUES ('c1', ?, ?)", (seq, message))


async def test_an_old_data_directory_keeps_every_row(tmp_path: Path) -> None:
    path = tmp_path / "agent-worker.sqlite3"
    conn = make_old_file(path, steps=len(old_steps()))
    fill(conn)
    conn.close()

    async with Store.open(path) as store:
        tasks, total = await store.list_tasks("alice")
        assert total == 2 and [t.id for t in tasks] == ["t2", "t1"]
        assert (tasks[0].status, tasks[0].error, tasks[0].conversation_id) == ("failed", "boom", "c1")
        assert [(e.offset, e.event.content) for e in await store.events("t1")] == [  # type: ignore[union-attr]
            (0, "chunk 0"),
            (1, "chunk 1"),
            (2, "chunk 2"),
        ]
        # The log goes on where it stopped: the new offset counter was filled from the old events.
        assert (await store.append("t1", TextChunk(iteration=2, content="more"))).offset == 3

        conversations = Conversations(store)
        conversation = await conversations.get("alice", "default", "c1")
        assert (conversation.title, conversation.message_count) == ("hello", 2)
        assert [m["content"] for m in await conversations.history("c1")] == [
            "user says hi",
            "assistant says hi",
        ]
        workspaces = Workspaces(store, WorkspaceConfig(root=tmp_path / "workspaces", max_mb=0))
        assert (await workspaces.get("alice", "default")).python_mode == "fresh"
        library = Library(store)
        assert (await library.get("prompt", "alice", "p")).content == "be brief"
        assert (await library.get("personalization", "alice", "default")).content == "metric units"
        replay = await IdempotencyStore(store, ttl=60).begin("alice", "k1", "fp")
        assert replay is not None and (replay.status, replay.body) == (201, b"{}")
        capability = await Capabilities(store, []).get("alice", "mine")
        assert (capability.name, capability.source) == ("Mine", "user")
        origin = await CapabilityRuns(store, Capabilities(store, []), None).origin("t1")  # type: ignore[arg-type]
        assert origin is not None and (origin.surface, origin.capability_id) == ("a2a-flat", "mine")
        assert await ContextAliases(store, conversations).find("alice", "ctx-1") == "c1"


async def test_an_old_file_at_an_earlier_step_gets_the_missing_steps(tmp_path: Path) -> None:
    path = tmp_path / "agent-worker.sqlite3"
    conn = make_old_file(path, steps=3)
    conn.execute("INSERT INTO runs VALUES ('t1', 'alice', 'task', 'completed', 1.0, 2.0, NULL, NULL, NULL)")
    conn.execute("INSERT INTO workspaces VALUES ('alice', 'default', 1.0)")
    conn.close()

    async with Store.open(path) as store:
        assert (await store.get_run("t1")).status == "completed"
        workspaces = Workspaces(store, WorkspaceConfig(root=tmp_path / "workspaces", max_mb=0))
        assert (await workspaces.get("alice", "default")).python_mode == "stateful"  # step 5's default
        assert await Capabilities(store, []).available("alice") == []  # step 4's table

    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(old_steps())
    assert conn.execute("SELECT version_num FROM alembic_version").fetchone()[0] == head_revision()
    conn.close()


def shape(path: Path) -> dict[str, object]:
    """Every table's columns, keys, indexes and rowid-ness, as SQLite reports them."""
    conn = sqlite3.connect(path)
    tables = [
        row[0]
        for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        if row[0] != "alembic_version"
    ]
    found: dict[str, object] = {}
    for table in tables:
        indexes = {
            row[1]: [c[2] for c in conn.execute(f"PRAGMA index_info('{row[1]}')")]
            for row in conn.execute(f"PRAGMA index_list('{table}')")
            if row[3] == "c"  # created by CREATE INDEX (constraint indexes are named differently)
        }
        found[table] = {
            "columns": [tuple(row[1:]) for row in conn.execute(f"PRAGMA table_info('{table}')")],
            "foreign_keys": [tuple(row[2:]) for row in conn.execute(f"PRAGMA foreign_key_list('{table}')")],
            "indexes": indexes,
            "without_rowid": conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (table,))
            .fetchone()[0]
            .rstrip()
            .endswith("WITHOUT ROWID"),
        }
    conn.close()
    return found


def test_the_baseline_revision_is_the_schema_the_old_release_made(tmp_path: Path) -> None:
    make_old_file(tmp_path / "old.sqlite3", steps=len(old_steps())).close()
    engine = create_engine(f"sqlite:///{tmp_path / 'new.sqlite3'}")
    with engine.connect() as conn:
        command.upgrade(_config(conn), BASELINE)
        conn.commit()
    engine.dispose()

    assert shape(tmp_path / "new.sqlite3") == shape(tmp_path / "old.sqlite3")


def test_agent_worker_migrate_brings_the_data_directory_to_the_newest_revision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AGENT_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("AGENT_DATABASE_URL", raising=False)
    make_old_file(tmp_path / "agent-worker.sqlite3", steps=len(old_steps())).close()

    assert main(["migrate"]) == 0
    assert main(["migrate"]) == 0  # nothing left to do, and saying so is not an error

    assert f"revision {head_revision()}" in capsys.readouterr().out
    conn = sqlite3.connect(tmp_path / "agent-worker.sqlite3")
    assert conn.execute("SELECT version_num FROM alembic_version").fetchone()[0] == head_revision()
    conn.close()


@pytest.mark.both_engines
async def test_the_migrations_make_the_schema_the_code_declares(store_target: str | Path) -> None:
    async with Store.open(store_target):
        pass
    engine = create_async_engine(database_url(store_target))
    try:
        async with engine.connect() as conn:
            differences = await conn.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"compare_type": True}), metadata
                )
            )
    finally:
        await engine.dispose()
    # PostgreSQL makes every primary key NOT NULL, whatever the declaration (which is SQLite's).
    pk_nullability = {("runs", "id"), ("conversations", "id")}
    assert [
        d for d in differences if not (d[0][0] == "modify_nullable" and (d[0][2], d[0][3]) in pk_nullability)
    ] == []


async def test_capability_rows_written_before_their_sort_keys_were_copied_get_them(tmp_path: Path) -> None:
    path = tmp_path / "agent-worker.sqlite3"
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as sync:
        config = _config(sync)
        command.upgrade(config, "0005")
    engine.dispose()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(
        """
        INSERT INTO nodes (id, kind, nickname, created_at, trust_score) VALUES ('low', 'registered', 'l', 1.0, 0.2);
        INSERT INTO nodes (id, kind, nickname, created_at, trust_score) VALUES ('high', 'registered', 'h', 1.0, 0.9);
        INSERT INTO node_capabilities VALUES ('low', 'ocr'), ('high', 'ocr');
        INSERT INTO platform_tasks (id, publisher, title, description, budget, status, created_at, updated_at)
            VALUES ('old', 'low', 't', 'd', 1, 'done', 1.0, 1.0), ('new', 'low', 't', 'd', 1, 'open', 2.0, 2.0);
        INSERT INTO task_capabilities VALUES ('old', 'ocr'), ('new', 'ocr');
        """
    )
    conn.close()

    async with Store.open(path) as store:
        trusted, total = await store.nodes.list_nodes("ocr", 0.5, 1, 20)
        assert ([n.id for n in trusted], total) == (["high"], 1)
        ranked, _ = await store.nodes.list_nodes("ocr", None, 1, 20)
        assert [n.id for n in ranked] == ["high", "low"]
        newest, total = await store.platform_tasks.list_tasks(None, "ocr", 0, 20)
        assert ([t.id for t in newest], total) == (["new", "old"], 2)
        done, total = await store.platform_tasks.list_tasks("done", "ocr", 0, 20)
        assert ([t.id for t in done], total) == (["old"], 1)
    assert shape(path)["task_capabilities"]["without_rowid"]  # type: ignore[index]
    assert shape(path)["node_capabilities"]["without_rowid"]  # type: ignore[index]
