"""A2A contextIds: the worker's conversation ids, and ids clients choose, each user's own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from runtime.errors import InputError
from runtime.features.context_aliases import ContextAliases
from runtime.store import Store
from runtime.tasks.conversations import Conversations

pytestmark = pytest.mark.both_engines


@pytest.fixture
async def parts(store_target: str | Path) -> AsyncIterator[tuple[ContextAliases, Conversations]]:
    async with Store.open(store_target) as store:
        conversations = Conversations(store)
        yield ContextAliases(store, conversations), conversations


async def test_a_new_context_id_starts_a_conversation_a_known_one_continues_it(
    parts: tuple[ContextAliases, Conversations],
) -> None:
    aliases, conversations = parts

    first = await aliases.conversation_for("alice", "thread-1")
    again = await aliases.conversation_for("alice", "thread-1")
    other = await aliases.conversation_for("alice", "thread-2")
    bobs = await aliases.conversation_for("bob", "thread-1")

    assert first is not None and first == again and len({first, other, bobs}) == 3
    assert await aliases.context_of(first) == "thread-1"
    assert await aliases.find("alice", "thread-1") == first and await aliases.find("alice", "nope") is None
    assert await aliases.conversation_for("alice", None) is None
    # a conversation the worker issued is its own context id
    issued = (await conversations.create("alice", "default")).conversation_id
    assert await aliases.conversation_for("alice", issued) == issued
    assert await aliases.context_of(issued) == issued
    # another user's conversation id is just a new context for this one
    assert await aliases.conversation_for("bob", issued) not in (issued, None)


async def test_concurrent_first_messages_share_one_conversation(
    parts: tuple[ContextAliases, Conversations],
) -> None:
    aliases, conversations = parts

    results = await asyncio.gather(*(aliases.conversation_for("alice", "race") for _ in range(5)))

    assert len(set(results)) == 1
    assert len(await conversations.in_workspace("alice", "default")) == 1  # the losers' are gone


async def test_deleting_the_conversation_frees_its_context_id(
    parts: tuple[ContextAliases, Conversations],
) -> None:
    aliases, conversations = parts
    first = await aliases.conversation_for("alice", "thread")
    assert first is not None

    await conversations.delete("alice", "default", first)

    assert await aliases.find("alice", "thread") is None
    assert await aliases.conversation_for("alice", "thread") != first


@pytest.mark.parametrize("context_id", ["", "x" * 201, "line\nbreak"])
async def test_unusable_context_ids_are_refused(
    parts: tuple[ContextAliases, Conversations], context_id: str
) -> None:
    with pytest.raises(InputError, match="contextId"):
        await parts[0].conversation_for("alice", context_id)
