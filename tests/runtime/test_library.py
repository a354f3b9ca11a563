"""The library repository: per-owner prompts and personalizations, the cap, and the composed prompt."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from runtime.errors import ConflictError, NotFoundError
from runtime.features.library import MAX_ITEMS, Library
from runtime.store import Store

pytestmark = pytest.mark.both_engines

BASE = "You are a careful agent."


@pytest.fixture
async def library(store_target: str | Path) -> AsyncIterator[Library]:
    async with Store.open(store_target) as store:
        yield Library(store)


async def test_put_get_and_list_round_trip(library: Library) -> None:
    created = await library.put("prompt", "alice", "review", "Review the code.")
    await library.put("prompt", "alice", "analyst", "Analyse the data.")

    assert await library.get("prompt", "alice", "review") == created
    assert created.content == "Review the code."
    assert created.created_at == created.updated_at
    listed = await library.list("prompt", "alice")
    assert [(item.name, item.content) for item in listed] == [
        ("analyst", "Analyse the data."),
        ("review", "Review the code."),
    ]


async def test_second_put_replaces_content_and_keeps_created_at(library: Library) -> None:
    first = await library.put("personalization", "alice", "default", "Answer in French.")
    await asyncio.sleep(0.01)

    second = await library.put("personalization", "alice", "default", "Answer in German.")

    assert second.content == "Answer in German."
    assert second.created_at == first.created_at
    assert second.updated_at > first.updated_at
    assert await library.list("personalization", "alice") == [second]


async def test_unknown_name_is_not_found(library: Library) -> None:
    with pytest.raises(NotFoundError, match="prompt 'missing' not found"):
        await library.get("prompt", "alice", "missing")


async def test_owners_and_kinds_are_separate(library: Library) -> None:
    await library.put("prompt", "alice", "mine", "alice's prompt")

    with pytest.raises(NotFoundError):
        await library.get("prompt", "bob", "mine")
    with pytest.raises(NotFoundError):
        await library.get("personalization", "alice", "mine")
    assert await library.list("prompt", "bob") == []
    assert await library.list("personalization", "alice") == []

    await library.put("prompt", "bob", "mine", "bob's prompt")
    assert (await library.get("prompt", "alice", "mine")).content == "alice's prompt"
    assert (await library.get("prompt", "bob", "mine")).content == "bob's prompt"


async def test_items_survive_a_reopen(store_target: str | Path) -> None:
    async with Store.open(store_target) as store:
        await Library(store).put("prompt", "alice", "kept", "still here")

    async with Store.open(store_target) as store:
        assert (await Library(store).get("prompt", "alice", "kept")).content == "still here"


async def test_cap_refuses_new_names_but_allows_replacing(library: Library) -> None:
    for i in range(MAX_ITEMS):
        await library.put("prompt", "alice", f"p{i}", "x")

    with pytest.raises(ConflictError, match=f"prompt limit reached: {MAX_ITEMS} per user"):
        await library.put("prompt", "alice", "one-more", "x")

    replaced = await library.put("prompt", "alice", "p0", "new content")
    assert replaced.content == "new content"
    assert len(await library.list("prompt", "alice")) == MAX_ITEMS
    # The cap is per owner and per kind.
    await library.put("prompt", "bob", "one-more", "x")
    await library.put("personalization", "alice", "one-more", "x")


async def test_cap_holds_under_concurrent_creates(library: Library) -> None:
    for i in range(MAX_ITEMS - 2):
        await library.put("prompt", "alice", f"p{i}", "x")

    results = await asyncio.gather(
        *(library.put("prompt", "alice", f"new{i}", "x") for i in range(5)), return_exceptions=True
    )

    assert sum(not isinstance(r, Exception) for r in results) == 2
    assert all(isinstance(r, ConflictError) for r in results if isinstance(r, Exception))
    assert len(await library.list("prompt", "alice")) == MAX_ITEMS


async def test_a_put_transaction_is_never_joined_by_a_concurrent_write(store_target: str | Path) -> None:
    # A put is a transaction; on SQLite's one connection, another coroutine's statement issued
    # while it is open must wait for it, not join it (and be rolled back or committed with it).
    async with Store.open(store_target) as store:
        library = Library(store)

        await asyncio.gather(
            library.put("prompt", "alice", "a", "x"),
            store.create_run("r1", "alice", "task"),
            library.put("prompt", "alice", "a", "y"),
            store.create_run("r2", "alice", "task"),
        )

        assert (await library.get("prompt", "alice", "a")).content == "y"
        assert {r.id for r in (await store.list_tasks("alice"))[0]} == {"r1", "r2"}


# --- compose_system_prompt ------------------------------------------------------------------------


async def test_compose_without_library_items_is_the_base(library: Library) -> None:
    assert await library.compose_system_prompt("alice", BASE, None, None) == BASE


async def test_compose_named_prompt_replaces_the_base(library: Library) -> None:
    await library.put("prompt", "alice", "pirate", "Talk like a pirate.")

    assert await library.compose_system_prompt("alice", BASE, "pirate", None) == "Talk like a pirate."


async def test_compose_appends_the_default_personalization(library: Library) -> None:
    await library.put("personalization", "alice", "default", "Answer in French.")

    composed = await library.compose_system_prompt("alice", BASE, None, None)

    assert composed == f"{BASE}\n\n---\nUser preferences:\nAnswer in French."


async def test_compose_named_personalization_wins_over_default(library: Library) -> None:
    await library.put("prompt", "alice", "pirate", "Talk like a pirate.")
    await library.put("personalization", "alice", "default", "Answer in French.")
    await library.put("personalization", "alice", "terse", "Be terse.")

    composed = await library.compose_system_prompt("alice", BASE, "pirate", "terse")

    assert composed == "Talk like a pirate.\n\n---\nUser preferences:\nBe terse."


async def test_compose_unknown_names_are_not_found(library: Library) -> None:
    await library.put("personalization", "alice", "default", "Answer in French.")

    with pytest.raises(NotFoundError, match="prompt 'nope' not found"):
        await library.compose_system_prompt("alice", BASE, "nope", None)
    # A missing named personalization is an error, not a silent fall back to the default one.
    with pytest.raises(NotFoundError, match="personalization 'nope' not found"):
        await library.compose_system_prompt("alice", BASE, None, "nope")


async def test_compose_never_uses_another_owners_items(library: Library) -> None:
    await library.put("prompt", "bob", "secret", "bob's prompt")
    await library.put("personalization", "bob", "default", "bob's preferences")

    assert await library.compose_system_prompt("alice", BASE, None, None) == BASE
    with pytest.raises(NotFoundError):
        await library.compose_system_prompt("alice", BASE, "secret", None)
