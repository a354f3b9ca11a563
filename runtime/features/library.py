"""A user's library: named system prompts and personalizations (preferences), one table each.

Both kinds share one shape (name, content, timestamps) and one set of rules: names are unique per
owner, another owner's items do not exist for the caller, and each owner may keep at most
``MAX_ITEMS`` of each kind. :meth:`Library.compose_system_prompt` turns them into a run's system
prompt.
"""

from __future__ import annotations

from runtime.errors import ConflictError, NotFoundError
from runtime.store import Store
from runtime.store.library import Kind, LibraryItem

__all__ = [
    "DEFAULT_PERSONALIZATION",
    "MAX_CONTENT_CHARS",
    "MAX_ITEMS",
    "NAME_PATTERN",
    "Kind",
    "Library",
    "LibraryItem",
]

# The first character is a letter or digit so that every name is a usable URL segment ("." and
# ".." would be normalised away by clients before they reach GET /api/v1/prompts/{name}).
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
MAX_CONTENT_CHARS = 20_000
MAX_ITEMS = 200
DEFAULT_PERSONALIZATION = "default"
PREFERENCES_HEADER = "---\nUser preferences:"


class Library:
    """The ``prompts`` and ``personalizations`` tables of the store."""

    def __init__(self, store: Store) -> None:
        self._rows = store.library

    async def list(self, kind: Kind, owner: str) -> list[LibraryItem]:
        return await self._rows.list(kind, owner)

    async def get(self, kind: Kind, owner: str, name: str) -> LibraryItem:
        """The item; :class:`NotFoundError` if the owner has none by that name."""
        item = await self._rows.find(kind, owner, name)
        if item is None:
            raise NotFoundError(f"{kind} {name!r} not found")
        return item

    async def put(self, kind: Kind, owner: str, name: str, content: str) -> LibraryItem:
        """Create the item, or replace its content (keeping ``created_at``).

        A new name when the owner already has ``MAX_ITEMS`` items is a :class:`ConflictError`. The
        limit is checked in the same statement as the insert, so concurrent requests cannot pass it.
        """
        written = await self._rows.put(kind, owner, name, content, MAX_ITEMS)
        if not written:
            raise ConflictError(
                f"{kind} limit reached: {MAX_ITEMS} per user; replace an existing {kind} instead"
            )
        return await self.get(kind, owner, name)

    async def compose_system_prompt(
        self, owner: str, base: str, prompt_name: str | None, personalization_name: str | None
    ) -> str:
        """The system prompt of a run.

        The named prompt replaces ``base``; the personalization (``personalization_name``, or the
        owner's ``default`` one if it exists when None) is appended as a delimited "User
        preferences:" section. A name given but missing is a :class:`NotFoundError`.
        """
        system = base if prompt_name is None else (await self.get("prompt", owner, prompt_name)).content
        if personalization_name is None:
            preferences = await self._rows.find("personalization", owner, DEFAULT_PERSONALIZATION)
        else:
            preferences = await self.get("personalization", owner, personalization_name)
        if preferences is None:
            return system
        return f"{system}\n\n{PREFERENCES_HEADER}\n{preferences.content}"
