"""The store's home-made migrations from before Alembic, kept to finish an old SQLite file's upgrade.

A SQLite file made before the store moved to Alembic versions itself with ``PRAGMA user_version``:
step *n* of :data:`LEGACY_STEPS` was applied once ``user_version >= n``. A file at an older step is
brought to the last one here, then stamped at Alembic's baseline (which is that last step's
schema) and upgraded from there. Never edit these statements: they are what old files hold.
"""

from __future__ import annotations

__all__ = ["LEGACY_STEPS"]

LEGACY_STEPS: list[list[str]] = [
    [
        """CREATE TABLE runs (
            id TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            kind TEXT NOT NULL,
            status TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            error TEXT
        )""",
        "CREATE INDEX runs_owner ON runs (owner, created_at)",
        """CREATE TABLE events (
            run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            type TEXT NOT NULL,
            data TEXT NOT NULL,
            created_at REAL NOT NULL,
            PRIMARY KEY (run_id, seq)
        ) WITHOUT ROWID""",
    ],
    [
        """CREATE TABLE workspaces (
            owner TEXT NOT NULL,
            id TEXT NOT NULL,
            created_at REAL NOT NULL,
            PRIMARY KEY (owner, id)
        ) WITHOUT ROWID""",
        """CREATE TABLE conversations (
            id TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            workspace_id TEXT NOT NULL,
            title TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        )""",
        "CREATE INDEX conversations_owner ON conversations (owner, workspace_id, updated_at)",
        """CREATE TABLE conversation_messages (
            conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            message TEXT NOT NULL,
            PRIMARY KEY (conversation_id, seq)
        ) WITHOUT ROWID""",
        "ALTER TABLE runs ADD COLUMN workspace_id TEXT",
        "ALTER TABLE runs ADD COLUMN conversation_id TEXT",
        "CREATE INDEX runs_conversation ON runs (conversation_id)",
        """CREATE TABLE prompts (
            owner TEXT NOT NULL,
            name TEXT NOT NULL,
            content TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            PRIMARY KEY (owner, name)
        ) WITHOUT ROWID""",
        """CREATE TABLE personalizations (
            owner TEXT NOT NULL,
            name TEXT NOT NULL,
            content TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            PRIMARY KEY (owner, name)
        ) WITHOUT ROWID""",
    ],
    [
        # runtime.features.idempotency: one row per (owner, scope, key); the first answer is kept in it.
        """CREATE TABLE idempotency_keys (
            owner TEXT NOT NULL,
            scope TEXT NOT NULL,
            key TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            state TEXT NOT NULL,
            status INTEGER,
            content_type TEXT,
            body BLOB,
            reason TEXT,
            created_at REAL NOT NULL,
            expires_at REAL NOT NULL,
            PRIMARY KEY (owner, scope, key)
        )""",
        "CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at)",
    ],
    [
        # runtime.features.capabilities: users' own capabilities (the global ones live in memory).
        """CREATE TABLE capabilities (
            owner TEXT NOT NULL,
            id TEXT NOT NULL,
            spec TEXT NOT NULL,
            created_at REAL NOT NULL,
            PRIMARY KEY (owner, id)
        ) WITHOUT ROWID""",
        # runtime.features.capability_runs: how a task was started (surface, capability), when it matters.
        """CREATE TABLE task_origins (
            task_id TEXT PRIMARY KEY,
            surface TEXT NOT NULL,
            capability_id TEXT
        ) WITHOUT ROWID""",
        # runtime.features.context_aliases: A2A contextIds a client chose, each naming one conversation.
        """CREATE TABLE context_aliases (
            owner TEXT NOT NULL,
            context_id TEXT NOT NULL,
            conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
            PRIMARY KEY (owner, context_id)
        ) WITHOUT ROWID""",
        "CREATE INDEX context_aliases_conversation ON context_aliases (conversation_id)",
    ],
    [
        # runtime.workspaces.records: how execute_python runs in the workspace's conversations.
        "ALTER TABLE workspaces ADD COLUMN python_mode TEXT NOT NULL DEFAULT 'stateful'",
    ],
]
