"""The agent platform's double-entry ledger: ``ledger_entries``, ``ledger_postings``,
``ledger_balances`` and ``ledger_holds``.

Every movement of credits is one entry whose postings sum to zero. The write functions take the
caller's connection, so a caller composes them with its own statements in ONE transaction (publish
a task and hold its budget; complete it and release the hold): either all of it is stored or none.

Accounts are strings: ``node:<id>:available``, ``node:<id>:escrow``, ``issuer`` (where grants come
from, so it only goes negative) and ``house``. Amounts are hundredths of a credit (cents).

Balances are kept in ``ledger_balances`` by the statement that posts, and each posting records the
balance it left (``balance_after``). An entry updates its balances before it takes an id: the
balance rows' locks (PostgreSQL) or the single writer (SQLite) order the entries of one account, so
their ids increase in the order their balances changed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel
from sqlalchemy import ColumnElement, and_, case, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from runtime.errors import InsufficientFunds
from runtime.store.database import Database
from runtime.store.schema import ledger_balances, ledger_entries, ledger_holds, ledger_postings

__all__ = [
    "HOUSE",
    "ISSUER",
    "EntryKind",
    "LedgerQueries",
    "Transaction",
    "WalletRow",
    "available",
    "escrow",
    "grant",
    "open_hold",
    "post",
    "settle_hold",
]

ISSUER = "issuer"
HOUSE = "house"

EntryKind = Literal["grant", "escrow_hold", "escrow_release", "escrow_refund"]


def available(node_id: str) -> str:
    return f"node:{node_id}:available"


def escrow(node_id: str) -> str:
    return f"node:{node_id}:escrow"


async def post(
    conn: AsyncConnection,
    kind: str,
    postings: Sequence[tuple[str, int]],
    task_id: str | None = None,
    memo: str = "",
) -> int:
    """Record one entry moving ``postings`` (account, signed cents); returns the entry's id.

    The postings must sum to zero and name each account once (ValueError). A node's account going
    below zero raises :class:`InsufficientFunds`; the caller's transaction then rolls back, with
    everything it wrote.

    The balances of one entry are locked in account order, so two entries never wait on each
    other; a transaction that posts SEVERAL entries can still deadlock with one posting the same
    accounts the other way round (PostgreSQL then aborts one), so the marketplace posts one entry
    per transaction.
    """
    if sum(amount for _, amount in postings) != 0:
        raise ValueError(f"a ledger entry must sum to zero: {list(postings)}")
    accounts = [account for account, _ in postings]
    if len(set(accounts)) != len(accounts) or not postings:
        raise ValueError(f"a ledger entry names each account once: {list(postings)}")
    after: dict[str, int] = {}
    # One order for every entry, so two transactions never wait on each other's balance rows.
    for account, amount in sorted(postings):
        balance = await _add_to_balance(conn, account, amount)
        if balance < 0 and (account.endswith(":available") or account.endswith(":escrow")):
            node = account.removeprefix("node:").rsplit(":", 1)[0]
            raise InsufficientFunds(f"insufficient credits: {node} is short by {_credits(-balance)}")
        after[account] = balance
    entry_id = (
        await conn.execute(
            insert(ledger_entries)
            .values(kind=kind, task_id=task_id, memo=memo, created_at=time.time())
            .returning(ledger_entries.c.id)
        )
    ).scalar_one()
    await conn.execute(
        insert(ledger_postings),
        [
            {"entry_id": entry_id, "account": account, "amount": amount, "balance_after": after[account]}
            for account, amount in postings
        ],
    )
    return int(entry_id)


async def _add_to_balance(conn: AsyncConnection, account: str, amount: int) -> int:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(ledger_balances).values(account=account, balance=amount)
    statement = statement.on_conflict_do_update(
        index_elements=[ledger_balances.c.account],
        set_={"balance": ledger_balances.c.balance + statement.excluded.balance},
    ).returning(ledger_balances.c.balance)
    return int((await conn.execute(statement)).scalar_one())


def _credits(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


async def grant(conn: AsyncConnection, node_id: str, cents: int, memo: str) -> int:
    """Credits from the issuer to the node's available balance (kind ``grant``)."""
    if cents <= 0:
        raise ValueError(f"a grant is positive, got {cents}")
    return await post(conn, "grant", [(ISSUER, -cents), (available(node_id), cents)], memo=memo)


async def open_hold(conn: AsyncConnection, hold_id: str, payer: str, cents: int) -> int:
    """Move ``cents`` from the payer's available balance to its escrow, held under ``hold_id``.

    The hold's id is the task's id, and the entry names it as its task.
    """
    if cents <= 0:
        raise ValueError(f"a hold is positive, got {cents}")
    await conn.execute(
        insert(ledger_holds).values(
            id=hold_id, payer=payer, amount=cents, state="open", created_at=time.time()
        )
    )
    return await post(
        conn, "escrow_hold", [(available(payer), -cents), (escrow(payer), cents)], task_id=hold_id
    )


