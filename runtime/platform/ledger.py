"""Wallets and statements (``/v1/wallet``, ``/v1/transactions``): the ledger as a node sees it.

``balance`` is what the node may spend (its available account); ``frozen`` what it has in escrow
for its open tasks; ``total_earned`` / ``total_spent`` sum the escrow releases it received / paid.
A statement line's ``amount`` is the entry's change to the node's available + escrow balances (a
hold moves credits between the two: 0), ``balance_after`` and ``frozen_after`` the two balances
once the entry was in.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from runtime.platform.money import CreditsOut
from runtime.store import Store

__all__ = ["TransactionLine", "TransactionPage", "Wallet", "Wallets"]


class Wallet(BaseModel):
    balance: CreditsOut = Field(description="Credits the node may spend (frozen ones excluded).")
    frozen: CreditsOut = Field(description="Credits held in escrow for the node's open tasks.")
    total_earned: CreditsOut = Field(description="Sum of the task payments received.")
    total_spent: CreditsOut = Field(description="Sum of the task payments made.")


class TransactionLine(BaseModel):
    id: int
    type: str = Field(description="grant, escrow_hold, escrow_release or escrow_refund.")
    amount: CreditsOut = Field(description="Change of balance + frozen (signed).")
    task_id: str | None
    balance_after: CreditsOut
    frozen_after: CreditsOut
    created_at: float = Field(description="Unix seconds.")


class TransactionPage(BaseModel):
    items: list[TransactionLine]
    total: int
    page: int
    page_size: int
    has_more: bool


class Wallets:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def wallet(self, node_id: str) -> Wallet:
        return Wallet.model_validate((await self._store.ledger.wallet(node_id)).model_dump())

    async def transactions(self, node_id: str, page: int, page_size: int) -> TransactionPage:
        rows, total = await self._store.ledger.transactions(node_id, page, page_size)
        return TransactionPage(
            items=[TransactionLine.model_validate(row.model_dump()) for row in rows],
            total=total,
            page=page,
            page_size=page_size,
            has_more=(page - 1) * page_size + len(rows) < total,
        )
