"""Token buckets for per-key rate limits, with the numbers the `RateLimit-*` and `Retry-After`
headers carry.

A bucket holds up to `capacity` tokens and gains `refill_per_second` continuously; a request
takes one. `rate_per_minute = N` is a bucket of capacity N refilled at N/60 per second: a burst
of N, then one request every 60/N seconds. The clock is injected (monotonic seconds), so tests
and the HTTP layer decide what time it is.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class RateDecision:
    """The answer for one request.

    `retry_after` is 0 when allowed, else the seconds until one token is back; `reset` is the
    seconds until the bucket is full again; both are rounded up to whole seconds, as headers
    carry them.
    """

    allowed: bool
    limit: int
    remaining: int
    retry_after: int
    reset: int

    def headers(self) -> dict[str, str]:
        """`RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset`, and `Retry-After` when
        refused."""
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after)
        return headers


class TokenBucket:
    """One bucket, full at creation."""

    def __init__(self, capacity: int, refill_per_second: float, clock: Clock = time.monotonic):
        """May raise: ValueError (capacity < 1 or refill <= 0)."""
        if capacity < 1 or not refill_per_second > 0:
            raise ValueError("a bucket needs capacity >= 1 and a positive refill rate")
        self.capacity = capacity
        self.refill_per_second = refill_per_second
        self._clock = clock
        self._tokens = float(capacity)
        self._updated = clock()

    @classmethod
    def per_minute(cls, rate_per_minute: int, clock: Clock = time.monotonic) -> TokenBucket:
        """A burst of `rate_per_minute`, refilled at `rate_per_minute / 60` per second."""
        return cls(rate_per_minute, rate_per_minute / 60.0, clock)

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(float(self.capacity), self._tokens + elapsed * self.refill_per_second)
        self._updated = now

    @property
    def full(self) -> bool:
        """True when no request has been taken that is not yet refilled (an idle bucket)."""
        self._refill()
        return self._tokens >= self.capacity

    def take(self, cost: int = 1) -> RateDecision:
        """Take `cost` tokens if there are that many; the decision either way (a refusal takes
        nothing)."""
        self._refill()
        allowed = self._tokens >= cost
        if allowed:
            self._tokens -= cost
        missing_for_next = max(0.0, cost - self._tokens)
        return RateDecision(
            allowed=allowed,
            limit=self.capacity,
            remaining=math.floor(self._tokens + 1e-9),
            retry_after=0 if allowed else _ceil_seconds(missing_for_next / self.refill_per_second),
            reset=_ceil_seconds((self.capacity - self._tokens) / self.refill_per_second),
        )


def _ceil_seconds(seconds: float) -> int:
    # Float noise (2.0000000001) must not add a whole second.
    return max(0, math.ceil(seconds - 1e-9))


class RateLimiter:
    """Buckets by key (an API key's public id, a session's user), made on first use.

    At most `max_buckets` are kept: when full, idle (full) buckets are dropped first; a bucket
    that has been dropped starts full again, which only ever errs toward allowing.
    """

    def __init__(self, clock: Clock = time.monotonic, max_buckets: int = 10_000) -> None:
        self._clock = clock
        self._max_buckets = max_buckets
        self._buckets: dict[str, TokenBucket] = {}

    def take(self, key: str, rate_per_minute: int) -> RateDecision:
        """One request by `key` under a limit of `rate_per_minute`. A changed limit for a key
        starts a new bucket.

        May raise: ValueError (rate_per_minute < 1).
        """
        bucket = self._buckets.get(key)
        if bucket is None or bucket.capacity != rate_per_minute:
            if len(self._buckets) >= self._max_buckets:
                self._evict()
            bucket = TokenBucket.per_minute(rate_per_minute, self._clock)
            self._buckets[key] = bucket
        return bucket.take()

    def _evict(self) -> None:
        idle = [key for key, bucket in self._buckets.items() if bucket.full]
        for key in idle or list(self._buckets)[: max(1, len(self._buckets) // 10)]:
            del self._buckets[key]
