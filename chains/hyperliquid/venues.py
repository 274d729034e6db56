"""The venue's own view of one Hyperliquid account: a `VenueAccount` (rules "hyperliquid",
measured by `aggregator.venues.hyperliquid_rules`) built from the same `clearinghouseState` as
the account's perp lines and the poll's `metaAndAssetCtxs`. Pure: no I/O.

One `VenueAccount` per wallet with perp positions: venue "hyperliquid" (as the perp lines name
it), account = the wallet, one `VenueAsset` per position (every decoded position, also those of
coins the config does not list, since the venue counts them all), keyed by the configured asset
symbol (the coin itself for a coin not configured) with `market` = the coin. The keys written
are the ones `aggregator.venues.hyperliquid_rules` documents:

- `amount_raw` / `decimals`: the signed size `szi` in base units (at least `szDecimals`
  decimals, more when the venue shows more); `price`: the mark the venue valued the position at
  in this very response (`positionValue / |szi|`), so the measure reproduces the response.
- asset params: `leverage_type` ("cross" or "isolated"), `leverage` (the position's
  `leverage.value`), `max_leverage` (the universe's), `sz_decimals`, `margin_tiers` (count)
  with `margin_tier.<i>.lower_bound` and `margin_tier.<i>.max_leverage` (the asset's margin
  table, or for an id below 50 / no table one tier at that leverage), `margin_table_id` when
  given, `isolated_raw_usd` (isolated only: `leverage.rawUsd`), `entry_px`, and from
  `metaAndAssetCtxs` `mark_px` / `oracle_px` when the asset has a context (not used by the
  measure: that response was read at another time).
- account params: `cross_total_raw_usd` (crossMarginSummary.totalRawUsd), `time_ms` (the
  response's time, when sent), `account_mode` (the userAbstraction mode read).
- `reported`, the venue's own numbers: `cross_account_value`, `cross_total_margin_used`,
  `cross_maintenance_margin_used` (absent in the 2023 format), `account_value` and
  `total_margin_used` (marginSummary: cross plus isolated buckets), and per position
  `liquidation_px:<coin>` (absent when the venue sends null) and `margin_used:<coin>`.

`problem` is set (and nothing raises) when a position did not decode, a coin is not in the
universe, its margin table id names a table `marginTables` does not hold, or a max leverage is
below 1.
"""

from __future__ import annotations

from decimal import Decimal

from chains.base import Address, VenueAccount, VenueAsset
from chains.hyperliquid.decoders import ClearinghouseState, PerpMarkets, PerpPosition
from chains.hyperliquid.lines import to_base_units
from chains.hyperliquid.meta import AssetMeta, MarginTier
from chains.hyperliquid.spec import HyperliquidChainSpec
from chains.hyperliquid.terms import VENUE

RULES = "hyperliquid"
FLAT_TABLES_BELOW = 50  # margin-tiers.md: a table id below 50 is one tier at that leverage


def _text(value: Decimal | int) -> str:
    """An exact decimal string (no exponent). May raise: nothing."""
    return format(value, "f") if isinstance(value, Decimal) else str(value)


def margin_tiers(markets: PerpMarkets, asset: AssetMeta) -> tuple[MarginTier, ...] | str:
    """The asset's margin tiers (lowest bound first), or why they are not known: a table id
    of 50 or more that `marginTables` does not hold, or a max leverage below 1.

    May raise: nothing.
    """
    table_id = asset.margin_table_id
    tables = markets.meta.margin_tables
    if table_id is not None and table_id in tables:
        tiers = tuple(sorted(tables[table_id], key=lambda tier: tier.lower_bound))
    elif table_id is not None and table_id >= FLAT_TABLES_BELOW:
        return f"{asset.name}: margin table {table_id} is not in meta.marginTables"
    elif table_id is not None and table_id > 0:
        tiers = (MarginTier(Decimal(0), Decimal(table_id)),)
    else:
        tiers = (MarginTier(Decimal(0), Decimal(asset.max_leverage)),)
    if asset.max_leverage < 1:
        return f"{asset.name}: max leverage {asset.max_leverage} is below 1"
    low = [tier for tier in tiers if tier.max_leverage < 1]
    if low:
        return f"{asset.name}: a margin tier has max leverage {low[0].max_leverage}, below 1"
    return tiers


