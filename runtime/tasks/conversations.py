"""Conversations: a user's message history in one workspace, continued by each new message.

The full history (user, assistant with tool calls, tool results) is stored one message per row,
in order, so the next task replays exactly what the model saw.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from pydantic import BaseModel

from runtime.errors import NotFoundError
from runtime.store import Store

__all__ = ["ConversationRecord", "Conversations"]

_TITLE_CHARS = 80


class ConversationRecord(BaseModel):
    conversation_id: str
    workspace_id: str
    title: str
    created_at: float
    updated_at: float
    message_count: int = 0


class Conversations:
    def __init__(self, store: Store) -> None:
        self._db = store.connection

    async def create(self, owner: str, workspace_id: str) -> ConversationRecord:
        now = time.time()
        # The documented shape (conv_<date>_<time>_...), with a random tail so ids cannot be guessed.
        stamp = time.strftime("%Y%m%d_%H%M%S", time.localtime(now))
        conversation_id = f"conv_{stamp}_{secrets.token_hex(4)}"
        await self._db.execute(
            "INSERT INTO conversations (id, owner, workspace_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
            (conversation_id, owner, workspace_id, now, now),
        )
        return ConversationRecord(
            conversation_id=conversation_id,
            workspace_id=workspace_id,
            title="",
            created_at=now,
            updated_at=now,
        )

    async def get(self, owner: str, workspace_id: str, conversation_id: str) -> ConversationRecord:
        """The conversation, if it is the owner's and in that workspace; else :class:`NotFoundError`."""
        rows = await self._select(
            "c.owner = ? AND c.workspace_id = ? AND c.id = ?", (owner, workspace_id, conversation_id)
        )
        if not rows:
            raise NotFoundError(f"conversation {conversation_id} not found")
        return rows[0]

    async def in_workspace(self, owner: str, workspace_id: str) -> list[ConversationRecord]:
        return await self._select("c.owner = ? AND c.workspace_id = ?", (owner, workspace_id))

    async def delete(self, owner: str, workspace_id: str, conversation_id: str) -> None:
        await self.get(owner, workspace_id, conversation_id)
        await self._db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))

    async def history(self, conversation_id: str) -> list[dict[str, Any]]:
        rows = await self._db.execute_fetchall(
            "SELECT message FROM conversation_messages WHERE conversation_id = ? ORDER BY seq",
            (conversation_id,),
        )
        return [json.loads(row[0]) for row in rows]

    async def append(self, conversation_id: str, messages: list[dict[str, Any]]) -> None:
        """Add messages at the end, all in one statement; the first user message becomes the title."""
        await self._db.execute_fetchall(
            """INSERT INTO conversation_messages (conversation_id, seq, message)
               SELECT ?, base.next + batch.key, batch.value
               FROM (SELECT COALESCE(MAX(seq) + 1, 0) AS next FROM conversation_messages
                     WHERE conversation_id = ?) AS base,
                    json_each(?) AS batch
               ORDER BY batch.key""",
            (conversation_id, conversation_id, json.dumps([json.dumps(m) for m in messages])),
        )
        first_user = next((m["content"] for m in messages if m.get("role") == "user"), None)
        await self._db.execute(
            "UPDATE conversations SET updated_at = ?, "
            "title = CASE WHEN title = '' AND ? IS NOT NULL THEN ? ELSE title END WHERE id = ?",
            (time.time(), first_user, (first_user or "")[:_TITLE_CHARS], conversation_id),
        )

    async def _select(self, where: str, params: tuple[Any, ...]) -> list[ConversationRecord]:
        rows = await self._db.execute_fetchall(
            "SELECT c.id, c.workspace_id, c.title, c.created_at, c.updated_at, "
            "(SELECT COUNT(*) FROM conversation_messages m WHERE m.conversation_id = c.id) "
            f"FROM conversations c WHERE {where} ORDER BY c.updated_at DESC, c.id",
            params,
        )
        return [
            ConversationRecord(
                conversation_id=r[0],
                workspace_id=r[1],
                title=r[2],
                created_at=r[3],
                updated_at=r[4],
                message_count=r[5],
            )
            for r in rows
        ]
