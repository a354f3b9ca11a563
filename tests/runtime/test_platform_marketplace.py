"""The task marketplace's rules and its money, on both engines: every status change once, every
escrow settled once, the ledger summing to zero after each test (and after concurrent requests)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from runtime.errors import ConflictError, ForbiddenError, InputError, InsufficientFunds, NotFoundError
from runtime.platform.marketplace import Marketplace, TaskDraft
from runtime.store import Store
from runtime.store.platform_ledger import grant
from runtime.store.platform_nodes import insert_node
from tests.conftest import assert_ledger_balanced

pytestmark = pytest.mark.both_engines

START = 100_000  # cents: 1,000 credits each


class Clock:
    """The marketplace's time, moved by the test (deadlines without waiting)."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def store(store_target: str | Path) -> AsyncIterator[Store]:
    async with Store.open(store_target) as store:
        async with store.transaction() as conn:
            for node in ("alice", "bob", "carol"):
                await insert_node(conn, node, "registered", node)
                await grant(conn, node, START, "signup")
        yield store
        await assert_ledger_balanced(store)  # after whatever the test did: no credit made up or lost


@pytest.fixture
def market(store: Store, clock: Clock) -> Marketplace:
    return Marketplace(store, None, clock)


def draft(budget: int = 50_000, **fields: object) -> TaskDraft:
    values: dict[str, object] = {
        "title": "A股每日复盘报告",
        "description": "对今日A股市场进行技术分析",
        "required_capabilities": ["stock_analysis", "text_generation"],
        "budget": budget,
    }
    return TaskDraft.model_validate(values | fields)


async def test_publish_holds_the_budget_in_escrow(store: Store, market: Marketplace) -> None:
    task = await market.publish("alice", draft())
    assert task.status == "open" and task.id.startswith("task_")
    assert task.capabilities == ["stock_analysis", "text_generation"]
    wallet = await store.ledger.wallet("alice")
    assert (wallet.balance, wallet.frozen) == (START - 50_000, 50_000)
    assert await store.ledger.hold_state(task.id) == "open"


async def test_a_budget_over_the_balance_creates_nothing(store: Store, market: Marketplace) -> None:
    with pytest.raises(InsufficientFunds):
        await market.publish("alice", draft(budget=START + 1))
    page = await market.list_tasks(None, None, 1, 20)
    assert page.total == 0
    wallet = await store.ledger.wallet("alice")
    assert (wallet.balance, wallet.frozen) == (START, 0)


async def test_the_whole_lifecycle_pays_the_acceptor(store: Store, market: Marketplace) -> None:
    task = await market.publish("alice", draft())
    with pytest.raises(ForbiddenError):
        await market.accept(task.id, "alice")
    accepted = await market.accept(task.id, "bob")
    assert (accepted.status, accepted.acceptor) == ("progress", "bob")
    with pytest.raises(ConflictError):
        await market.accept(task.id, "carol")
    with pytest.raises(ForbiddenError):
        await market.complete(task.id, "carol", {"report": "not mine"}, None)
    done = await market.complete(task.id, "bob", {"report": "复盘报告", "files": ["report.pdf"]}, "涨跌停")
    assert done.status == "done"
    assert done.deliverables is not None and "复盘报告" in done.deliverables
    assert done.quality_notes == "涨跌停"
    alice, bob = await store.ledger.wallet("alice"), await store.ledger.wallet("bob")
    assert (alice.balance, alice.frozen, alice.total_spent) == (START - 50_000, 0, 50_000)
    assert (bob.balance, bob.frozen, bob.total_earned) == (START + 50_000, 0, 50_000)
    node = await store.nodes.get_node("bob")
    assert node is not None and node.completed_tasks == 1
    with pytest.raises(ConflictError):
        await market.complete(task.id, "bob", {"report": "again"}, None)
    with pytest.raises(ConflictError):
        await market.cancel(task.id, "alice")
    assert (await store.ledger.wallet("bob")).balance == START + 50_000


async def test_completing_an_open_task_is_refused(market: Marketplace) -> None:
    task = await market.publish("alice", draft())
    with pytest.raises(ConflictError):
        await market.complete(task.id, "bob", {"report": "skipped accept"}, None)


async def test_cancel_refunds_and_only_the_publisher_may(store: Store, market: Marketplace) -> None:
    task = await market.publish("alice", draft())
    with pytest.raises(ForbiddenError):
        await market.cancel(task.id, "bob")
    canceled = await market.cancel(task.id, "alice")
    assert canceled.status == "canceled"
    wallet = await store.ledger.wallet("alice")
    assert (wallet.balance, wallet.frozen) == (START, 0)
    with pytest.raises(ConflictError):
        await market.cancel(task.id, "alice")
    with pytest.raises(ConflictError):
        await market.accept(task.id, "bob")


async def test_a_task_in_progress_cannot_be_canceled(store: Store, market: Marketplace) -> None:
    task = await market.publish("alice", draft())
    await market.accept(task.id, "bob")
    with pytest.raises(ConflictError):
        await market.cancel(task.id, "alice")
    assert (await store.ledger.wallet("alice")).frozen == 50_000


async def test_unknown_tasks_are_not_found(market: Marketplace) -> None:
    for attempt in (
        market.get("task_missing"),
        market.accept("task_missing", "bob"),
        market.complete("task_missing", "bob", {}, None),
        market.cancel("task_missing", "alice"),
    ):
        with pytest.raises(NotFoundError):
            await attempt