def _asset(
    spec: HyperliquidChainSpec, position: PerpPosition, markets: PerpMarkets, problems: list[str]
) -> VenueAsset:
    coins = {c.coin: c.asset for c in spec.perp_coins}
    meta = markets.asset(position.coin)
    params: dict[str, str] = {
        "leverage_type": position.leverage_type,
        "leverage": _text(position.leverage),
        "entry_px": _text(position.entry_px),
    }
    if position.raw_usd is not None:
        params["isolated_raw_usd"] = _text(position.raw_usd)
    sz_decimals = 0
    if meta is None:
        problems.append(f"{position.coin}: not in metaAndAssetCtxs, so no margin table")
    else:
        sz_decimals = meta.sz_decimals
        params["sz_decimals"] = _text(meta.sz_decimals)
        params["max_leverage"] = _text(meta.max_leverage)
        if meta.margin_table_id is not None:
            params["margin_table_id"] = _text(meta.margin_table_id)
        tiers = margin_tiers(markets, meta)
        if isinstance(tiers, str):
            problems.append(tiers)
        else:
            params["margin_tiers"] = str(len(tiers))
            for index, tier in enumerate(tiers):
                params[f"margin_tier.{index}.lower_bound"] = _text(tier.lower_bound)
                params[f"margin_tier.{index}.max_leverage"] = _text(tier.max_leverage)
    context = markets.contexts.get(position.coin)
    if context is not None:
        params["mark_px"] = _text(context.mark_px)
        params["oracle_px"] = _text(context.oracle_px)
    amount_raw, decimals = to_base_units(position.szi, sz_decimals)
    return VenueAsset(
        asset=coins.get(position.coin, position.coin),
        amount_raw=amount_raw,
        decimals=decimals,
        price=position.mark,
        params=params,
        market=position.coin,
    )


def venue_account(
    spec: HyperliquidChainSpec,
    account: Address,
    perp: ClearinghouseState,
    markets: PerpMarkets,
    abstraction: str,
) -> VenueAccount | None:
    """The venue's view of `account` from its `clearinghouseState`, or None when it holds no
    perp position (none decoded and none skipped). May raise: nothing."""
    if not perp.positions and not perp.skipped:
        return None
    problems = [f"{coin}: position not decoded ({why})" for coin, why in perp.skipped]
    assets = tuple(_asset(spec, position, markets, problems) for position in perp.positions)
    cross = perp.cross_margin_summary
    params = {"cross_total_raw_usd": _text(cross.total_raw_usd), "account_mode": abstraction}
    if perp.time_ms is not None:
        params["time_ms"] = _text(perp.time_ms)
    reported = {
        "cross_account_value": _text(cross.account_value),
        "cross_total_margin_used": _text(cross.total_margin_used),
        "account_value": _text(perp.margin_summary.account_value),
        "total_margin_used": _text(perp.margin_summary.total_margin_used),
    }
    if perp.cross_maintenance_margin_used is not None:
        reported["cross_maintenance_margin_used"] = _text(perp.cross_maintenance_margin_used)
    for position in perp.positions:
        reported[f"margin_used:{position.coin}"] = _text(position.margin_used)
        if position.liquidation_px is not None:
            reported[f"liquidation_px:{position.coin}"] = _text(position.liquidation_px)
    return VenueAccount(
        account=account,
        venue=VENUE,
        rules=RULES,
        assets=assets,
        params=params,
        reported=reported,
        problem="; ".join(problems) or None,
    )
