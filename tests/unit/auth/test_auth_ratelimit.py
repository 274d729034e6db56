"""Token buckets: bursts, refill, and the header numbers, on an injected clock."""

from __future__ import annotations

import pytest

from aggregator.auth.ratelimit import RateLimiter, TokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_its_capacity_then_refuses_with_retry_after() -> None:
    clock = FakeClock()
    bucket = TokenBucket(3, 1.0, clock)
    decisions = [bucket.take() for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    refused = decisions[3]
    assert (refused.retry_after, refused.reset, refused.limit) == (1, 3, 3)


def test_a_refused_bucket_serves_again_once_a_token_refills() -> None:
    clock = FakeClock()
    bucket = TokenBucket(2, 0.5, clock)  # one token per 2 s
    bucket.take()
    bucket.take()
    clock.now += 1.0
    half = bucket.take()
    assert (half.allowed, half.retry_after, half.reset) == (False, 1, 3)  # 0.5 token held
    clock.now += 1.0
    again = bucket.take()
    assert (again.allowed, again.remaining, again.reset) == (True, 0, 4)


def test_refill_stops_at_capacity() -> None:
    clock = FakeClock()
    bucket = TokenBucket(5, 10.0, clock)
    bucket.take()
    clock.now += 3600
    decision = bucket.take()
    assert (decision.remaining, decision.reset) == (4, 1)


def test_per_minute_is_a_burst_of_n_refilled_at_n_per_60_s() -> None:
    clock = FakeClock()
    bucket = TokenBucket.per_minute(60, clock)
    assert all(bucket.take().allowed for _ in range(60))
    refused = bucket.take()
    assert (refused.allowed, refused.retry_after, refused.reset) == (False, 1, 60)
    clock.now += 30
    assert bucket.take().remaining == 29


def test_headers_carry_the_numbers_and_retry_after_only_when_refused() -> None:
    clock = FakeClock()
    bucket = TokenBucket(1, 0.25, clock)
    assert bucket.take().headers() == {
        "RateLimit-Limit": "1",
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": "4",
    }
    assert bucket.take().headers() == {
        "RateLimit-Limit": "1",
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": "4",
        "Retry-After": "4",
    }


def test_a_clock_going_backwards_refills_nothing() -> None:
    clock = FakeClock()
    bucket = TokenBucket(1, 1.0, clock)
    bucket.take()
    clock.now -= 100
    assert not bucket.take().allowed


def test_limiter_keeps_one_bucket_per_key() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock)
    assert limiter.take("a", 1).allowed
    assert not limiter.take("a", 1).allowed
    assert limiter.take("b", 1).allowed


def test_limiter_drops_idle_buckets_first_when_full() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock, max_buckets=2)
    limiter.take("busy", 1)
    limiter.take("idle", 60)
    clock.now += 1.0  # "idle" is full again, "busy" is not
    limiter.take("new", 1)
    assert not limiter.take("busy", 1).allowed


@pytest.mark.parametrize(("capacity", "refill"), [(0, 1.0), (1, 0.0)])
def test_a_bucket_needs_capacity_and_refill(capacity: int, refill: float) -> None:
    with pytest.raises(ValueError):
        TokenBucket(capacity, refill)
