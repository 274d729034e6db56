"""Drift v2's own maintenance margin of one cross-margined user account, and its health 0-100.

Rules (drift-labs/protocol-v2 at 0ae3e3b1 (2026-04-01): programs/drift/src/math/margin.rs
`calculate_margin_requirement_and_total_collateral_and_liability_info`,
`calculate_perp_position_value_and_pnl`, `calculate_size_premium_liability_weight`,
`calculate_size_discount_asset_weight`; state/spot_market.rs `get_asset_weight`,
`get_liability_weight`; state/perp_market.rs `get_margin_ratio`, `get_unrealized_asset_weight`;
sdk/src/user.ts `getHealth`), taken at maintenance:

- a spot deposit adds value x asset weight to the total collateral, with value = tokens x oracle
  price and asset weight = min(maintenance_asset_weight, size discount); the size discount, when
  the market's imf factor is not 0, is 1.1e6 * 1e4 // (1e6 + isqrt(10 * size + 1) * imf // 1e5)
  (integers; size = the token amount in 1e9 precision, weights in 1e4, imf in 1e6);
- a spot borrow adds |value| x liability weight to the margin requirement, liability weight =
  max(maintenance_liability_weight, size premium); the size premium is
  (w - w // 5) + isqrt(10 * size + 1) * imf // 1e7 (the same integers);
- a perp adds |base| x oracle price x margin ratio to the requirement, margin ratio = max(
  margin_ratio_maintenance, size premium of |base| (1e9) with the perp's imf factor, formula as
  above), and its unrealized pnl = base x oracle price + quote_asset_amount to the total
  collateral: a positive pnl weighted by the market's unrealized_pnl_maintenance_asset_weight, a
  negative one in full;
- every open order adds OPEN_ORDER_MARGIN_REQUIREMENT = 0.01 (quote) to the requirement;
- the account is liquidatable when total collateral < requirement; health = 100 when nothing is
  required (and collateral >= 0), 0 when total collateral <= 0, else
  100 x (1 - requirement / total collateral) clamped to [0, 100]. The SDK rounds it to an
  integer (`extra["health_rounded"]`); `metric` is the exact value.

Parameter ranges (validation/margin.rs `validate_margin_weights`, `validate_margin`): spot
maintenance asset weight in [0, 1], maintenance liability weight >= 1, spot imf factor in [0, 1);
perp maintenance margin ratio in (0, 1], perp imf factor in [0, 1], unrealized pnl weight in
[0, 1]. Anything outside is a `VenueParameterError`.

Not modelled (the decoders do not read them): unrealized funding of a perp (Drift adds it to the
pnl), the worst-case fill of open bids/asks (only the per-order charge is counted), isolated perp
positions, high-leverage mode, the quote market's strict price (perp values are counted in quote
units at 1 USD), markets in settlement, a user flagged as being liquidated (health 0). Values are
exact decimals; Drift truncates each to 1e-6 quote.

Keys (`chains.solana.venues.drift_venue_account` writes them, exact decimal strings):
- spot asset (`market` "spot:<index>"): `maintenance_asset_weight`, `maintenance_liability_weight`
  (ratios, 1 = 100 %), `imf_factor` (ratio, 1 = 1e6), `open_orders` (count);
- perp asset (`market` "perp:<index>", amount = signed base in 1e9): `maintenance_margin_ratio`
  (ratio), `imf_factor`, `unrealized_pnl_maintenance_asset_weight` (ratio), `quote_asset_amount`
  (quote units, signed), `open_orders`.
An asset is a perp when it has `maintenance_margin_ratio`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from math import isqrt

from aggregator.venues.model import (
    VenueMeasure,
    VenueParameterError,
    decimal_param,
    price_of,
    ratio_param,
    units,
)
from chains.base import VenueAccount, VenueAsset

MARGIN_PRECISION = 10_000  # weights and margin ratios
IMF_PRECISION = 1_000_000
BASE_PRECISION = 10**9  # AMM_RESERVE_PRECISION: perp base amounts and size premiums
OPEN_ORDER_MARGIN_REQUIREMENT = Decimal("0.01")  # QUOTE_PRECISION / 100
_ZERO, _ONE, _HUNDRED = Decimal(0), Decimal(1), Decimal(100)


def _scaled(value: Decimal, precision: int, where: str, key: str) -> int:
    """`value` x `precision` as the integer Drift stores. May raise: VenueParameterError."""
    scaled = value * precision
    if scaled != scaled.to_integral_value():
        raise VenueParameterError(f"{where}: {key} = {value} is not a multiple of 1/{precision}")
    return int(scaled)


def size_premium(size: int, imf_factor: int, weight: int) -> int:
    """Drift's size premium of a liability weight or margin ratio (1e4) for `size` (1e9),
    bounded below by `weight`."""
    if imf_factor == 0:
        return weight
    premium = weight - weight // 5 + isqrt(size * 10 + 1) * imf_factor // 10_000_000
    return max(weight, premium)


def size_discount(size: int, imf_factor: int, weight: int) -> int:
    """Drift's size discount of an asset weight (1e4) for `size` (1e9), bounded above by
    `weight`."""
    if imf_factor == 0:
        return weight
    numerator = (IMF_PRECISION + IMF_PRECISION // 10) * MARGIN_PRECISION
    discount = numerator // (IMF_PRECISION + isqrt(size * 10 + 1) * imf_factor // 100_000)
    return min(weight, discount)


def _size_1e9(amount: int, decimals: int) -> int:
    """A token amount in AMM_RESERVE_PRECISION, as `get_asset_weight` converts it."""
    precision: int = 10**decimals
    if precision > BASE_PRECISION:
        return amount // (precision // BASE_PRECISION)
    return amount * BASE_PRECISION // precision


def _is_perp(asset: VenueAsset) -> bool:
    return "maintenance_margin_ratio" in asset.params


def _where(account: VenueAccount, asset: VenueAsset) -> str:
    return f"drift {account.subaccount or account.account} {asset.market or asset.asset}"


def _open_orders(asset: VenueAsset, where: str) -> int:
    """The `open_orders` count (0 when not given). May raise: VenueParameterError."""
    if "open_orders" not in asset.params:
        return 0
    count = decimal_param(asset.params, "open_orders", where)
    if count < 0 or count != count.to_integral_value():
        raise VenueParameterError(f"{where}: open_orders = {count} is not a count")
    return int(count)


@dataclass(frozen=True, slots=True)
class _Spot:
    asset_weight: int
    liability_weight: int
    imf_factor: int
    open_orders: int


@dataclass(frozen=True, slots=True)
class _Perp:
    margin_ratio: int
    imf_factor: int
    upnl_weight: Decimal
    quote: Decimal
    open_orders: int


def _spot(asset: VenueAsset, where: str) -> _Spot:
    params = asset.params
    asset_weight = ratio_param(params, "maintenance_asset_weight", where)
    liability_weight = decimal_param(params, "maintenance_liability_weight", where)
    if liability_weight < 1:
        raise VenueParameterError(
            f"{where}: maintenance_liability_weight = {liability_weight} is below 1"
        )
    imf = ratio_param(params, "imf_factor", where)
    if imf >= 1:
        raise VenueParameterError(f"{where}: imf_factor = {imf} is outside [0, 1)")
    return _Spot(
        _scaled(asset_weight, MARGIN_PRECISION, where, "maintenance_asset_weight"),
        _scaled(liability_weight, MARGIN_PRECISION, where, "maintenance_liability_weight"),
        _scaled(imf, IMF_PRECISION, where, "imf_factor"),
        _open_orders(asset, where),
    )


def _perp(asset: VenueAsset, where: str) -> _Perp:
    params = asset.params
    ratio = ratio_param(params, "maintenance_margin_ratio", where)
    if ratio == 0:
        raise VenueParameterError(f"{where}: maintenance_margin_ratio is 0")
    imf = ratio_param(params, "imf_factor", where)
    return _Perp(
        _scaled(ratio, MARGIN_PRECISION, where, "maintenance_margin_ratio"),
        _scaled(imf, IMF_PRECISION, where, "imf_factor"),
        ratio_param(params, "unrealized_pnl_maintenance_asset_weight", where),
        decimal_param(params, "quote_asset_amount", where),
        _open_orders(asset, where),
    )


class DriftRules:
    """`aggregator.venues.model.VenueRules` for Drift v2 (see the module docstring)."""

    name = "drift"
    metric = "health"
    units = "0-100; Drift liquidates when total collateral < maintenance margin requirement"

    def check(self, account: VenueAccount) -> None:
        if account.problem is not None:
            raise VenueParameterError(account.problem)
        for asset in account.assets:
            where = _where(account, asset)
            if _is_perp(asset):
                _perp(asset, where)
            else:
                _spot(asset, where)

    def measure(self, account: VenueAccount, prices: Mapping[str, Decimal]) -> VenueMeasure:
        self.check(account)
        collateral = _ZERO
        requirement = _ZERO
        for asset in account.assets:
            where = _where(account, asset)
            price = price_of(asset, prices, where)
            amount = units(asset)
            if _is_perp(asset):
                perp = _perp(asset, where)
                base_value = amount * price
                ratio = size_premium(abs(asset.amount_raw), perp.imf_factor, perp.margin_ratio)
                requirement += abs(base_value) * ratio / MARGIN_PRECISION
                requirement += perp.open_orders * OPEN_ORDER_MARGIN_REQUIREMENT
                pnl = base_value + perp.quote
                collateral += pnl * perp.upnl_weight if pnl > 0 else pnl
                continue
            spot = _spot(asset, where)
            size = _size_1e9(abs(asset.amount_raw), asset.decimals)
            value = amount * price
            if asset.amount_raw > 0:
                weight = size_discount(size, spot.imf_factor, spot.asset_weight)
                collateral += value * weight / MARGIN_PRECISION
            elif asset.amount_raw < 0:
                weight = size_premium(size, spot.imf_factor, spot.liability_weight)
                requirement += -value * weight / MARGIN_PRECISION
            requirement += spot.open_orders * OPEN_ORDER_MARGIN_REQUIREMENT
        health = drift_health(collateral, requirement)
        return VenueMeasure(
            collateral=collateral,
            requirement=requirement,
            metric=health,
            extra={"health_rounded": str(health.quantize(_ONE, ROUND_HALF_UP))},
        )


def drift_health(total_collateral: Decimal, requirement: Decimal) -> Decimal:
    """Drift's health 0-100 (sdk `getHealth`, unrounded)."""
    if requirement == 0 and total_collateral >= 0:
        return _HUNDRED
    if total_collateral <= 0:
        return _ZERO
    health = _HUNDRED * (_ONE - requirement / total_collateral)
    return min(_HUNDRED, max(_ZERO, health))


RULES = DriftRules()
