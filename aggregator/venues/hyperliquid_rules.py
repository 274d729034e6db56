"""Hyperliquid's rules as a venue-view module: a cross account read from `clearinghouseState`
(`chains.hyperliquid.venues.venue_account`), measured by the venue's own margin math
(`aggregator.venues.hyperliquid`).

Keys read (exact decimal strings):
- per asset (`VenueAsset`, one per perp position): `amount_raw` / `decimals` the signed size
  `szi` in base units (`decimals` at least the coin's `szDecimals`), `price` the venue's mark
  (USD per coin), `market` the coin;
  `leverage_type` ("cross" or "isolated"); `margin_tiers` (the count, at least 1) with
  `margin_tier.<i>.lower_bound` (USD notional, the first 0, rising) and
  `margin_tier.<i>.max_leverage` (a whole number, at least 1): the asset's margin table, one
  tier at its max leverage when it has none; `isolated_raw_usd` (isolated only:
  `leverage.rawUsd`, the bucket's raw USD); `leverage` (the position's `leverage.value`,
  optional, at least 1: only for the initial margin in `extra`). Written but not read here:
  `max_leverage`, `sz_decimals`, `margin_table_id`, `entry_px`, `mark_px`, `oracle_px`.
- per account (`VenueAccount.params`): `cross_total_raw_usd` (crossMarginSummary.totalRawUsd);
  written but not read: `time_ms`, `account_mode`.
- `reported`, the venue's own numbers: `cross_account_value`, `cross_maintenance_margin_used`,
  `cross_total_margin_used`, `account_value`, `total_margin_used`, `margin_used:<coin>`,
  `liquidation_px:<coin>` (absent when the venue sends null).

At `prices` (asset symbol -> USD per coin, the venue's mark where absent) each position is
valued at |szi| x price and takes the max leverage of the tier its notional falls in; the
maintenance margin is notional / (2 x that leverage). collateral = the cross account value
(cross raw USD + sum of szi x price over cross positions; 0 when negative), requirement = the
cross maintenance margin; the metric is account value / maintenance margin (unclamped; None
without a cross position), the venue liquidates the cross account below 1. `extra` also holds
`cross_account_value`, `cross_maintenance_margin`, `cross_margin_available` and, when every
cross position has `leverage`, `cross_margin_used` (sum of notional / leverage: the venue's
cross totalMarginUsed). The margin (collateral - requirement) falls with every price move
against a position; the ratio does too for a short, but for a long only while it is below
2 x max leverage (above that the maintenance shrinks faster than the value as the price falls).

Isolated positions are buckets of their own: the venue liquidates the bucket, never the cross
account, and a bucket's loss cannot reach the cross margin. So they are excluded from
collateral and requirement, and listed in `extra` (`isolated:<coin>:margin_used`,
`:maintenance_margin`, `:margin_available`), with every position's venue-native liquidation
price (`liquidation_px:<coin>`, cross positions on the shared cross margin, isolated ones on
their bucket; "none" where the venue would send null). As in `aggregator.venues.hyperliquid`,
the tier at the current notional is used and the tiered maintenance deduction is not modelled;
a unified or portfolio-margin account is measured on its perp summary alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from aggregator.venues.hyperliquid import (
    MarginMode,
    MarginTier,
    VenuePosition,
    cross_health,
    isolated_margin_used,
    maintenance_margin,
    position_liquidation_price,
    tier_max_leverage,
)
from aggregator.venues.model import (
    VenueMeasure,
    VenueParameterError,
    VenueRules,
    decimal_param,
    price_of,
    units,
)
from chains.base import VenueAccount, VenueAsset

NAME = "hyperliquid"
_ZERO = Decimal(0)
_ONE = Decimal(1)


def _whole(params: Mapping[str, str], key: str, where: str, *, low: Decimal) -> Decimal:
    value = decimal_param(params, key, where)
    if value != value.to_integral_value() or value < low:
        raise VenueParameterError(f"{where}: {key} = {value} is not a whole number >= {low}")
    return value


def margin_tiers(asset: VenueAsset, where: str) -> tuple[MarginTier, ...]:
    """The asset's margin table from its params. May raise: VenueParameterError (no tiers, a
    first bound other than 0, bounds not rising, a max leverage not a whole number >= 1)."""
    params = asset.params
    count = int(_whole(params, "margin_tiers", where, low=_ONE))
    tiers: list[MarginTier] = []
    for index in range(count):
        bound_key = f"margin_tier.{index}.lower_bound"
        bound = decimal_param(params, bound_key, where)
        leverage = _whole(params, f"margin_tier.{index}.max_leverage", where, low=_ONE)
        if index == 0 and bound != 0:
            raise VenueParameterError(f"{where}: {bound_key} = {bound}, the first tier starts at 0")
        if tiers and bound <= tiers[-1].lower_bound:
            raise VenueParameterError(f"{where}: {bound_key} = {bound} is not above the last")
        tiers.append(MarginTier(bound, leverage))
    return tuple(tiers)


def _mode(asset: VenueAsset, where: str) -> MarginMode:
    mode = asset.params.get("leverage_type")
    if mode == "cross":
        return "cross"
    if mode == "isolated":
        return "isolated"
    raise VenueParameterError(f"{where}: leverage_type {mode!r} is neither cross nor isolated")


def _coin(asset: VenueAsset) -> str:
    return asset.market or asset.asset


def positions_at(
    account: VenueAccount, prices: Mapping[str, Decimal]
) -> tuple[tuple[VenuePosition, ...], Decimal]:
    """The account's positions as the venue's rules take them at `prices`, and its cross raw
    USD. May raise: VenueParameterError (a parameter missing or out of range)."""
    if account.rules != NAME:
        raise VenueParameterError(f"{account.venue}: rules {account.rules!r} are not {NAME!r}")
    if account.problem is not None:
        raise VenueParameterError(f"{account.venue}: {account.problem}")
    raw_usd = decimal_param(account.params, "cross_total_raw_usd", account.venue)
    out: list[VenuePosition] = []
    for asset in account.assets:
        where = f"{account.venue} {_coin(asset)}"
        size = units(asset)
        if size == 0:
            raise VenueParameterError(f"{where}: a position of size 0")
        mode = _mode(asset, where)
        tiers = margin_tiers(asset, where)
        notional = abs(size) * price_of(asset, prices, where)
        bucket = None
        if mode == "isolated":
            bucket = decimal_param(asset.params, "isolated_raw_usd", where)
        if "leverage" in asset.params:
            _whole(asset.params, "leverage", where, low=_ONE)
        out.append(
            VenuePosition(
                _coin(asset), size, notional, tier_max_leverage(tiers, notional), mode, bucket
            )
        )
    return tuple(out), raw_usd


def liquidation_prices(
    account: VenueAccount, prices: Mapping[str, Decimal] | None = None
) -> dict[str, Decimal | None]:
    """Each position's venue-native liquidation price (coin -> USD, None where the venue sends
    null: no positive price liquidates it), at `prices` (the venue's marks where absent): a
    cross position on the account's shared cross margin, the others held at their prices; an
    isolated one on its own bucket.

    May raise: VenueParameterError.
    """
    positions, raw_usd = positions_at(account, prices or {})
    return {p.coin: position_liquidation_price(p, raw_usd, positions) for p in positions}


def _text(value: Decimal | None) -> str:
    return "none" if value is None else format(value, "f")


class HyperliquidRules:
    """Hyperliquid's cross account: account value against maintenance margin."""

    name = NAME
    metric = "account_value_to_maintenance"
    units = (
        "cross account value / cross maintenance margin; the venue liquidates the cross "
        "account below 1"
    )

    def check(self, account: VenueAccount) -> None:
        """May raise: VenueParameterError."""
        positions_at(account, {})

    def measure(self, account: VenueAccount, prices: Mapping[str, Decimal]) -> VenueMeasure:
        """May raise: VenueParameterError."""
        positions, raw_usd = positions_at(account, prices)
        health = cross_health(raw_usd, positions)
        extra = {
            "cross_account_value": _text(health.account_value),
            "cross_maintenance_margin": _text(health.maintenance_margin),
            "cross_margin_available": _text(health.margin_available),
        }
        leverages = {
            _coin(a): Decimal(a.params["leverage"])
            for a in account.assets
            if "leverage" in a.params
        }
        cross = [p for p in positions if p.mode == "cross"]
        if all(p.coin in leverages for p in cross):
            used = sum((p.position_value / leverages[p.coin] for p in cross), _ZERO)
            extra["cross_margin_used"] = _text(used)
        for position in positions:
            liquidation = position_liquidation_price(position, raw_usd, positions)
            extra[f"liquidation_px:{position.coin}"] = _text(liquidation)
            if position.mode == "isolated":
                bucket = isolated_margin_used(position)
                maintenance = maintenance_margin(position)
                prefix = f"isolated:{position.coin}"
                extra[f"{prefix}:margin_used"] = _text(bucket)
                extra[f"{prefix}:maintenance_margin"] = _text(maintenance)
                extra[f"{prefix}:margin_available"] = _text(bucket - maintenance)
        return VenueMeasure(
            collateral=max(health.account_value, _ZERO),
            requirement=health.maintenance_margin,
            metric=health.ratio,
            metric_reason=None
            if health.ratio is not None
            else "no cross maintenance margin: the account holds no cross position",
            extra=extra,
        )


RULES: VenueRules = HyperliquidRules()
