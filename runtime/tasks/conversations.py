"""Conversations: a user's message history in one workspace, continued by each new message.

The full history (user, assistant with tool calls, tool results) is stored one message per row,
in order, so the next task replays exactly what the model saw.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from runtime.errors import NotFoundError
from runtime.store import ConversationRecord, Store

__all__ = ["ConversationRecord", "Conversations"]


class Conversations:
    def __init__(self, store: Store) -> None:
        self._rows = store.conversations

    async def create(self, owner: str, workspace_id: str) -> ConversationRecord:
        now = time.time()
        # The documented shape (conv_<date>_<time>_...), with a random tail so ids cannot be guessed.
        stamp = time.strftime("%Y%m%d_%H%M%S", time.localtime(now))
        conversation_id = f"conv_{stamp}_{secrets.token_hex(4)}"
        await self._rows.insert(conversation_id, owner, workspace_id, now)
        return ConversationRecord(
            conversation_id=conversation_id,
            workspace_id=workspace_id,
            title="",
            created_at=now,
            updated_at=now,
        )

    async def get(self, owner: str, workspace_id: str, conversation_id: str) -> ConversationRecord:
        """The conversation, if it is the owner's and in that workspace; else :class:`NotFoundError`."""
        found = await self._rows.find(owner, workspace_id, conversation_id)
        if not found:
            raise NotFoundError(f"conversation {conversation_id} not found")
        return found[0]

    async def in_workspace(self, owner: str, workspace_id: str) -> list[ConversationRecord]:
        return await self._rows.find(owner, workspace_id)

    async def delete(self, owner: str, workspace_id: str, conversation_id: str) -> None:
        await self.get(owner, workspace_id, conversation_id)
        await self._rows.delete(conversation_id)

    async def history(self, conversation_id: str) -> list[dict[str, Any]]:
        return await self._rows.history(conversation_id)

    async def append(self, conversation_id: str, messages: list[dict[str, Any]]) -> None:
        """Add messages at the end, all at once; the first user message becomes the title."""
        await self._rows.append(conversation_id, messages)
