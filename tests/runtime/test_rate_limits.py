"""The in-memory limiter: token bucket per client, concurrency slots, quota as advertised."""

from __future__ import annotations

from runtime.features.rate_limits import Quota, RateLimit, RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def limiter(per_minute: int = 60, concurrency: int = 0) -> tuple[RateLimiter, Clock]:
    clock = Clock()
    return RateLimiter(RateLimit(per_minute=per_minute, concurrency=concurrency), clock), clock


def admit_and_release(limiter: RateLimiter, client: str) -> bool:
    admission = limiter.admit(client)
    if admission.refused is None:
        limiter.release(client)
    return admission.refused is None


def test_a_burst_may_use_the_minute_then_the_sustained_rate_applies() -> None:
    rate, clock = limiter(per_minute=60)

    assert all(admit_and_release(rate, "alice") for _ in range(60))
    refused = rate.admit("alice")
    assert refused.refused is not None and "60 requests a minute" in refused.refused
    assert refused.retry_after == 1  # one token a second
    clock.now += 1
    assert admit_and_release(rate, "alice")
    assert not admit_and_release(rate, "alice")


def test_retry_after_is_the_wait_for_one_token() -> None:
    rate, clock = limiter(per_minute=3)  # a token every 20 s
    for _ in range(3):
        assert admit_and_release(rate, "alice")

    assert rate.admit("alice").retry_after == 20
    clock.now += 15
    assert rate.admit("alice").retry_after == 5


def test_refused_requests_take_no_token() -> None:
    rate, clock = limiter(per_minute=60)
    for _ in range(60):
        admit_and_release(rate, "alice")
    for _ in range(100):
        assert not admit_and_release(rate, "alice")

    clock.now += 1
    assert admit_and_release(rate, "alice")


def test_clients_have_their_own_buckets() -> None:
    rate, _ = limiter(per_minute=2)
    assert admit_and_release(rate, "alice") and admit_and_release(rate, "alice")
    assert not admit_and_release(rate, "alice")

    assert admit_and_release(rate, "bob")


def test_quota_counts_down_and_says_when_it_is_whole_again() -> None:
    rate, clock = limiter(per_minute=120)  # two tokens a second

    first = rate.admit("alice")
    assert first.quota == Quota(limit=120, remaining=119, reset=1)
    for _ in range(9):
        rate.admit("alice")
    assert rate.admit("alice").quota == Quota(limit=120, remaining=109, reset=6)
    clock.now += 60
    assert rate.admit("alice").quota == Quota(limit=120, remaining=119, reset=1)


def test_concurrency_slots_are_held_until_released() -> None:
    rate, _ = limiter(per_minute=0, concurrency=2)
    assert rate.admit("alice").refused is None
    assert rate.admit("alice").refused is None

    refused = rate.admit("alice")
    assert refused.refused is not None and "at most 2" in refused.refused
    assert refused.retry_after == 1
    assert rate.admit("bob").refused is None
    rate.release("alice")
    assert rate.admit("alice").refused is None


def test_a_request_refused_for_concurrency_takes_no_token() -> None:
    rate, _ = limiter(per_minute=2, concurrency=1)
    assert rate.admit("alice").refused is None
    assert rate.admit("alice").refused is not None
    rate.release("alice")

    assert rate.admit("alice").quota == Quota(limit=2, remaining=0, reset=60)


def test_zero_turns_a_limit_off() -> None:
    rate, _ = limiter(per_minute=0, concurrency=0)

    admissions = [rate.admit("alice") for _ in range(1000)]
    assert all(a.refused is None and a.quota is None for a in admissions)


def test_idle_clients_with_a_full_bucket_are_forgotten() -> None:
    rate, clock = limiter(per_minute=60, concurrency=5)
    for n in range(500):
        admit_and_release(rate, f"10.0.0.{n}")
    rate.admit("busy")  # still open: kept
    clock.now += 61

    rate.admit("new")
    assert set(rate._clients) == {"busy", "new"}  # memory stays bounded by recent clients
