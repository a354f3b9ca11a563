"""Shared memory: notes a node writes for itself and the nodes it names.

An entry is visible to its author and its participants only, whoever asks and whatever the
filters say (the rule is part of the store's query). Participants must be nodes of the registry
when the entry is written: a name nobody holds yet would hand the entry to whoever registers it
later. Tags are kept as written (trimmed, without repeats); the ``tag`` filter is exact, and the
text search ``q`` is a case-insensitive substring of the content or of a tag, so it finds CJK
words, which have no spaces to split on.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from runtime.errors import InputError
from runtime.store import Store
from runtime.store.platform_memory import MemoryRow

__all__ = ["MemoryDraft", "MemoryEntry", "MemoryFilter", "MemoryPage", "SharedMemory"]

MAX_CONTENT_CHARS = 20_000
MAX_PARTICIPANTS = 50
MAX_TAGS = 20

NodeId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


class MemoryDraft(BaseModel):
    """``POST /v1/memory``."""

    model_config = ConfigDict(extra="forbid")

    content: str = Field(min_length=1, max_length=MAX_CONTENT_CHARS)
    participants: list[NodeId] = Field(
        default_factory=list,
        max_length=MAX_PARTICIPANTS,
        description="Node ids who may read it, besides you.",
    )
    tags: list[Tag] = Field(default_factory=list, max_length=MAX_TAGS)

    _unique_participants = field_validator("participants")(_unique)
    _unique_tags = field_validator("tags")(_unique)


class MemoryFilter(BaseModel):
    """``GET /v1/memory``'s filters: entries visible to the caller that match all of them."""

    model_config = ConfigDict(extra="ignore")

    participant: NodeId | None = Field(None, description="Entries this node wrote or takes part in.")
    tag: Tag | None = Field(None, description="Entries with exactly this tag.")
    q: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = Field(
        None, description="Text the content or a tag contains (any script; case-insensitive)."
    )


class MemoryEntry(BaseModel):
    id: str
    author: str
    content: str
    participants: list[str]
    tags: list[str]
    created_at: float = Field(description="Unix seconds.")


class MemoryPage(BaseModel):
    items: list[MemoryEntry]
    total: int
    page: int
    page_size: int
    has_more: bool


class SharedMemory:
    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self._memory = store.platform_memory
        self._clock = clock

    async def write(self, author: str, draft: MemoryDraft) -> MemoryEntry:
        unknown = await self._memory.unknown_nodes(draft.participants)
        if unknown:
            raise InputError(f"participants: not nodes of the registry: {', '.join(map(repr, unknown))}")
        row = MemoryRow(
            id=f"mem_{secrets.token_hex(8)}",
            author=author,
            content=draft.content,
            participants=draft.participants,
            tags=draft.tags,
            created_at=self._clock(),
        )
        await self._memory.add(row)
        return MemoryEntry.model_validate(row.model_dump())

    async def read(self, viewer: str, where: MemoryFilter, page: int, page_size: int) -> MemoryPage:
        """The entries ``viewer`` may read that match ``where``, newest first: one page."""
        rows, total = await self._memory.visible(
            viewer,
            participant=where.participant,
            tag=where.tag,
            q=where.q or None,  # an empty search matches everything: no filter
            page=page,
            page_size=page_size,
        )
        return MemoryPage(
            items=[MemoryEntry.model_validate(row.model_dump()) for row in rows],
            total=total,
            page=page,
            page_size=page_size,
            has_more=(page - 1) * page_size + len(rows) < total,
        )
