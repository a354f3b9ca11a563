"""The recommendation feed: public capabilities and open tasks, ranked for the caller.

The ranking: first the items matching the caller's capabilities (an open task needing one of
them, a public capability of a category among them), then the others; within each tier the
owner's trust first (the publisher's, the capability owner's), then the newest; ties by kind
(tasks first) and id. The caller's own items are left out.

Pages are keyset walks: each tier is a merge of streams read from indexes in this order, strictly
after the last item shown (:mod:`runtime.store.platform_feed`), and the cursor says where that
was (:mod:`runtime.platform.feed_cursor`). An item published during a walk lands either before the
cursor (not shown in this walk) or after it (shown once); no item is shown twice, because keys only
grow along the walk and the order is fixed for it. A rating changing an owner's trust moves that
owner's items; a change of the caller's capabilities changes the tiers, so such a cursor is stale.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from runtime.platform.feed_cursor import CursorSigner, FeedPosition
from runtime.platform.money import CreditsOut
from runtime.store import Store
from runtime.store.platform_feed import FeedKey, FeedRow, ItemKind

__all__ = ["MATCHING", "OTHERS", "Feed", "FeedItem", "FeedPage"]

MATCHING, OTHERS = 0, 1  # the tiers, in feed order


class FeedItem(BaseModel):
    type: ItemKind = Field(description="task (an open marketplace task) or capability (a public one).")
    id: str = Field(description="The task id (GET /v1/tasks/{id}) or capability id (order it by this id).")
    title: str = Field(description="The task's title or the capability's name.")
    description: str
    owner: str = Field(description="The publisher of the task, the owner of the capability (a node id).")
    tags: list[str] = Field(description="A task's required capabilities; a capability's category.")
    amount: CreditsOut = Field(description="A task's budget, a capability's price per order (credits).")
    owner_trust: float = Field(description="The owner's trust score, the ranking's second key.")
    created_at: float = Field(description="Unix seconds.")
    matched: bool = Field(description="True when it matches one of your capabilities (ranked first).")

    @classmethod
    def of(cls, row: FeedRow, tier: int) -> FeedItem:
        return cls(
            type=row.kind,
            id=row.id,
            title=row.title,
            description=row.description,
            owner=row.owner,
            tags=row.tags,
            amount=row.amount,
            owner_trust=row.trust,
            created_at=row.created_at,
            matched=tier == MATCHING,
        )


class FeedPage(BaseModel):
    items: list[FeedItem]
    has_more: bool
    next_cursor: str | None = Field(description="Send it as cursor for the next page; null on the last.")


class Feed:
    def __init__(self, store: Store, signer: CursorSigner) -> None:
        self._rows = store.feed
        self._signer = signer

    async def page(self, user: str, page_size: int, cursor: str | None) -> FeedPage:
        capabilities = await self._rows.node_capabilities(user)
        if cursor is not None:
            position = self._signer.decode(cursor, user, capabilities)
        else:
            position = FeedPosition(tier=MATCHING if capabilities else OTHERS, key=None)
        # One item more than the page says whether there is a next page.
        found: list[tuple[int, FeedRow]] = []
        tier, after = position.tier, position.key
        while len(found) <= page_size and tier <= OTHERS:
            rows, exhausted = await self._read(tier, after, page_size + 1 - len(found), user, capabilities)
            found.extend((tier, row) for row in rows)
            if exhausted:
                tier, after = tier + 1, None
            else:
                after = rows[-1].key
        shown = found[:page_size]
        next_cursor = None
        if len(found) > page_size:
            last_tier, last = shown[-1]
            next_cursor = self._signer.encode(user, capabilities, FeedPosition(tier=last_tier, key=last.key))
        return FeedPage(
            items=[FeedItem.of(row, t) for t, row in shown],
            has_more=next_cursor is not None,
            next_cursor=next_cursor,
        )

    async def _read(
        self, tier: int, after: FeedKey | None, want: int, user: str, capabilities: list[str]
    ) -> tuple[list[FeedRow], bool]:
        """Up to ``want`` items of ``tier`` after ``after``, in order; True when the tier has no more."""
        taken: list[FeedRow] = []
        while True:
            streams = await self._streams(tier, after, want, user, capabilities)
            full = [rows[-1].key for rows in streams if len(rows) == want]
            # Every stream is read in order, so a row is in its final place once no stream that
            # stopped at the limit could still hold a row before it.
            bound = max(full) if full else None
            merged = sorted((row for rows in streams for row in rows), key=lambda row: row.key, reverse=True)
            seen: set[tuple[str, str]] = set()  # a task matching two capabilities comes in two streams
            for row in merged:
                if bound is not None and row.key < bound:
                    break
                after = row.key
                if (row.kind, row.id) in seen:
                    continue
                seen.add((row.kind, row.id))
                if tier == OTHERS and set(row.tags) & set(capabilities):
                    continue  # shown in the matching tier
                taken.append(row)
            if len(taken) >= want:
                return taken[:want], False
            if bound is None:
                return taken, True

    async def _streams(
        self, tier: int, after: FeedKey | None, limit: int, user: str, capabilities: list[str]
    ) -> list[list[FeedRow]]:
        if tier == OTHERS:
            return [
                await self._rows.open_tasks(None, after, limit, user),
                await self._rows.public_capabilities(None, after, limit, user),
            ]
        streams = [await self._rows.open_tasks(c, after, limit, user) for c in capabilities]
        streams += [await self._rows.public_capabilities(c, after, limit, user) for c in capabilities]
        return streams
