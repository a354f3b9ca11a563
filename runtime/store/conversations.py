"""Conversations and their messages: the ``conversations`` and ``conversation_messages`` tables."""

from __future__ import annotations

import json
import time
from typing import Any

from pydantic import BaseModel
from sqlalchemy import delete, func, insert, select, update

from runtime.errors import NotFoundError
from runtime.store.database import Database
from runtime.store.schema import conversation_messages, conversations

__all__ = ["ConversationQueries", "ConversationRecord"]

_TITLE_CHARS = 80


class ConversationRecord(BaseModel):
    conversation_id: str
    workspace_id: str
    title: str
    created_at: float
    updated_at: float
    message_count: int = 0


class ConversationQueries:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def insert(self, conversation_id: str, owner: str, workspace_id: str, now: float) -> None:
        async with self._db.connect() as conn:
            await conn.execute(
                insert(conversations).values(
                    id=conversation_id, owner=owner, workspace_id=workspace_id, created_at=now, updated_at=now
                )
            )

    async def find(
        self, owner: str, workspace_id: str, conversation_id: str | None = None
    ) -> list[ConversationRecord]:
        """The owner's conversations in the workspace (only ``conversation_id``, if given), latest first."""
        count = (
            select(func.count())
            .where(conversation_messages.c.conversation_id == conversations.c.id)
            .scalar_subquery()
        )
        query = (
            select(
                conversations.c.id.label("conversation_id"),
                conversations.c.workspace_id,
                conversations.c.title,
                conversations.c.created_at,
                conversations.c.updated_at,
                count.label("message_count"),
            )
            .where(conversations.c.owner == owner, conversations.c.workspace_id == workspace_id)
            .order_by(conversations.c.updated_at.desc(), conversations.c.id)
        )
        if conversation_id is not None:
            query = query.where(conversations.c.id == conversation_id)
        async with self._db.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [ConversationRecord.model_validate(row._mapping) for row in rows]

    async def delete(self, conversation_id: str) -> None:
        async with self._db.connect() as conn:
            await conn.execute(delete(conversations).where(conversations.c.id == conversation_id))

    async def history(self, conversation_id: str) -> list[dict[str, Any]]:
        async with self._db.connect() as conn:
            rows = await conn.execute(
                select(conversation_messages.c.message)
                .where(conversation_messages.c.conversation_id == conversation_id)
                .order_by(conversation_messages.c.seq)
            )
            return [json.loads(message) for message in rows.scalars()]

    async def append(self, conversation_id: str, messages: list[dict[str, Any]]) -> None:
        """Add messages at the end, in one transaction; the first user message becomes the title.

        The conversation's row is locked first (PostgreSQL), so two appends cannot take the same
        positions.
        """
        first_user = next((m["content"] for m in messages if m.get("role") == "user"), None)
        async with self._db.transaction() as conn:
            locked = await conn.execute(
                select(conversations.c.title).where(conversations.c.id == conversation_id).with_for_update()
            )
            title = locked.scalar_one_or_none()
            if title is None:
                raise NotFoundError(f"conversation {conversation_id} not found")
            next_seq = (
                await conn.execute(
                    select(func.coalesce(func.max(conversation_messages.c.seq) + 1, 0)).where(
                        conversation_messages.c.conversation_id == conversation_id
                    )
                )
            ).scalar_one()
            if messages:
                await conn.execute(
                    insert(conversation_messages).values(
                        [
                            {
                                "conversation_id": conversation_id,
                                "seq": next_seq + i,
                                "message": json.dumps(m),
                            }
                            for i, m in enumerate(messages)
                        ]
                    )
                )
            changes: dict[str, Any] = {"updated_at": time.time()}
            if title == "" and first_user is not None:
                changes["title"] = first_user[:_TITLE_CHARS]
            await conn.execute(
                update(conversations).where(conversations.c.id == conversation_id).values(changes)
            )
