"""The root finder behind venue liquidation prices and shocks (`aggregator.venues.assess`):
exact on a linear margin, within one step on a rounded one, across a kink, and None where no
price liquidates (flat, or touching zero without crossing)."""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal

from aggregator.venues.assess import _root

D = Decimal


def test_a_linear_margin_is_solved_exactly() -> None:
    assert _root(lambda p: 10 * p * D("0.825") - 24000, D(3000)) == D(24000) / D("8.25")


def test_a_margin_rounded_to_a_base_unit_is_solved_to_that_unit() -> None:
    def margin(p: Decimal) -> Decimal:
        base = (p * 10**8).to_integral_value(ROUND_FLOOR) / 10**8
        return 10 * base * D("0.825") - 24000

    root = _root(margin, D(3000))
    assert root is not None and abs(root - D(24000) / D("8.25")) <= D("1e-8")


def test_a_kinked_margin_finds_the_crossing() -> None:
    # maintenance at 1/50 below 10,000 notional, at 1/20 above: a tier kink before the root
    def margin(p: Decimal) -> Decimal:
        notional = 10 * p
        maintenance = notional / 50 if notional < 10_000 else notional / 20
        return notional - 9_000 - maintenance

    root = _root(margin, D(3000))
    assert root is not None and abs(margin(root)) < D("1e-12")
    assert root < D(3000)


def test_no_root_when_nothing_liquidates() -> None:
    assert _root(lambda p: D(5), D(3000)) is None  # nothing owed: flat
    assert _root(lambda p: (p - 2) ** 2 + 1, D(3)) is None  # never below zero
