"""Aave v3's account math (aggregator/venues/aave.py) on hand-computed cases: totals, weighted
averages, health factor rounding of both published revisions, no debt, liquidation prices."""

from __future__ import annotations

from decimal import Decimal

import pytest

from aggregator.venues.aave import (
    NO_DEBT_HEALTH_FACTOR,
    WAD,
    AaveReserve,
    account,
    debt_value_base,
    liquidation_price,
    mul_div_ceil,
    percent_mul,
    percent_mul_floor,
    reserve_from_reads,
    wad_div,
)
from chains.evm.aave_v3 import ReserveConfiguration, UserReserve

ETHER = 10**18


def reserve(
    asset: str,
    collateral: int = 0,
    debt: int = 0,
    *,
    decimals: int = 18,
    price: int = 3_000_00000000,
    threshold: int = 8250,
    ltv: int = 8000,
    collateral_on: bool = True,
) -> AaveReserve:
    return AaveReserve(asset, collateral, debt, decimals, price, threshold, ltv, collateral_on)


def demo_position() -> list[AaveReserve]:
    """1000 USDC + 5 WETH + 0.1 WBTC supplied, 6000 USDC + 0.5 WETH borrowed (the devnet's)."""
    return [
        reserve("USDC", 1_000_000_000, 6_000_000_000, decimals=6, price=1_00000000, threshold=7800,
                ltv=7500),
        reserve("WETH", 5 * ETHER, ETHER // 2),
        reserve("WBTC", 10_000_000, decimals=8, price=60_000_00000000, threshold=7800, ltv=7300),
    ]  # fmt: skip


def test_percentage_and_wad_math_round_half_up_like_aave() -> None:
    assert percent_mul(1, 5000) == 1  # 0.5 rounds up
    assert percent_mul(1, 4999) == 0
    assert percent_mul(3, 5000) == 2  # 1.5 rounds up
    assert percent_mul_floor(3, 5000) == 1
    assert percent_mul(2_200_000_000_000, 8106) == 1_783_320_000_000
    assert wad_div(1, 3) == 333_333_333_333_333_333
    assert wad_div(2, 3) == 666_666_666_666_666_667  # .666… rounds up
    assert wad_div(1, 2) == WAD // 2
    assert mul_div_ceil(1, 3_000_00000000, ETHER) == 1
    assert mul_div_ceil(ETHER, 3_000_00000000, ETHER) == 3_000_00000000
    with pytest.raises(ZeroDivisionError):
        wad_div(1, 0)


def test_the_demo_position_under_v3_core_rules() -> None:
    result = account(demo_position())
    assert result.total_collateral_base == 2_200_000_000_000  # 1000 + 15000 + 6000 USD
    assert result.total_debt_base == 750_000_000_000  # 6000 + 1500 USD
    # (1000*7800 + 15000*8250 + 6000*7800) / 22000 = 8106.8… -> 8106
    assert result.avg_liquidation_threshold_bps == 8106
    # (1000*7500 + 15000*8000 + 6000*7300) / 22000 = 7786.3… -> 7786
    assert result.avg_ltv_bps == 7786
    # percentMul(22000, 8106) = 17833.2 USD; / 7500 = 2.37776
    assert result.health_factor_wad == 2_377_760_000_000_000_000
    assert result.health_factor == Decimal("2.37776")
    # percentMul(22000, 7786) - 7500 = 9629.2 USD
    assert result.available_borrows_base == 962_920_000_000
    assert not result.has_zero_ltv_collateral
    assert not result.liquidatable


def test_v3_origin_rules_use_the_unrounded_weighted_threshold() -> None:
    result = account(demo_position(), "v3-origin")
    # sum(value * threshold) = 17835 USD * 1e4; wadDiv by 7500 USD then / 1e4 = 2.378
    assert result.health_factor_wad == 2_378_000_000_000_000_000
    assert result.avg_liquidation_threshold_bps == 8106  # the reported average is still floored
    assert result.available_borrows_base == 962_920_000_000  # percentMulFloor: exact here


def test_health_factor_rounding_edge_half_up_in_both_steps() -> None:
    # collateral worth 3 base units at a 50% threshold: percentMul(3, 5000) = 2 (1.5 up);
    # debt 3 base units: wadDiv(2, 3) = 0.666…667 (up). Floor division would give 0.333….
    tiny = [
        reserve("A", 3, decimals=0, price=1, threshold=5000, ltv=5000),
        reserve("B", debt=3, decimals=0, price=1),
    ]
    assert account(tiny).health_factor_wad == 666_666_666_666_666_667
    # v3-origin: wadDiv(3 * 5000, 3) / 1e4 = 5000e18 / 1e4 = 0.5 exactly
    assert account(tiny, "v3-origin").health_factor_wad == WAD // 2
    assert account(tiny, "v3-origin").liquidatable


def test_values_round_down_and_origin_debt_rounds_up() -> None:
    dust = reserve("WETH", debt=1)  # 1 wei at 3000 USD is 3e-7 of a base unit
    assert debt_value_base(dust) == 0
    assert debt_value_base(dust, "v3-origin") == 1
    collateral = reserve("WBTC", 10_000_000, decimals=8, price=60_000_00000000)
    # v3-core: the dust debt is worth 0, so nothing is owed; v3-origin owes 1 base unit
    assert account([collateral, dust]).health_factor_wad == NO_DEBT_HEALTH_FACTOR
    assert account([collateral, dust], "v3-origin").total_debt_base == 1
    assert account([reserve("WETH", 1)]).total_collateral_base == 0


def test_no_debt_is_uint256_max_and_no_health_factor() -> None:
    result = account([reserve("WETH", ETHER)])
    assert result.health_factor_wad == NO_DEBT_HEALTH_FACTOR == 2**256 - 1
    assert result.health_factor is None
    assert result.total_collateral_base == 3_000_00000000
    assert result.available_borrows_base == 2_400_00000000
    empty = account([])
    assert (empty.total_collateral_base, empty.total_debt_base, empty.avg_ltv_bps) == (0, 0, 0)
    assert empty.health_factor_wad == NO_DEBT_HEALTH_FACTOR


def test_only_enabled_collateral_with_a_threshold_counts() -> None:
    debt = reserve("USDC", debt=1_000_000_000, decimals=6, price=1_00000000)
    off = reserve("WETH", ETHER, collateral_on=False)
    frozen = reserve("WBTC", 10_000_000, decimals=8, price=60_000_00000000, threshold=0, ltv=0)
    zero_ltv = reserve("DAI", 1_000 * ETHER, price=1_00000000, threshold=8000, ltv=0)
    result = account([debt, off, frozen, zero_ltv])
    assert result.total_collateral_base == 1_000_00000000  # only the DAI
    assert result.avg_liquidation_threshold_bps == 8000
    assert result.avg_ltv_bps == 0
    assert result.has_zero_ltv_collateral
    assert result.health_factor_wad == 8 * WAD // 10  # 800 / 1000
    assert result.liquidatable
    assert result.available_borrows_base == 0


def test_negative_inputs_and_unknown_rules_are_rejected() -> None:
    with pytest.raises(ValueError, match="negative"):
        account([reserve("WETH", -1)])
    with pytest.raises(ValueError, match="unknown Aave rules"):
        account([], "v2")  # type: ignore[arg-type]


def test_liquidation_price_of_a_collateral_and_of_a_debt() -> None:
    position = [
        reserve("WETH", ETHER),
        reserve("USDC", debt=1_000_000_000, decimals=6, price=1_00000000),
    ]
    weth = liquidation_price(position, "WETH")
    usdc = liquidation_price(position, "USDC")
    assert weth is not None and usdc is not None
    assert weth == Decimal(1000) / Decimal("0.825")  # 1212.1212… USD
    assert usdc == Decimal("2.475")  # 3000 * 0.825 / 1000
    at_weth = [reserve("WETH", ETHER, price=int(weth.scaleb(8))), position[1]]
    assert abs(account(at_weth).health_factor_wad - WAD) < WAD // 10**9


def test_liquidation_price_is_none_without_a_way_to_liquidate() -> None:
    no_debt = [reserve("WETH", ETHER)]
    assert liquidation_price(no_debt, "WETH") is None
    # the USDC collateral alone covers the WETH debt: no WBTC price liquidates
    covered = [
        reserve("USDC", 10_000_000_000, decimals=6, price=1_00000000, threshold=7800, ltv=7500),
        reserve("WETH", debt=ETHER),
        reserve("WBTC", 1_000_000, decimals=8, price=60_000_00000000, threshold=7800, ltv=7300),
    ]
    assert liquidation_price(covered, "WBTC") is None
    # a supplied asset not used as collateral moves nothing
    idle = [*covered[:2], reserve("WBTC", 1_000_000, decimals=8, collateral_on=False)]
    assert liquidation_price(idle, "WBTC") is None
    # ...but the WETH debt does: 10000 USDC * 0.78 buys 1 WETH at 7800 USD
    assert liquidation_price(idle, "WETH") == Decimal(7800)
    with pytest.raises(KeyError):
        liquidation_price(covered, "DAI")


def test_liquidation_price_nets_a_supply_and_a_borrow_of_the_same_asset() -> None:
    # 2 WETH supplied at 82.5%, 1 WETH borrowed, 1000 USDC borrowed:
    # 2 * 0.825 * p = 1 * p + 1000  ->  p = 1000 / 0.65
    position = [
        reserve("WETH", 2 * ETHER, ETHER),
        reserve("USDC", debt=1_000_000_000, decimals=6, price=1_00000000),
    ]
    assert liquidation_price(position, "WETH") == Decimal(1000) / Decimal("0.65")


def test_a_reserve_from_the_decoded_reads() -> None:
    config = ReserveConfiguration(18, 8000, 8250, 10500, 1500, True, True, False, True, False)
    read = reserve_from_reads("WETH", UserReserve(ETHER, 0, 5, True), config, 3_000_00000000)
    assert read == reserve("WETH", ETHER, 5)
