-- The store's schema as the release before Alembic created it (runtime/store.py at commit 5bedf6d),
-- one block per step of its own migrations; after step N it set PRAGMA user_version = N.
-- Copied, never edited: tests build old data directories from it.

-- step 1
CREATE TABLE runs (
            id TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            kind TEXT NOT NULL,
            status TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            error TEXT
        );
CREATE INDEX runs_owner ON runs (owner, created_at);
CREATE TABLE events (
            run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            type TEXT NOT NULL,
            data TEXT NOT NULL,
            created_at REAL NOT NULL,
            PRIMARY KEY (run_id, seq)
        ) WITHOUT ROWID;

-- step 2
CREATE TABLE workspaces (
            owner TEXT NOT NULL,
            id TEXT NOT NULL,
            created_at REAL NOT NULL,
            PRIMARY KEY (owner, id)
        ) WITHOUT ROWID;
CREATE TABLE conversations (
            id TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            workspace_id TEXT NOT NULL,
            title TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
CREATE INDEX conversations_owner ON conversations (owner, workspace_id, updated_at);
CREATE TABLE conversation_messages (
            conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            message TEXT NOT NULL,
            PRIMARY KEY (conversation_id, seq)
        ) WITHOUT ROWID;
ALTER TABLE runs ADD COLUMN workspace_id TEXT;
ALTER TABLE runs ADD COLUMN conversation_id TEXT;
CREATE INDEX runs_conversation ON runs (conversation_id);
CREATE TABLE prompts (
            owner TEXT NOT NULL,
            name TEXT NOT NULL,
            content TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            PRIMARY KEY (owner, name)
        ) WITHOUT ROWID;
CREATE TABLE personalizations (
            owner TEXT NOT NULL,
            name TEXT NOT NULL,
            content TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            PRIMARY KEY (owner, name)
        ) WITHOUT ROWID;

-- step 3
CREATE TABLE idempotency_keys (
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
        );
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);

-- step 4
CREATE TABLE capabilities (
            owner TEXT NOT NULL,
            id TEXT NOT NULL,
            spec TEXT NOT NULL,
            created_at REAL NOT NULL,
            PRIMARY KEY (owner, id)
        ) WITHOUT ROWID;
CREATE TABLE task_origins (
            task_id TEXT PRIMARY KEY,
            surface TEXT NOT NULL,
            capability_id TEXT
        ) WITHOUT ROWID;
CREATE TABLE context_aliases (
            owner TEXT NOT NULL,
            context_id TEXT NOT NULL,
            conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
            PRIMARY KEY (owner, context_id)
        ) WITHOUT ROWID;
CREATE INDEX context_aliases_conversation ON context_aliases (conversation_id);

-- step 5
ALTER TABLE workspaces ADD COLUMN python_mode TEXT NOT NULL DEFAULT 'stateful';
