"""The agent platform's double-entry ledger, on both engines: entries sum to zero, a node never
goes below zero, a hold settles once however many settle it at the same time."""

from __future__ import annotations

import asyncio

import pytest

from runtime.errors import InsufficientFunds
from runtime.store import Store
from runtime.store.platform_ledger import (
    ISSUER,
    available,
    escrow,
    grant,
    open_hold,
    post,
    settle_hold,
)
from runtime.store.platform_nodes import insert_node

pytestmark = pytest.mark.both_engines


async def _funded(store: Store, node_id: str, cents: int) -> None:
    async with store.transaction() as conn:
        assert await insert_node(conn, node_id, "registered", node_id)
        await grant(conn, node_id, cents, "signup")


async def test_an_entry_that_does_not_sum_to_zero_is_refused_and_writes_nothing(
    platform_store: Store,
) -> None:
    await _funded(platform_store, "a", 1000)
    with pytest.raises(ValueError, match="sum to zero"):
        async with platform_store.transaction() as conn:
            await post(conn, "grant", [(ISSUER, -100), (available("a"), 99)])
    with pytest.raises(ValueError, match="each account once"):
        async with platform_store.transaction() as conn:
            await post(conn, "grant", [(available("a"), -100), (available("a"), 100)])
    _, total = await platform_store.ledger.transactions("a", 1, 10)
    assert total == 1


async def test_insufficient_funds_rolls_back_the_callers_whole_transaction(platform_store: Store) -> None:
    await _funded(platform_store, "a", 500)
    with pytest.raises(InsufficientFunds, match=r"a is short by 0\.01"):
        async with platform_store.transaction() as conn:
            await insert_node(conn, "written-in-the-same-transaction", "registered", "x")
            await open_hold(conn, "task_1", "a", 501)
    assert not await platform_store.nodes.node_exists("written-in-the-same-transaction")
    assert await platform_store.ledger.hold_state("task_1") is None
    wallet = await platform_store.ledger.wallet("a")
    assert (wallet.balance, wallet.frozen) == (500, 0)


async def test_release_pays_the_payee_once_and_a_later_refund_moves_nothing(platform_store: Store) -> None:
    await _funded(platform_store, "pub", 100_000)
    await _funded(platform_store, "acc", 0 + 1)
    async with platform_store.transaction() as conn:
        await open_hold(conn, "task_1", "pub", 50_000)
    held = await platform_store.ledger.wallet("pub")
    assert (held.balance, held.frozen) == (50_000, 50_000)
    async with platform_store.transaction() as conn:
        assert await settle_hold(conn, "task_1", "release", "acc")
    async with platform_store.transaction() as conn:
        assert not await settle_hold(conn, "task_1", "refund", None)
        assert not await settle_hold(conn, "task_1", "release", "acc")
    payer, payee = await platform_store.ledger.wallet("pub"), await platform_store.ledger.wallet("acc")
    assert payer.model_dump() == {"balance": 50_000, "frozen": 0, "total_earned": 0, "total_spent": 50_000}
    assert payee.model_dump() == {"balance": 50_001, "frozen": 0, "total_earned": 50_000, "total_spent": 0}
    assert await platform_store.ledger.hold_state("task_1") == "released"


async def test_a_refund_returns_the_hold_to_the_payer(platform_store: Store) -> None:
    await _funded(platform_store, "pub", 1000)
    async with platform_store.transaction() as conn:
        await open_hold(conn, "task_1", "pub", 700)
    async with platform_store.transaction() as conn:
        assert await settle_hold(conn, "task_1", "refund", None)
    wallet = await platform_store.ledger.wallet("pub")
    assert wallet.model_dump() == {"balance": 1000, "frozen": 0, "total_earned": 0, "total_spent": 0}
    assert await platform_store.ledger.hold_state("task_1") == "refunded"


async def test_concurrent_settles_of_one_hold_move_the_money_once(platform_store: Store) -> None:
    await _funded(platform_store, "pub", 100_000)
    await _funded(platform_store, "acc", 100)
    for n in range(5):
        async with platform_store.transaction() as conn:
            await open_hold(conn, f"task_{n}", "pub", 1000)

    async def settle(hold: str, outcome: str) -> bool:
        async with platform_store.transaction() as conn:
            return await settle_hold(conn, hold, outcome, "acc" if outcome == "release" else None)  # type: ignore[arg-type]

    for n in range(5):
        hold = f"task_{n}"
        results = await asyncio.gather(*(settle(hold, "release" if i % 2 else "refund") for i in range(8)))
        assert results.count(True) == 1, results
    payer, payee = await platform_store.ledger.wallet("pub"), await platform_store.ledger.wallet("acc")
    assert payer.frozen == 0
    assert payer.balance + payee.balance == 100_000 + 100  # moved once each: nothing made up or lost
    assert payee.total_earned == payer.total_spent


async def test_concurrent_holds_never_overdraw(platform_store: Store) -> None:
    await _funded(platform_store, "pub", 1000)

    async def hold(n: int) -> bool:
        try:
            async with platform_store.transaction() as conn:
                await open_hold(conn, f"task_{n}", "pub", 300)
        except InsufficientFunds:
            return False
        return True

    results = await asyncio.gather(*(hold(n) for n in range(10)))
    assert results.count(True) == 3
    wallet = await platform_store.ledger.wallet("pub")
    assert (wallet.balance, wallet.frozen) == (100, 900)


async def test_payments_both_ways_at_once_do_not_deadlock(platform_store: Store) -> None:
    await _funded(platform_store, "a", 10_000)
    await _funded(platform_store, "b", 10_000)

    async def pay(payer: str, payee: str, n: int) -> None:
        # As the marketplace does it: publish (hold) and complete (release) are transactions of their own.
        async with platform_store.transaction() as conn:
            await open_hold(conn, f"{payer}_{n}", payer, 10)
        async with platform_store.transaction() as conn:
            assert await settle_hold(conn, f"{payer}_{n}", "release", payee)

    await asyncio.gather(*(pay("a", "b", n) for n in range(20)), *(pay("b", "a", n) for n in range(20)))
    a, b = await platform_store.ledger.wallet("a"), await platform_store.ledger.wallet("b")
    assert (a.balance, b.balance) == (10_000, 10_000)
    assert a.total_earned == a.total_spent == 200


async def test_a_statement_is_newest_first_with_the_balances_after_each_entry(platform_store: Store) -> None:
    await _funded(platform_store, "pub", 100_000)
    await _funded(platform_store, "acc", 500)
    async with platform_store.transaction() as conn:
        await open_hold(conn, "task_1", "pub", 30_000)
    async with platform_store.transaction() as conn:
        await settle_hold(conn, "task_1", "release", "acc")
    lines, total = await platform_store.ledger.transactions("pub", 1, 10)
    assert total == 3
    assert [(t.type, t.amount, t.task_id, t.balance_after, t.frozen_after) for t in lines] == [
        ("escrow_release", -30_000, "task_1", 70_000, 0),
        ("escrow_hold", 0, "task_1", 70_000, 30_000),
        ("grant", 100_000, None, 100_000, 0),
    ]
    page_two, total = await platform_store.ledger.transactions("pub", 2, 2)
    assert [t.type for t in page_two] == ["grant"] and total == 3
    lines, _ = await platform_store.ledger.transactions("acc", 1, 10)
    assert [(t.type, t.amount, t.balance_after) for t in lines] == [
        ("escrow_release", 30_000, 30_500),
        ("grant", 500, 500),
    ]


async def test_accounts_are_named_by_node() -> None:
    assert available("n1") == "node:n1:available"
    assert escrow("n1") == "node:n1:escrow"
