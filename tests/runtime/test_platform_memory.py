"""Shared memory: visible to author and participants only; tag, participant and CJK text search."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import pytest
from pydantic import ValidationError

from runtime.errors import InputError
from runtime.platform.memory import MemoryDraft, MemoryEntry, MemoryFilter, SharedMemory
from runtime.store import Store
from runtime.store.platform_nodes import insert_node

pytestmark = pytest.mark.both_engines

NODES = ("alice", "bob", "carol", "mallory")


@pytest.fixture
async def memory(platform_store: Store) -> SharedMemory:
    async with platform_store.transaction() as conn:
        for node in NODES:
            await insert_node(conn, node, "registered", node)
    clock = itertools.count(1000.0)
    return SharedMemory(platform_store, clock=lambda: next(clock))


async def write(
    memory: SharedMemory,
    author: str,
    content: str,
    participants: Sequence[str] = (),
    tags: Sequence[str] = (),
) -> MemoryEntry:
    return await memory.write(
        author, MemoryDraft(content=content, participants=list(participants), tags=list(tags))
    )


async def read(
    memory: SharedMemory, viewer: str, page: int = 1, page_size: int = 20, **where: str
) -> list[str]:
    found = await memory.read(viewer, MemoryFilter.model_validate(where), page, page_size)
    return [entry.content for entry in found.items]


async def test_an_entry_is_visible_to_its_author_and_participants_only(memory: SharedMemory) -> None:
    entry = await write(memory, "alice", "shared with bob", participants=["bob"], tags=["t"])
    await write(memory, "carol", "carol's own")

    assert await read(memory, "alice") == ["shared with bob"]
    assert await read(memory, "bob") == ["shared with bob"]
    assert await read(memory, "carol") == ["carol's own"]
    # No filter opens another node's entries: not naming their author, nor their tag.
    assert await read(memory, "mallory") == []
    assert await read(memory, "mallory", participant="alice") == []
    assert await read(memory, "mallory", tag="t") == []
    assert await read(memory, "mallory", q="shared") == []
    assert (entry.author, entry.participants, entry.tags) == ("alice", ["bob"], ["t"])


async def test_filters_by_participant_and_cjk_tag(memory: SharedMemory) -> None:
    await write(
        memory,
        "alice",
        "2026年Q1新能源渗透率超过40%,比亚迪领先",
        participants=["bob"],
        tags=["新能源", "市场数据"],
    )
    await write(memory, "alice", "芯片出口数据", participants=["carol"], tags=["半导体"])
    await write(memory, "bob", "bob notes", tags=["新能源"])

    assert await read(memory, "alice", tag="新能源") == ["2026年Q1新能源渗透率超过40%,比亚迪领先"]
    assert await read(memory, "bob", tag="新能源") == ["bob notes", "2026年Q1新能源渗透率超过40%,比亚迪领先"]
    assert await read(memory, "alice", participant="carol") == ["芯片出口数据"]
    assert await read(memory, "bob", participant="alice", tag="新能源") == [
        "2026年Q1新能源渗透率超过40%,比亚迪领先"
    ]
    assert await read(memory, "alice", tag="新") == []  # the tag filter is exact


async def test_search_finds_cjk_substrings_of_content_and_tags(memory: SharedMemory) -> None:
    await write(memory, "alice", "2026年Q1新能源渗透率超过40%,比亚迪领先", tags=["市场数据"])
    await write(memory, "alice", "Quarterly BYD deliveries", tags=["汽车"])

    assert await read(memory, "alice", q="渗透率") == ["2026年Q1新能源渗透率超过40%,比亚迪领先"]
    assert await read(memory, "alice", q="市场") == ["2026年Q1新能源渗透率超过40%,比亚迪领先"]
    assert await read(memory, "alice", q="汽") == ["Quarterly BYD deliveries"]
    assert await read(memory, "alice", q="byd") == ["Quarterly BYD deliveries"]
    assert await read(memory, "alice", q="比亚迪领先了") == []


async def test_search_wildcards_are_matched_literally(memory: SharedMemory) -> None:
    await write(memory, "alice", "share 40% of sales")
    await write(memory, "alice", "share 400 of sales")
    await write(memory, "alice", r"path a_b and c\d")

    assert await read(memory, "alice", q="40%") == ["share 40% of sales"]
    assert await read(memory, "alice", q="%") == ["share 40% of sales"]
    assert await read(memory, "alice", q="a_b") == [r"path a_b and c\d"]
    assert await read(memory, "alice", q="_") == [r"path a_b and c\d"]
    assert await read(memory, "alice", q="c\\d") == [r"path a_b and c\d"]
    assert await read(memory, "alice", q="/") == []


async def test_pages_are_newest_first_with_the_total(memory: SharedMemory) -> None:
    for i in range(5):
        await write(memory, "alice", f"note {i}")

    first = await memory.read("alice", MemoryFilter(), 1, 2)
    last = await memory.read("alice", MemoryFilter(), 3, 2)

    assert (first.total, first.has_more, last.has_more) == (5, True, False)
    assert [e.content for e in first.items] == ["note 4", "note 3"]
    assert [e.content for e in last.items] == ["note 0"]


async def test_unknown_participants_are_refused_and_nothing_is_written(memory: SharedMemory) -> None:
    with pytest.raises(InputError, match="'ghost'"):
        await write(memory, "alice", "for a ghost", participants=["bob", "ghost"])

    assert await read(memory, "alice") == []


def test_the_draft_trims_and_deduplicates_participants_and_tags() -> None:
    draft = MemoryDraft(content="x", participants=["bob", " bob ", "carol"], tags=[" 新能源", "新能源", "a"])
    assert (draft.participants, draft.tags) == (["bob", "carol"], ["新能源", "a"])


@pytest.mark.parametrize(
    "body",
    [
        {"content": ""},
        {"content": "x", "tags": [""]},
        {"content": "x", "tags": ["t" * 65]},
        {"content": "x", "participants": "bob"},
        {"content": "x", "tags": [f"t{i}" for i in range(21)]},
        {"participants": ["bob"]},
    ],
)
def test_invalid_drafts_are_refused(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        MemoryDraft.model_validate(body)
