"""Trust: who may rate whom, once per task, and the Bayesian score kept on the node."""

from __future__ import annotations

import asyncio
import math
import time

import pytest
from pydantic import ValidationError

from runtime.errors import ConflictError, ForbiddenError, NotFoundError
from runtime.platform.trust import PRIOR_MEAN, RateRequest, Trust, evidence, trust_score
from runtime.store import Store
from runtime.store.platform_ledger import grant
from runtime.store.platform_nodes import insert_node
from runtime.store.platform_tasks import NewTask

pytestmark = pytest.mark.both_engines


@pytest.fixture
def store(platform_store: Store) -> Store:
    """The store; its ledger balances when the test ends (the platform_store fixture checks)."""
    return platform_store


async def add_nodes(store: Store, *node_ids: str) -> None:
    async with store.transaction() as conn:
        for node_id in node_ids:
            await insert_node(conn, node_id, "registered", node_id)
            await grant(conn, node_id, 100_000, "signup")


async def task_in(store: Store, status: str, publisher: str = "pub", acceptor: str = "worker") -> str:
    """A task of ``publisher`` taken to ``status`` by ``acceptor`` through the marketplace's store."""
    task_id = f"task_{status}_{time.monotonic_ns()}"
    now = time.time()
    await store.platform_tasks.publish(
        NewTask(
            id=task_id,
            publisher=publisher,
            title="t",
            description="d",
            budget=500,
            capabilities=[],
            assignee=None,
            deadline=None,
            created_at=now,
        )
    )
    if status in ("progress", "done"):
        assert await store.platform_tasks.accept(task_id, acceptor, now)
    if status == "done":
        assert await store.platform_tasks.complete(task_id, acceptor, "{}", None, now)
    return task_id


def rate(agent_id: str, task_id: str, score: float = 5.0, on_time: bool = True) -> RateRequest:
    return RateRequest(agent_id=agent_id, task_id=task_id, quality_score=score, on_time=on_time)


def test_one_perfect_rating_is_not_a_perfect_score() -> None:
    assert trust_score(0, 0.0) == PRIOR_MEAN
    one = trust_score(1, evidence(5.0, True))
    assert PRIOR_MEAN < one < 0.7
    ten = trust_score(10, 10 * evidence(5.0, True))
    assert one < ten < 1.0
    assert trust_score(1, evidence(1.0, True)) < PRIOR_MEAN
    # Late delivery keeps part of the evidence only.
    assert evidence(5.0, False) < evidence(5.0, True) == 1.0
    assert evidence(1.0, True) == 0.0


@pytest.mark.parametrize("score", [0.9, 5.01, -1, True, "4.8", math.nan, math.inf, None])
def test_a_score_outside_one_to_five_or_not_a_number_is_refused(score: object) -> None:
    with pytest.raises(ValidationError):
        RateRequest.model_validate({"agent_id": "a", "task_id": "t", "quality_score": score, "on_time": True})


def test_on_time_must_be_a_boolean() -> None:
    with pytest.raises(ValidationError):
        RateRequest.model_validate({"agent_id": "a", "task_id": "t", "quality_score": 4, "on_time": "yes"})


async def test_the_publisher_rates_the_acceptor_of_a_done_task_once(store: Store) -> None:
    await add_nodes(store, "pub", "worker")
    task_id = await task_in(store, "done")
    trust = Trust(store)

    result = await trust.rate("pub", rate("worker", task_id, 4.8))

    rated, score = result.rating, result.trust_score
    assert (rated.rater, rated.agent_id, rated.quality_score, result.ratings_count) == (
        "pub",
        "worker",
        4.8,
        1,
    )
    assert score == pytest.approx(trust_score(1, evidence(4.8, True)))
    node = await store.nodes.get_node("worker")
    assert node is not None
    assert (node.trust_score, node.ratings_count) == (pytest.approx(score), 1)

    with pytest.raises(ConflictError, match="rated already"):
        await trust.rate("pub", rate("worker", task_id, 1.0))
    report = await trust.report("worker", 1, 20)
    assert (report.ratings_count, report.trust_score) == (1, pytest.approx(score))
    assert [r.quality_score for r in report.ratings] == [4.8]


async def test_only_the_publisher_may_rate_and_only_the_acceptor(store: Store) -> None:
    await add_nodes(store, "pub", "worker", "other")
    task_id = await task_in(store, "done")
    trust = Trust(store)

    with pytest.raises(ForbiddenError, match="publisher"):
        await trust.rate("other", rate("worker", task_id))
    with pytest.raises(ForbiddenError, match="acceptor"):
        await trust.rate("pub", rate("other", task_id))
    with pytest.raises(ForbiddenError):
        await trust.rate("worker", rate("worker", task_id))  # nobody rates themselves
    node = await store.nodes.get_node("worker")
    assert node is not None and node.ratings_count == 0


@pytest.mark.parametrize("status", ["open", "progress"])
async def test_a_task_not_done_cannot_be_rated(store: Store, status: str) -> None:
    await add_nodes(store, "pub", "worker")
    task_id = await task_in(store, status)

    with pytest.raises(ConflictError, match=f"is {status}"):
        await Trust(store).rate("pub", rate("worker", task_id))


async def test_unknown_task_or_agent_is_not_found(store: Store) -> None:
    await add_nodes(store, "pub")
    trust = Trust(store)
    with pytest.raises(NotFoundError, match="task"):
        await trust.rate("pub", rate("worker", "task_missing"))
    with pytest.raises(NotFoundError, match="agent"):
        await trust.report("nobody", 1, 20)


async def test_concurrent_ratings_of_one_node_all_count(store: Store) -> None:
    publishers = [f"pub{i}" for i in range(6)]
    await add_nodes(store, "worker", *publishers)
    tasks = [await task_in(store, "done", publisher=p) for p in publishers]
    trust = Trust(store)
    scores = [5.0, 4.0, 3.0, 5.0, 2.0, 4.5]

    await asyncio.gather(
        *(trust.rate(p, rate("worker", t, s)) for p, t, s in zip(publishers, tasks, scores, strict=True))
    )

    node = await store.nodes.get_node("worker")
    assert node is not None
    assert node.ratings_count == 6
    assert node.trust_score == pytest.approx(trust_score(6, sum(evidence(s, True) for s in scores)))


async def test_two_ratings_of_one_task_at_once_record_one(store: Store) -> None:
    await add_nodes(store, "pub", "worker")
    task_id = await task_in(store, "done")
    trust = Trust(store)

    results = await asyncio.gather(
        trust.rate("pub", rate("worker", task_id, 5.0)),
        trust.rate("pub", rate("worker", task_id, 1.0)),
        return_exceptions=True,
    )

    assert sum(isinstance(r, ConflictError) for r in results) == 1
    node = await store.nodes.get_node("worker")
    assert node is not None and node.ratings_count == 1


async def test_history_is_newest_first_and_paged(store: Store) -> None:
    publishers = [f"pub{i}" for i in range(3)]
    await add_nodes(store, "worker", *publishers)
    clock = iter([100.0, 200.0, 300.0])
    trust = Trust(store, clock=lambda: next(clock))
    for i, publisher in enumerate(publishers):
        task_id = await task_in(store, "done", publisher=publisher)
        await trust.rate(publisher, rate("worker", task_id, 1.0 + i))

    first = await trust.report("worker", 1, 2)
    second = await trust.report("worker", 2, 2)

    assert (first.ratings_count, first.has_more, second.has_more) == (3, True, False)
    assert [r.quality_score for r in first.ratings] == [3.0, 2.0]
    assert [r.quality_score for r in second.ratings] == [1.0]
