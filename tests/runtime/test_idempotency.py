"""Idempotency keys in the store: claim, replay, mismatch, in flight, release, expiry, restart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from runtime.errors import ConflictError, InputError, UnprocessableError
from runtime.features.idempotency import INTERRUPTED, IdempotencyStore, StoredResponse, check_key, fingerprint
from runtime.store import Store

pytestmark = pytest.mark.both_engines

TTL = 100.0
ANSWER = StoredResponse(status=202, content_type="application/json", body=b'{"task_id": "t1"}')


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def store(store_target: str | Path) -> AsyncIterator[Store]:
    async with Store.open(store_target) as store:
        yield store


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def keys(store: Store, clock: Clock) -> IdempotencyStore:
    return IdempotencyStore(store, TTL, clock)


async def test_first_answer_is_replayed_for_the_same_request(keys: IdempotencyStore) -> None:
    assert await keys.begin("alice", "k1", "fp") is None
    await keys.complete("alice", "k1", ANSWER)

    assert await keys.begin("alice", "k1", "fp") == ANSWER
    assert await keys.begin("alice", "k1", "fp") == ANSWER


async def test_another_request_under_the_key_is_unprocessable(keys: IdempotencyStore) -> None:
    assert await keys.begin("alice", "k1", "fp") is None
    with pytest.raises(UnprocessableError, match="different request"):
        await keys.begin("alice", "k1", "other")  # also while the first is in flight
    await keys.complete("alice", "k1", ANSWER)

    with pytest.raises(UnprocessableError):
        await keys.begin("alice", "k1", "other")


async def test_a_key_in_flight_is_a_conflict(keys: IdempotencyStore) -> None:
    assert await keys.begin("alice", "k1", "fp") is None

    with pytest.raises(ConflictError, match="still being processed"):
        await keys.begin("alice", "k1", "fp")


async def test_concurrent_begins_claim_the_key_once(keys: IdempotencyStore) -> None:
    results = await asyncio.gather(
        *(keys.begin("alice", "k1", "fp") for _ in range(20)), return_exceptions=True
    )

    assert results.count(None) == 1
    assert all(isinstance(r, ConflictError) for r in results if r is not None)


async def test_a_released_key_may_be_sent_again_even_with_another_request(keys: IdempotencyStore) -> None:
    assert await keys.begin("alice", "k1", "fp") is None
    await keys.release("alice", "k1")

    assert await keys.begin("alice", "k1", "other") is None


async def test_release_never_frees_a_completed_key(keys: IdempotencyStore) -> None:
    assert await keys.begin("alice", "k1", "fp") is None
    await keys.complete("alice", "k1", ANSWER)
    await keys.release("alice", "k1")

    assert await keys.begin("alice", "k1", "fp") == ANSWER


async def test_a_key_without_a_replayable_answer_is_a_conflict_with_its_reason(
    keys: IdempotencyStore,
) -> None:
    assert await keys.begin("alice", "k1", "fp") is None
    await keys.complete_without_response("alice", "k1", "answered with a stream")

    with pytest.raises(ConflictError, match="answered with a stream"):
        await keys.begin("alice", "k1", "fp")


async def test_keys_are_per_owner_and_per_scope(keys: IdempotencyStore) -> None:
    assert await keys.begin("alice", "k1", "fp") is None
    await keys.complete("alice", "k1", ANSWER)

    assert await keys.begin("bob", "k1", "other") is None
    assert await keys.begin("alice", "k1", "other", scope="capability_invoke") is None
    assert await keys.begin("alice", "k1", "fp") == ANSWER


async def test_a_key_expires_ttl_seconds_after_its_answer(keys: IdempotencyStore, clock: Clock) -> None:
    assert await keys.begin("alice", "k1", "fp") is None
    clock.now += 50
    await keys.complete("alice", "k1", ANSWER)
    clock.now += TTL - 1  # 149 s after the request, 99 s after its answer: still kept
    assert await keys.begin("alice", "k1", "fp") == ANSWER

    clock.now += 1
    assert await keys.begin("alice", "k1", "other") is None  # free again, for any request


async def test_a_key_in_flight_never_expires(keys: IdempotencyStore, clock: Clock) -> None:
    assert await keys.begin("alice", "k1", "fp") is None
    clock.now += TTL * 10

    assert await keys.purge_expired() == 0
    with pytest.raises(ConflictError, match="still being processed"):
        await keys.begin("alice", "k1", "fp")


async def test_purge_deletes_only_expired_keys(keys: IdempotencyStore, store: Store, clock: Clock) -> None:
    for key in ("old1", "old2"):
        assert await keys.begin("alice", key, "fp") is None
        await keys.complete("alice", key, ANSWER)
    clock.now += TTL / 2
    assert await keys.begin("alice", "new", "fp") is None
    await keys.complete("alice", "new", ANSWER)
    clock.now += TTL / 2

    assert await keys.purge_expired() == 2
    assert await store.idempotency.keys() == ["new"]


async def test_a_key_left_in_flight_by_a_stopped_worker_is_never_run_again(store_target: str | Path) -> None:
    async with Store.open(store_target) as store:
        assert await IdempotencyStore(store, TTL).begin("alice", "k1", "fp") is None  # then the worker dies

    async with Store.open(store_target) as store:
        keys = IdempotencyStore(store, TTL)
        assert await keys.interrupt_in_flight() == 1
        with pytest.raises(ConflictError) as raised:
            await keys.begin("alice", "k1", "fp")
    assert str(raised.value) == INTERRUPTED


@pytest.mark.parametrize("key", ["a", "x" * 255, "8e03978e-40d5-43e8-bc93-6894a57f9324", "with space ~!"])
def test_valid_keys(key: str) -> None:
    assert check_key(key) == key


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there", "naïve", "line\nbreak"])
def test_invalid_keys_are_input_errors(key: str) -> None:
    with pytest.raises(InputError, match="1 to 255 printable ASCII"):
        check_key(key)


def test_fingerprint_tells_apart_how_the_parts_are_split() -> None:
    assert fingerprint("POST", "/a", b"{}") == fingerprint("POST", "/a", b"{}")
    assert fingerprint("POST", "/a", b"{}") != fingerprint("POST", "/a", b"{ }")
    assert fingerprint("ab", "c") != fingerprint("a", "bc")
