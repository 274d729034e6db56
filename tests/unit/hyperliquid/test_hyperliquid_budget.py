"""The adapter's weight budget: never more than the limit inside any window however late the
venue counts a request (from its send to its answer), room comes back as the window slides, and
a 429 closes it for the backoff."""

from __future__ import annotations

import pytest

from chains.hyperliquid.budget import WeightBudget


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def spend(budget: WeightBudget, weight: int) -> bool:
    """A request answered at once."""
    if not budget.try_spend(weight):
        return False
    budget.settle(weight)
    return True


def test_spending_stops_at_the_limit_and_nothing_is_spent_by_a_refusal() -> None:
    clock = Clock()
    budget = WeightBudget(1200, 60.0, clock)

    assert spend(budget, 20)
    spent = sum(4 for _ in range(400) if spend(budget, 4))

    assert spent == 1180  # 295 accounts of 4 after the 20 of metaAndAssetCtxs
    assert budget.available() == 0
    assert not budget.try_spend(2)
    assert budget.total_spent == 1200


def test_room_returns_one_window_after_the_answer() -> None:
    clock = Clock()
    budget = WeightBudget(100, 60.0, clock)
    assert budget.try_spend(60)
    clock.now += 30  # the answer comes back 30 s later: the 60 count until 30 + 60
    budget.settle(60)
    assert spend(budget, 40)
    assert not budget.try_spend(1)
    assert budget.seconds_until(60) == pytest.approx(60.0)
    clock.now += 60  # both answered at 1030: both leave the window at 1090
    assert budget.available() == 100
    assert spend(budget, 100) and not budget.try_spend(1)


def test_weight_in_flight_counts_until_its_answer() -> None:
    clock = Clock()
    budget = WeightBudget(10, 1.0, clock)
    assert budget.try_spend(8)
    clock.now += 5  # still no answer: it still counts
    assert budget.available() == 2
    budget.settle(8)
    clock.now += 1.0
    assert budget.available() == 10


def test_no_window_the_venue_could_count_in_holds_more_than_the_limit() -> None:
    """Requests sent at s, answered at s + latency, counted by the venue at any moment
    between: every window of the venue's holds at most the limit."""
    clock = Clock()
    budget = WeightBudget(50, 10.0, clock)
    in_flight: list[tuple[float, float, int]] = []  # (sent, answer due, weight)
    done: list[tuple[float, float, int]] = []
    for step in range(3000):
        clock.now += 0.037
        for entry in [e for e in in_flight if e[1] <= clock.now]:
            in_flight.remove(entry)
            budget.settle(entry[2])
            done.append(entry)
        weight = 2 if step % 7 else 20
        if budget.try_spend(weight):
            in_flight.append((clock.now, clock.now + 0.05 + (step % 13) * 0.3, weight))
    for counted_at in (0.0, 0.5, 1.0):  # the venue counts at send, midway, or at answer
        stamps = [(s + (a - s) * counted_at, w) for s, a, w in done]
        for start, _ in stamps:
            assert sum(w for t, w in stamps if start <= t < start + 10.0) <= 50


def test_a_429_closes_the_budget_for_the_backoff() -> None:
    clock = Clock()
    budget = WeightBudget(1200, 60.0, clock)
    budget.close_for(2.0)
    assert budget.closed and budget.available() == 0 and not budget.try_spend(2)
    assert budget.seconds_until(2) == pytest.approx(2.0)
    clock.now += 2.0
    assert not budget.closed and spend(budget, 2)


def test_a_request_heavier_than_the_whole_budget_is_an_error() -> None:
    with pytest.raises(ValueError, match="exceeds the whole budget"):
        WeightBudget(10, 60.0).try_spend(20)
