"""Per-endpoint health, retry backoff and try order, shared by every chain family's RPC pool.

Each family keeps its own transport (web3 for EVM, solana-py for Solana); what an endpoint has
done, how long to wait before retrying it and which endpoint to try first are decided here, once.
This module imports nothing from `chains`, so `chains.base` can import it without a cycle.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass

# An endpoint whose last request failed within this many seconds is tried after the others.
COOLDOWN_SECONDS = 30.0


@dataclass(slots=True)
class EndpointHealth:
    """What one endpoint has done so far; pools order by it, operators and tests read it."""

    url: str
    successes: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    last_error: str | None = None
    last_latency_seconds: float | None = None
    last_success_at: float | None = None  # unix seconds
    last_failure_at: float | None = None  # unix seconds

    def record_success(self, latency_seconds: float) -> None:
        """Count an answered request and end any run of failures. May raise: nothing."""
        self.successes += 1
        self.consecutive_failures = 0
        self.last_latency_seconds = latency_seconds
        self.last_success_at = time.time()

    def record_failure(self, error: str, latency_seconds: float) -> None:
        """Count a failed request and remember why. May raise: nothing."""
        self.failures += 1
        self.consecutive_failures += 1
        self.last_error = error
        self.last_latency_seconds = latency_seconds
        self.last_failure_at = time.time()

    @property
    def healthy(self) -> bool:
        """True when the last request to this endpoint did not fail (or none was sent)."""
        return self.consecutive_failures == 0

    @property
    def cooling_down(self) -> bool:
        """True when the last request to this endpoint failed less than 30 s ago."""
        if self.healthy or self.last_failure_at is None:
            return False
        return time.time() - self.last_failure_at < COOLDOWN_SECONDS


def jittered_backoff(attempt: int, base_seconds: float) -> float:
    """Seconds to wait before retry number `attempt` (1 = first retry) of one endpoint:
    `base_seconds * 2**(attempt - 1)`, scaled by a uniform factor in [0.5, 1.5] so that
    clients failing together do not retry together.

    May raise: nothing.
    """
    return base_seconds * float(2 ** (attempt - 1)) * random.uniform(0.5, 1.5)


def order_for_attempt(healths: Sequence[EndpointHealth]) -> list[int]:
    """Positions in `healths` in the order to try the endpoints: healthy ones first, then
    ones that failed but are no longer cooling down, then ones cooling down; configured order
    within each group (the sort is stable).

    May raise: nothing.
    """
    return sorted(
        range(len(healths)),
        key=lambda i: (healths[i].cooling_down, not healths[i].healthy),
    )
