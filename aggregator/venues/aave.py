"""Aave v3's own account math, in integers: what `Pool.getUserAccountData` reports.

Rules (GenericLogic.calculateUserAccountData, PercentageMath, WadRayMath):
- a reserve's value in base currency = balance * price // 10**decimals (price from the venue's
  oracle, base units: 1e8 = 1 USD on USD markets);
- collateral counts only where the user uses the reserve as collateral and its liquidation
  threshold is not 0; a collateral with LTV 0 adds nothing to the LTV sum (and is flagged);
- avgLtv and avgLiquidationThreshold = value-weighted sums // total collateral (rounded down),
  0 without collateral;
- healthFactor is 2**256-1 without debt.

Two published revisions differ in rounding, and both are here (`AaveRules`):
- "v3-core" (aave/aave-v3-core, the v3.0-v3.4 pools): debt value rounded down;
  healthFactor = percentMul(totalCollateral, avgLiquidationThreshold) wadDiv totalDebt, both
  half-up; availableBorrows = percentMul(totalCollateral, avgLtv) - totalDebt (0 when below).
- "v3-origin" (aave-dao/aave-v3-origin GenericLogic at 00cec228): debt value rounded up
  (mulDivCeil); healthFactor = (sum of value * threshold) wadDiv totalDebt // 10000;
  availableBorrows = percentMulFloor(totalCollateral, avgLtv) - totalDebt.

E-mode and isolation mode are not modelled (a user in an e-mode category takes the category's
threshold and LTV instead of the reserve's). Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from chains.evm.aave_v3 import ReserveConfiguration, UserReserve

WAD = 10**18
HALF_WAD = WAD // 2
PERCENTAGE_FACTOR = 10_000
HALF_PERCENTAGE_FACTOR = PERCENTAGE_FACTOR // 2
USD_BASE_UNIT = 10**8
UINT256_MAX = 2**256 - 1
NO_DEBT_HEALTH_FACTOR = UINT256_MAX

AaveRules = Literal["v3-core", "v3-origin"]

_ZERO = Decimal(0)


def percent_mul(value: int, percentage_bps: int) -> int:
    """PercentageMath.percentMul: value * percentage / 1e4, half-up."""
    return (value * percentage_bps + HALF_PERCENTAGE_FACTOR) // PERCENTAGE_FACTOR


def percent_mul_floor(value: int, percentage_bps: int) -> int:
    """PercentageMath.percentMulFloor: value * percentage / 1e4, rounded down."""
    return value * percentage_bps // PERCENTAGE_FACTOR


def wad_div(a: int, b: int) -> int:
    """WadRayMath.wadDiv: a * 1e18 / b, half-up. May raise: ZeroDivisionError (b = 0)."""
    return (a * WAD + b // 2) // b


def mul_div_ceil(a: int, b: int, denominator: int) -> int:
    """MathUtils.mulDivCeil: a * b / denominator, rounded up.

    May raise: ZeroDivisionError (denominator 0).
    """
    return -((-a * b) // denominator)


@dataclass(frozen=True, slots=True)
class AaveReserve:
    """One reserve of one user as Aave's account math takes it (raw integers).

    `collateral_raw` is the aToken balance and `debt_raw` the debt token balance, both in the
    underlying's units; `price_base` is the venue oracle's price in base units.
    """

    asset: str
    collateral_raw: int
    debt_raw: int
    decimals: int
    price_base: int
    liquidation_threshold_bps: int
    ltv_bps: int
    usage_as_collateral: bool

    @property
    def counts_as_collateral(self) -> bool:
        return self.usage_as_collateral and self.liquidation_threshold_bps != 0

    @property
    def unit(self) -> int:
        return int(10**self.decimals)


@dataclass(frozen=True, slots=True)
class AaveAccount:
    """The venue's numbers for one user, in `getUserAccountData` units (base, bps, WAD)."""

    total_collateral_base: int
    total_debt_base: int
    available_borrows_base: int
    avg_liquidation_threshold_bps: int
    avg_ltv_bps: int
    health_factor_wad: int
    has_zero_ltv_collateral: bool

    @property
    def health_factor(self) -> Decimal | None:
        """The health factor as a Decimal; None when nothing is owed."""
        if self.health_factor_wad == NO_DEBT_HEALTH_FACTOR:
            return None
        return Decimal(self.health_factor_wad) / Decimal(WAD)

    @property
    def liquidatable(self) -> bool:
        """Aave lets a position be liquidated below a health factor of 1 (WAD)."""
        return self.health_factor_wad < WAD


