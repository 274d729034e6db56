"""When a published status is worth a history row and a notification."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from aggregator.store.published.statuses import StatusRecord, changed_materially

ONE_PERCENT = Decimal("0.01")
BASE = StatusRecord(
    user_id=1,
    as_of=datetime(2026, 1, 5, tzinfo=UTC),
    status="healthy",
    stale=False,
    stale_chains=(),
    health_factor=Decimal("2.00"),
    equity_usd=Decimal("1000"),
    weighted_collateral_init_usd=Decimal("800"),
    weighted_collateral_maint_usd=Decimal("900"),
    requirement_init_usd=Decimal("300"),
    requirement_maint_usd=Decimal("360"),
    health_init_usd=Decimal("500"),
    health_maint_usd=Decimal("540"),
    free_collateral_usd=Decimal("500"),
)


def test_the_first_status_is_a_change() -> None:
    assert changed_materially(None, BASE, ONE_PERCENT) is True


@pytest.mark.parametrize(
    ("changes", "material"),
    [
        ({}, False),
        ({"as_of": datetime(2026, 1, 6, tzinfo=UTC)}, False),
        ({"equity_usd": Decimal("1010")}, False),  # exactly 1%: not more than the threshold
        ({"equity_usd": Decimal("1010.01")}, True),
        ({"equity_usd": Decimal("989.99")}, True),
        ({"health_factor": Decimal("2.019")}, False),
        ({"health_factor": Decimal("1.97")}, True),
        ({"health_factor": None}, True),
        ({"free_collateral_usd": Decimal("0")}, False),  # only health and equity are watched
        ({"status": "warning"}, True),
        ({"stale": True, "stale_chains": ("solana",)}, True),
    ],
)
def test_material_change(changes: dict[str, object], material: bool) -> None:
    assert changed_materially(BASE, replace(BASE, **changes), ONE_PERCENT) is material  # type: ignore[arg-type]


def test_from_zero_any_move_is_material_and_none_to_none_is_not() -> None:
    zero = replace(BASE, equity_usd=Decimal("0"), health_factor=None)
    assert changed_materially(zero, replace(zero, equity_usd=Decimal("0.01")), ONE_PERCENT)
    assert not changed_materially(zero, replace(zero), ONE_PERCENT)


def test_another_set_of_stale_chains_is_material_but_their_order_is_not() -> None:
    stale = replace(BASE, stale=True, stale_chains=("solana", "base"))
    assert not changed_materially(
        stale, replace(stale, stale_chains=("base", "solana")), ONE_PERCENT
    )
    assert changed_materially(stale, replace(stale, stale_chains=("base",)), ONE_PERCENT)
