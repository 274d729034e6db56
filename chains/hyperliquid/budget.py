"""A weight budget per endpoint URL over a sliding window: the adapter's own copy of
Hyperliquid's per-IP rate limit (1,200 weight per minute), never exceeded.

The venue counts a request when it arrives, somewhere between the moment it was sent and the
moment its answer came back. So a request counts against the budget from the moment it is sent
until one window after its answer: then whatever window the venue counts in, it never sees more
than the limit. (Counting from the send time alone lets requests delayed in flight land in the
venue's next window with a full one behind them.) Spending is checked and recorded in one step
with no await in between, so concurrent requests on one event loop cannot overspend together.
After a 429 the budget is closed until the backoff has passed.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class WeightBudget:
    """`limit` weight per `window_seconds`; `try_spend` before a request, `settle` after it."""

    def __init__(
        self,
        limit: int,
        window_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit <= 0 or window_seconds <= 0:
            raise ValueError("a weight budget needs a positive limit and window")
        self.limit = limit
        self.window_seconds = window_seconds
        self._clock = clock
        self._settled: deque[tuple[float, int]] = deque()  # (answer time, weight), in order
        self._settled_weight = 0
        self._in_flight = 0
        self._closed_until = 0.0
        self.total_spent = 0

    def _expire(self, now: float) -> None:
        horizon = now - self.window_seconds
        while self._settled and self._settled[0][0] <= horizon:
            self._settled_weight -= self._settled.popleft()[1]

    def available(self) -> int:
        """Weight that may be spent now (0 while closed after a 429). May raise: nothing."""
        now = self._clock()
        if now < self._closed_until:
            return 0
        self._expire(now)
        return self.limit - self._settled_weight - self._in_flight

    def try_spend(self, weight: int) -> bool:
        """Spend `weight` (in flight until `settle`) if there is room; False, nothing spent,
        otherwise.

        May raise: ValueError (weight above the whole limit: it could never be spent).
        """
        if weight > self.limit:
            raise ValueError(f"weight {weight} exceeds the whole budget of {self.limit}")
        if self.available() < weight:
            return False
        self._in_flight += weight
        self.total_spent += weight
        return True

    def settle(self, weight: int) -> None:
        """`weight` spent earlier has its answer (or will not be sent): it counts for one more
        window from now. May raise: nothing."""
        settled = min(weight, self._in_flight)
        self._in_flight -= settled
        self._settled.append((self._clock(), settled))
        self._settled_weight += settled

    @property
    def closed(self) -> bool:
        """True while the budget is closed after a 429. May raise: nothing."""
        return self._clock() < self._closed_until

    def close_for(self, seconds: float) -> None:
        """Refuse all spending for `seconds` (after a 429). May raise: nothing."""
        self._closed_until = max(self._closed_until, self._clock() + seconds)

    def seconds_until(self, weight: int) -> float:
        """How long until `weight` could be spent if nothing else is, counting requests in
        flight as answered now. May raise: nothing."""
        now = self._clock()
        wait = max(0.0, self._closed_until - now)
        self._expire(now)
        excess = self._settled_weight + self._in_flight + weight - self.limit
        if excess > 0 and self._in_flight + weight > self.limit:
            return max(wait, self.window_seconds)
        for stamp, spent in self._settled:
            if excess <= 0:
                break
            excess -= spent
            wait = max(wait, stamp + self.window_seconds - now)
        return wait