def reserve_from_reads(
    asset: str, user_reserve: UserReserve, config: ReserveConfiguration, price_base: int
) -> AaveReserve:
    """An `AaveReserve` from `getUserReserveData`, `getReserveConfigurationData` and
    `getAssetPrice` of one asset read at the same block."""
    return AaveReserve(
        asset=asset,
        collateral_raw=user_reserve.a_token_balance,
        debt_raw=user_reserve.debt,
        decimals=config.decimals,
        price_base=price_base,
        liquidation_threshold_bps=config.liquidation_threshold_bps,
        ltv_bps=config.ltv_bps,
        usage_as_collateral=user_reserve.usage_as_collateral,
    )


def collateral_value_base(reserve: AaveReserve) -> int:
    """The reserve's collateral in base units, rounded down (both revisions)."""
    return reserve.collateral_raw * reserve.price_base // reserve.unit


def debt_value_base(reserve: AaveReserve, rules: AaveRules = "v3-core") -> int:
    """The reserve's debt in base units: rounded down ("v3-core") or up ("v3-origin")."""
    if rules == "v3-origin":
        return mul_div_ceil(reserve.debt_raw, reserve.price_base, reserve.unit)
    return reserve.debt_raw * reserve.price_base // reserve.unit


def account(reserves: Iterable[AaveReserve], rules: AaveRules = "v3-core") -> AaveAccount:
    """`getUserAccountData` as Aave computes it from the user's reserves (see module docstring).

    May raise: ValueError (a negative amount or price, or unknown rules).
    """
    if rules not in ("v3-core", "v3-origin"):
        raise ValueError(f"unknown Aave rules {rules!r}")
    total_collateral = 0
    total_debt = 0
    weighted_ltv = 0
    weighted_threshold = 0
    zero_ltv = False
    for reserve in reserves:
        if min(reserve.collateral_raw, reserve.debt_raw, reserve.price_base) < 0:
            raise ValueError(f"{reserve.asset}: negative amount or price")
        if reserve.counts_as_collateral and reserve.collateral_raw > 0:
            value = collateral_value_base(reserve)
            total_collateral += value
            if reserve.ltv_bps != 0:
                weighted_ltv += value * reserve.ltv_bps
            else:
                zero_ltv = True
            weighted_threshold += value * reserve.liquidation_threshold_bps
        if reserve.debt_raw > 0:
            total_debt += debt_value_base(reserve, rules)
    avg_ltv = weighted_ltv // total_collateral if total_collateral else 0
    avg_threshold = weighted_threshold // total_collateral if total_collateral else 0
    if total_debt == 0:
        health = NO_DEBT_HEALTH_FACTOR
    elif rules == "v3-origin":
        health = wad_div(weighted_threshold, total_debt) // PERCENTAGE_FACTOR
    else:
        health = wad_div(percent_mul(total_collateral, avg_threshold), total_debt)
    if rules == "v3-origin":
        borrowable = percent_mul_floor(total_collateral, avg_ltv)
    else:
        borrowable = percent_mul(total_collateral, avg_ltv)
    return AaveAccount(
        total_collateral_base=total_collateral,
        total_debt_base=total_debt,
        available_borrows_base=max(borrowable - total_debt, 0),
        avg_liquidation_threshold_bps=avg_threshold,
        avg_ltv_bps=avg_ltv,
        health_factor_wad=health,
        has_zero_ltv_collateral=zero_ltv,
    )


def liquidation_price(
    reserves: Sequence[AaveReserve], asset: str, base_unit: int = USD_BASE_UNIT
) -> Decimal | None:
    """The price of one unit of `asset` (in USD for a USD market) at which the health factor
    reaches 1 with every other price and every balance fixed, or None when no positive price
    does that (the asset moves nothing, or the account cannot be liquidated through it).

    Solved over the value-weighted thresholds, sum(collateral value * threshold) = total debt,
    which is the "v3-origin" health factor up to base-unit rounding. Under "v3-core" the average
    threshold is floored to whole bps first, so there the health factor at this price is lower
    by less than 1 bps / average threshold (about 1.2e-4 relative at 80%): the venue liquidates
    that much sooner.

    May raise: KeyError (`asset` is not among `reserves`).
    """
    if not any(r.asset == asset for r in reserves):
        raise KeyError(asset)
    scale = Decimal(base_unit)
    weighted_other = _ZERO
    debt_other = _ZERO
    exposure = _ZERO  # d(weighted collateral - debt) / d(price of `asset`), in units of `asset`
    for reserve in reserves:
        unit = Decimal(reserve.unit)
        threshold = Decimal(reserve.liquidation_threshold_bps) / PERCENTAGE_FACTOR
        collateral = (
            Decimal(reserve.collateral_raw) / unit if reserve.counts_as_collateral else _ZERO
        )
        debt = Decimal(reserve.debt_raw) / unit
        if reserve.asset == asset:
            exposure += collateral * threshold - debt
        else:
            price = Decimal(reserve.price_base) / scale
            weighted_other += collateral * price * threshold
            debt_other += debt * price
    if exposure == 0:
        return None
    price = (debt_other - weighted_other) / exposure
    return price if price > 0 else None