async def test_an_assigned_task_is_accepted_by_its_assignee_only(market: Marketplace) -> None:
    task = await market.publish("alice", draft(assignee="carol"))
    assert task.status == "open" and task.assignee == "carol"
    with pytest.raises(ForbiddenError):
        await market.accept(task.id, "bob")
    assert (await market.accept(task.id, "carol")).acceptor == "carol"


async def test_an_assignee_must_be_a_node_and_not_the_publisher(market: Marketplace) -> None:
    with pytest.raises(InputError):
        await market.publish("alice", draft(assignee="nobody"))
    with pytest.raises(InputError):
        await market.publish("alice", draft(assignee="alice"))


async def test_a_passed_deadline_cancels_the_task_and_refunds(
    store: Store, market: Marketplace, clock: Clock
) -> None:
    with pytest.raises(InputError):
        await market.publish("alice", draft(deadline=clock.now - 1))
    read, accepted, swept = [
        await market.publish("alice", draft(budget=10_000, deadline=clock.now + 60)) for _ in range(3)
    ]
    unbounded = await market.publish("alice", draft(budget=10_000))
    clock.now += 61
    # A read cancels it before it answers.
    assert (await market.get(read.id)).status == "canceled"
    # An accept after the deadline is refused, and cancels it.
    with pytest.raises(ConflictError, match="deadline"):
        await market.accept(accepted.id, "bob")
    assert (await store.platform_tasks.get(accepted.id)).status == "canceled"  # type: ignore[union-attr]
    # The sweep cancels what no one read.
    assert await market.sweep() == 1
    assert (await store.platform_tasks.get(swept.id)).status == "canceled"  # type: ignore[union-attr]
    assert (await market.get(unbounded.id)).status == "open"
    wallet = await store.ledger.wallet("alice")
    assert (wallet.balance, wallet.frozen) == (START - 10_000, 10_000)
    assert await market.sweep() == 0


async def test_a_task_accepted_before_its_deadline_is_not_expired(market: Marketplace, clock: Clock) -> None:
    task = await market.publish("alice", draft(deadline=clock.now + 60))
    await market.accept(task.id, "bob")
    clock.now += 61
    assert await market.sweep() == 0
    assert (await market.complete(task.id, "bob", {"report": "late but accepted"}, None)).status == "done"


async def test_lists_filter_by_status_and_capability_newest_first(market: Marketplace, clock: Clock) -> None:
    ids = []
    for i in range(5):
        clock.now += 1
        capability = "coding" if i % 2 else "writing"
        ids.append((await market.publish("alice", draft(budget=100, required_capabilities=[capability]))).id)
    await market.accept(ids[0], "bob")
    page = await market.list_tasks(None, None, 1, 2)
    assert page.total == 5 and [t.id for t in page.items] == [ids[4], ids[3]]
    assert [t.id for t in (await market.list_tasks(None, None, 3, 2)).items] == [ids[0]]
    coding = await market.list_tasks(None, "coding", 1, 20)
    assert [t.id for t in coding.items] == [ids[3], ids[1]] and coding.total == 2
    open_writing = await market.list_tasks("open", "writing", 1, 20)
    assert [t.id for t in open_writing.items] == [ids[4], ids[2]]
    assert [t.id for t in (await market.list_tasks("progress", None, 1, 20)).items] == [ids[0]]


async def test_two_concurrent_completes_pay_once(store: Store, market: Marketplace) -> None:
    task = await market.publish("alice", draft())
    await market.accept(task.id, "bob")
    results = await asyncio.gather(
        *(market.complete(task.id, "bob", {"report": str(i)}, None) for i in range(2)),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["ConflictError", "TaskRow"]
    assert (await store.ledger.wallet("bob")).balance == START + 50_000
    node = await store.nodes.get_node("bob")
    assert node is not None and node.completed_tasks == 1


async def test_a_complete_racing_a_cancel_moves_the_money_once(store: Store, market: Marketplace) -> None:
    # In progress: the complete wins, the cancel is refused.
    task = await market.publish("alice", draft())
    await market.accept(task.id, "bob")
    done, refused = await asyncio.gather(
        market.complete(task.id, "bob", {"report": "r"}, None),
        market.cancel(task.id, "alice"),
        return_exceptions=True,
    )
    assert not isinstance(done, BaseException) and done.status == "done"
    assert isinstance(refused, ConflictError)
    # Open: an accept and the publisher's cancel race; whichever wins, the escrow moves once.
    other = await market.publish("alice", draft(budget=20_000))
    results = await asyncio.gather(
        market.accept(other.id, "carol"), market.cancel(other.id, "alice"), return_exceptions=True
    )
    assert sum(isinstance(r, ConflictError) for r in results) == 1
    final = await store.platform_tasks.get(other.id)
    assert final is not None
    alice = await store.ledger.wallet("alice")
    if final.status == "canceled":
        assert (alice.balance, alice.frozen) == (START - 50_000, 0)
    else:
        assert final.status == "progress" and alice.frozen == 20_000


async def test_two_hundred_concurrent_accepts_have_one_winner(store: Store, market: Marketplace) -> None:
    async with store.transaction() as conn:
        for i in range(200):
            await insert_node(conn, f"node{i}", "registered", f"node{i}")
    task = await market.publish("alice", draft())
    results = await asyncio.gather(
        *(market.accept(task.id, f"node{i}") for i in range(200)), return_exceptions=True
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(r, ConflictError) for r in results if isinstance(r, BaseException))
    final = await store.platform_tasks.get(task.id)
    assert final is not None and final.status == "progress" and final.acceptor == winners[0].acceptor
