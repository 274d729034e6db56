"""The shared per-endpoint health record, backoff and try order of every chain family."""

from __future__ import annotations

import time

from chains.endpoints import (
    COOLDOWN_SECONDS,
    EndpointHealth,
    jittered_backoff,
    order_for_attempt,
)


def test_health_counts_and_a_success_ends_a_run_of_failures() -> None:
    health = EndpointHealth("http://a")
    health.record_failure("timed out", 0.5)
    health.record_failure("HTTP 502", 0.1)
    assert (health.failures, health.consecutive_failures, health.last_error) == (2, 2, "HTTP 502")
    assert not health.healthy and health.cooling_down
    health.record_success(0.02)
    assert (health.successes, health.consecutive_failures) == (1, 0)
    assert health.healthy and not health.cooling_down
    assert health.last_latency_seconds == 0.02


def test_try_order_healthy_then_recovered_failures_then_cooling_down() -> None:
    cooling = EndpointHealth("http://cooling")
    cooling.record_failure("refused", 0.0)
    old_failure = EndpointHealth("http://old")
    old_failure.record_failure("refused", 0.0)
    assert old_failure.last_failure_at is not None
    old_failure.last_failure_at = time.time() - COOLDOWN_SECONDS - 1
    fresh = EndpointHealth("http://fresh")
    good = EndpointHealth("http://good")
    good.record_success(0.01)
    healths = [cooling, old_failure, fresh, good]
    assert [healths[i].url for i in order_for_attempt(healths)] == [
        "http://fresh",
        "http://good",
        "http://old",
        "http://cooling",
    ]


def test_backoff_doubles_per_attempt_within_the_jitter_band() -> None:
    for attempt, nominal in ((1, 0.2), (2, 0.4), (3, 0.8)):
        waits = [jittered_backoff(attempt, 0.2) for _ in range(200)]
        assert all(0.5 * nominal <= w <= 1.5 * nominal for w in waits)
        assert max(waits) - min(waits) > 0.1 * nominal  # jittered, not constant