async def settle_hold(
    conn: AsyncConnection, hold_id: str, outcome: Literal["release", "refund"], payee: str | None
) -> bool:
    """Pay an open hold to ``payee`` (release) or back to its payer (refund); False if settled already.

    The hold's state changes in a conditional UPDATE, so of two transactions settling the same hold
    (a complete racing a cancel) exactly one moves the money; the other gets False and posts nothing.
    """
    if outcome == "release" and payee is None:
        raise ValueError("a release needs a payee")
    state = "released" if outcome == "release" else "refunded"
    row = (
        await conn.execute(
            update(ledger_holds)
            .where(ledger_holds.c.id == hold_id, ledger_holds.c.state == "open")
            .values(state=state, settled_at=time.time())
            .returning(ledger_holds.c.payer, ledger_holds.c.amount)
        )
    ).first()
    if row is None:
        return False
    payer, cents = str(row.payer), int(row.amount)
    to = available(payee) if outcome == "release" and payee is not None else available(payer)
    await post(conn, f"escrow_{outcome}", [(escrow(payer), -cents), (to, cents)], task_id=hold_id)
    return True


class WalletRow(BaseModel):
    """A node's wallet, in cents."""

    balance: int
    frozen: int
    total_earned: int
    total_spent: int


class Transaction(BaseModel):
    """One entry as a node sees it: ``amount`` is the change of its available + escrow balances."""

    id: int
    type: str
    amount: int
    task_id: str | None
    balance_after: int
    frozen_after: int
    created_at: float


class LedgerQueries:
    """The read side: wallets, statements, the invariant."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def wallet(self, node_id: str) -> WalletRow:
        own, held = available(node_id), escrow(node_id)
        releases = (
            select(
                func.coalesce(
                    func.sum(case((ledger_postings.c.account == own, ledger_postings.c.amount), else_=0)), 0
                ).label("earned"),
                func.coalesce(
                    func.sum(case((ledger_postings.c.account == held, -ledger_postings.c.amount), else_=0)), 0
                ).label("spent"),
            )
            .select_from(
                ledger_postings.join(ledger_entries, ledger_entries.c.id == ledger_postings.c.entry_id)
            )
            .where(ledger_postings.c.account.in_((own, held)), ledger_entries.c.kind == "escrow_release")
        )
        async with self._db.connect() as conn:
            balances = dict(
                (
                    await conn.execute(
                        select(ledger_balances.c.account, ledger_balances.c.balance).where(
                            ledger_balances.c.account.in_((own, held))
                        )
                    )
                ).all()
            )
            totals = (await conn.execute(releases)).one()
        return WalletRow(
            balance=int(balances.get(own, 0)),
            frozen=int(balances.get(held, 0)),
            total_earned=int(totals.earned),
            total_spent=int(totals.spent),
        )

    async def transactions(self, node_id: str, page: int, page_size: int) -> tuple[list[Transaction], int]:
        """The node's entries, newest first, one page of them, and how many there are in all."""
        own, held = available(node_id), escrow(node_id)
        mine = ledger_postings.c.account.in_((own, held))
        total_query = select(func.count(func.distinct(ledger_postings.c.entry_id))).where(mine)
        grouped = (
            select(ledger_postings.c.entry_id, func.sum(ledger_postings.c.amount).label("amount"))
            .where(mine)
            .group_by(ledger_postings.c.entry_id)
            .order_by(ledger_postings.c.entry_id.desc())
            .limit(page_size)
            .offset((page - 1) * page_size)
            .subquery()
        )
        query = (
            select(
                ledger_entries.c.id,
                ledger_entries.c.kind,
                ledger_entries.c.task_id,
                ledger_entries.c.created_at,
                grouped.c.amount,
                _balance_at(own, ledger_entries.c.id).label("balance_after"),
                _balance_at(held, ledger_entries.c.id).label("frozen_after"),
            )
            .join(grouped, grouped.c.entry_id == ledger_entries.c.id)
            .order_by(ledger_entries.c.id.desc())
        )
        async with self._db.connect() as conn:
            total = int((await conn.execute(total_query)).scalar_one())
            rows = (await conn.execute(query)).all()
        items = [
            Transaction(
                id=row.id,
                type=row.kind,
                amount=int(row.amount),
                task_id=row.task_id,
                balance_after=int(row.balance_after),
                frozen_after=int(row.frozen_after),
                created_at=row.created_at,
            )
            for row in rows
        ]
        return items, total

    async def ledger_sum(self) -> int:
        """The sum over every posting ever made: zero, always."""
        async with self._db.connect() as conn:
            return int(
                (
                    await conn.execute(select(func.coalesce(func.sum(ledger_postings.c.amount), 0)))
                ).scalar_one()
            )

    async def balances_sum(self) -> int:
        """The sum of every account's kept balance: zero, always, and equal to the postings'."""
        async with self._db.connect() as conn:
            return int(
                (
                    await conn.execute(select(func.coalesce(func.sum(ledger_balances.c.balance), 0)))
                ).scalar_one()
            )

    async def hold_state(self, hold_id: str) -> str | None:
        async with self._db.connect() as conn:
            return (
                await conn.execute(select(ledger_holds.c.state).where(ledger_holds.c.id == hold_id))
            ).scalar_one_or_none()


def _balance_at(account: str, entry_id: ColumnElement[int]) -> ColumnElement[int]:
    """The account's balance once entry ``entry_id`` was in (0 before its first posting)."""
    latest = (
        select(ledger_postings.c.balance_after)
        .where(and_(ledger_postings.c.account == account, ledger_postings.c.entry_id <= entry_id))
        .order_by(ledger_postings.c.entry_id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return func.coalesce(latest, 0)
