"""A2A ``contextId`` → conversation: a known context continues its conversation, a new one starts one.

A contextId the worker issued is a conversation id. A client may also choose its own (a UUID it
keeps for a thread): the first message under it creates a conversation, remembered per user under
that contextId (the ``context_aliases`` table), so every later message under it continues that
conversation and every answer names the client's contextId again. Per user: two users choosing
the same contextId get two conversations.
"""

from __future__ import annotations

from runtime.errors import InputError, NotFoundError
from runtime.store import Store
from runtime.tasks.conversations import Conversations
from runtime.workspaces.records import DEFAULT_WORKSPACE

__all__ = ["MAX_CONTEXT_ID_CHARS", "ContextAliases"]

MAX_CONTEXT_ID_CHARS = 200


class ContextAliases:
    def __init__(self, store: Store, conversations: Conversations) -> None:
        self._aliases = store.context_aliases
        self._conversations = conversations

    async def conversation_for(
        self, owner: str, context_id: str | None, workspace_id: str = DEFAULT_WORKSPACE
    ) -> str | None:
        """The conversation of ``context_id``, created if new; None when no context was given."""
        if context_id is None:
            return None
        if not 1 <= len(context_id) <= MAX_CONTEXT_ID_CHARS or not context_id.isprintable():
            raise InputError(f"contextId must be 1-{MAX_CONTEXT_ID_CHARS} printable characters")
        known = await self.find(owner, context_id, workspace_id)
        if known is not None:
            return known
        created = (await self._conversations.create(owner, workspace_id)).conversation_id
        await self._aliases.insert_if_missing(owner, context_id, created)
        winner = await self._aliases.conversation(owner, context_id)
        if winner != created:  # a concurrent first message under this contextId got there first
            await self._conversations.delete(owner, workspace_id, created)
        return winner

    async def find(self, owner: str, context_id: str, workspace_id: str = DEFAULT_WORKSPACE) -> str | None:
        """The conversation of a known ``context_id`` (an own conversation id or alias), else None."""
        try:
            return (await self._conversations.get(owner, workspace_id, context_id)).conversation_id
        except NotFoundError:
            return await self._aliases.conversation(owner, context_id)

    async def context_of(self, conversation_id: str) -> str:
        """The contextId to show for a conversation: the client's alias, else its own id."""
        alias = await self._aliases.context(conversation_id)
        return conversation_id if alias is None else alias
