"""Perp market data: `meta` (universe, margin tables) and `metaAndAssetCtxs` (plus each asset's
mark and oracle price), decoded with their JSON types checked."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from chains.hyperliquid.fields import DecodeError, amount, field, integer, json_type


@dataclass(frozen=True, slots=True)
class MarginTier:
    """From `lower_bound` (USD notional) on, positions may use up to `max_leverage`."""

    lower_bound: Decimal
    max_leverage: Decimal


@dataclass(frozen=True, slots=True)
class AssetMeta:
    name: str
    sz_decimals: int
    max_leverage: int
    margin_table_id: int | None = None
    only_isolated: bool = False
    delisted: bool = False


@dataclass(frozen=True, slots=True)
class AssetContext:
    mark_px: Decimal
    oracle_px: Decimal


@dataclass(frozen=True, slots=True)
class PerpMeta:
    universe: tuple[AssetMeta, ...]
    margin_tables: dict[int, tuple[MarginTier, ...]]


@dataclass(frozen=True, slots=True)
class PerpMarkets:
    """`metaAndAssetCtxs`: each asset's meta with its context, or the reason it has none."""

    meta: PerpMeta
    contexts: dict[str, AssetContext]
    bad_contexts: dict[str, str]

    def asset(self, coin: str) -> AssetMeta | None:
        """The universe entry of `coin`, or None. May raise: nothing."""
        for entry in self.meta.universe:
            if entry.name == coin:
                return entry
        return None

    def tiers(self, asset: AssetMeta) -> tuple[MarginTier, ...]:
        """The asset's margin tiers: its table, or (ids below 50, or no table) one tier at the
        asset's max leverage (docs: margin-tiers.md)."""
        if asset.margin_table_id is not None and asset.margin_table_id in self.meta.margin_tables:
            return self.meta.margin_tables[asset.margin_table_id]
        table_id = asset.margin_table_id
        leverage = table_id if table_id is not None and 0 < table_id < 50 else asset.max_leverage
        return (MarginTier(Decimal(0), Decimal(leverage)),)

    def tier_max_leverage(self, asset: AssetMeta, notional: Decimal) -> Decimal:
        """Max leverage of the tier `notional` falls in (the last one whose lower bound it
        reaches). May raise: nothing."""
        tiers = sorted(self.tiers(asset), key=lambda tier: tier.lower_bound)
        chosen = tiers[0].max_leverage
        for tier in tiers:
            if notional >= tier.lower_bound:
                chosen = tier.max_leverage
        return chosen


def _flag(obj: dict[str, Any], key: str, where: str) -> bool:
    value = obj.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise DecodeError(f"{where}.{key}: expected a boolean, got {json_type(value)}")
    return value


def decode_meta(doc: Any) -> PerpMeta:
    """The `meta` response (universe and margin tables). May raise: DecodeError."""
    universe_raw = field(doc, "universe", "meta")
    if not isinstance(universe_raw, list):
        raise DecodeError("meta.universe: expected an array")
    universe = []
    for index, entry in enumerate(universe_raw):
        where = f"meta.universe[{index}]"
        name = field(entry, "name", where)
        if not isinstance(name, str) or not name:
            raise DecodeError(f"{where}.name: expected a coin name")
        table_id = integer(entry, "marginTableId", where) if "marginTableId" in entry else None
        universe.append(
            AssetMeta(
                name=name,
                sz_decimals=integer(entry, "szDecimals", where),
                max_leverage=integer(entry, "maxLeverage", where),
                margin_table_id=table_id,
                only_isolated=_flag(entry, "onlyIsolated", where),
                delisted=_flag(entry, "isDelisted", where),
            )
        )
    tables: dict[int, tuple[MarginTier, ...]] = {}
    for index, pair in enumerate(doc.get("marginTables") or []):
        where = f"meta.marginTables[{index}]"
        if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], int)):
            raise DecodeError(f"{where}: expected an [id, table] pair")
        tiers_raw = field(pair[1], "marginTiers", where)
        if not isinstance(tiers_raw, list) or not tiers_raw:
            raise DecodeError(f"{where}.marginTiers: expected a non-empty array")
        tables[pair[0]] = tuple(
            MarginTier(
                amount(tier, "lowerBound", f"{where}.marginTiers[{i}]"),
                Decimal(integer(tier, "maxLeverage", f"{where}.marginTiers[{i}]")),
            )
            for i, tier in enumerate(tiers_raw)
        )
    return PerpMeta(tuple(universe), tables)


def decode_meta_and_asset_ctxs(doc: Any) -> PerpMarkets:
    """The `[meta, assetCtxs]` pair. A context that does not decode leaves its asset without
    prices (named in `bad_contexts`); a wrong envelope raises.

    May raise: DecodeError.
    """
    if not (isinstance(doc, list) and len(doc) == 2 and isinstance(doc[1], list)):
        raise DecodeError("metaAndAssetCtxs: expected a [meta, assetCtxs] pair")
    meta = decode_meta(doc[0])
    if len(doc[1]) != len(meta.universe):
        raise DecodeError(
            f"metaAndAssetCtxs: {len(doc[1])} asset contexts for {len(meta.universe)} assets"
        )
    contexts: dict[str, AssetContext] = {}
    bad: dict[str, str] = {}
    for entry, ctx in zip(meta.universe, doc[1], strict=True):
        where = f"assetCtxs[{entry.name}]"
        try:
            mark = amount(ctx, "markPx", where)
            oracle = amount(ctx, "oraclePx", where)
        except DecodeError as error:
            bad[entry.name] = str(error)
            continue
        if mark <= 0 or oracle <= 0:
            bad[entry.name] = f"{where}: non-positive price (mark {mark}, oracle {oracle})"
            continue
        contexts[entry.name] = AssetContext(mark, oracle)
    return PerpMarkets(meta, contexts, bad)
