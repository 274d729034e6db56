"""From the decoded recorded states, the venue-native math (aggregator/venues/hyperliquid.py)
reproduces Hyperliquid's own crossMaintenanceMarginUsed, cross accountValue, isolated
marginUsed and liquidationPx to 1e-6 relative, for every case the fixtures' README says the
formula holds for (not the 2023 liquidation prices, which came from an older formula)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hl_fixtures import body_of, case, cases

from aggregator.venues.hyperliquid import (
    cross_account_value,
    cross_health,
    cross_maintenance_margin,
    isolated_margin_used,
    position_liquidation_price,
    venue_positions,
)
from chains.hyperliquid.decoders import ClearinghouseState, decode_clearinghouse_state

FILE = "clearinghouse_state.json"
NEW_FORMAT = [c["name"] for c in cases(FILE) if "2023" not in c["name"]]
ISOLATED = {
    "jkorf_hype_isolated_long": (Decimal("7.525754"), Decimal("35.8559189474")),
    "docs_eth_isolated_long": (Decimal("4.967826"), Decimal("2866.26936529")),
    "ccxt_isolated_short_position": (Decimal("18.564417"), Decimal("50.2724802381")),
    "ccxt_hip3_isolated_long_flx": (Decimal("3.459702"), Decimal("64.2010892308")),
}
REL = Decimal("1e-6")


def state_of(name: str) -> ClearinghouseState:
    return decode_clearinghouse_state(body_of(case(FILE, name)))


def close(ours: Decimal, theirs: Decimal) -> bool:
    return abs(ours - theirs) <= REL * max(abs(theirs), Decimal("1e-12"))


@pytest.mark.parametrize("name", NEW_FORMAT)
def test_cross_maintenance_margin_is_hyperliquids(name: str) -> None:
    state = state_of(name)
    assert state.cross_maintenance_margin_used is not None

    ours = cross_maintenance_margin(venue_positions(state.positions))

    if state.cross_maintenance_margin_used == 0:
        assert ours == 0
    else:
        assert close(ours, state.cross_maintenance_margin_used)


def test_the_nonzero_cross_maintenance_margin_is_141_579994() -> None:
    state = state_of("ccxt_fetch_positions_cross_two_longs")
    ours = cross_maintenance_margin(venue_positions(state.positions))
    assert ours == Decimal("141.579994")  # (463.9594 + 13694.04) / 100, exactly


@pytest.mark.parametrize("name", [c["name"] for c in cases(FILE)])
def test_cross_account_value_is_hyperliquids(name: str) -> None:
    state = state_of(name)
    positions = venue_positions(state.positions, default_max_leverage=Decimal(50))

    ours = cross_account_value(state.cross_margin_summary.total_raw_usd, positions)

    assert close(ours, state.cross_margin_summary.account_value)


@pytest.mark.parametrize(("name", "expected"), ISOLATED.items())
def test_isolated_margin_used_is_hyperliquids(name: str, expected: tuple[Decimal, Decimal]) -> None:
    state = state_of(name)
    (position,) = venue_positions(state.positions)

    ours = isolated_margin_used(position)

    assert close(ours, expected[0])
    assert close(ours, state.positions[0].margin_used)
    assert close(
        state.cross_margin_summary.account_value + ours, state.margin_summary.account_value
    )


@pytest.mark.parametrize(("name", "expected"), ISOLATED.items())
def test_isolated_liquidation_price_is_hyperliquids(
    name: str, expected: tuple[Decimal, Decimal]
) -> None:
    state = state_of(name)
    positions = venue_positions(state.positions)

    ours = position_liquidation_price(
        positions[0], state.cross_margin_summary.total_raw_usd, positions
    )

    assert ours is not None and close(ours, expected[1])
    assert state.positions[0].liquidation_px == expected[1]


def test_the_exact_cases_match_to_the_shown_digits() -> None:
    for name in ("jkorf_hype_isolated_long", "ccxt_isolated_short_position"):
        state = state_of(name)
        positions = venue_positions(state.positions)
        ours = position_liquidation_price(positions[0], Decimal(0), positions)
        assert ours is not None
        assert ours.quantize(Decimal("1e-10")) == state.positions[0].liquidation_px


@pytest.mark.parametrize("name", ["ccxt_fetch_positions_cross_two_longs"])
def test_a_null_liquidation_price_is_one_the_formula_puts_at_or_below_zero(name: str) -> None:
    state = state_of(name)
    positions = venue_positions(state.positions)

    for position, decoded in zip(positions, state.positions, strict=True):
        assert decoded.liquidation_px is None
        assert (
            position_liquidation_price(
                position, state.cross_margin_summary.total_raw_usd, positions
            )
            is None
        )


def test_the_venue_health_of_a_cross_account() -> None:
    state = state_of("ccxt_fetch_positions_cross_two_longs")
    health = cross_health(
        state.cross_margin_summary.total_raw_usd, venue_positions(state.positions)
    )
    assert health.account_value == state.cross_margin_summary.account_value
    assert health.maintenance_margin == Decimal("141.579994")
    assert health.margin_available == Decimal("19620.903461")
    assert health.ratio == Decimal("19762.483455") / Decimal("141.579994")  # 139.585...
    assert health.ratio is not None and health.ratio.quantize(Decimal("0.001")) == Decimal(
        "139.585"
    )
