"""A binary floating-point fast path for standard mode: health and status only.

Same rules as `value_exposure` in standard mode (confidence band, validity, latency buffer,
stale chains, weights, size adjustment, tiers with the monotone envelope, perps), without
lines, liquidation prices or limits. It exists for bulk screening (publish passes, the
benchmark); the tests bound its error against the Decimal path at 1e-9 of the book's size.
Anything stored or shown comes from `evaluate`, never from here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from aggregator.margin.result import Status
from aggregator.valuation.market import CONF_BAND_CAP, Market
from aggregator.valuation.model import Holding, Perp
from aggregator.valuation.weights import is_default_tiers

_INF = math.inf


@dataclass(frozen=True, slots=True)
class FastAsset:
    """One asset's figures as floats."""

    asset_price: float  # p - band
    liability_price: float  # p + band
    price: float
    valid: bool
    weights: tuple[float, float, float, float]  # init, maint, init liability, maint liability
    imf: float
    tiers: tuple[tuple[float, float, float], ...] | None  # None: no tiering


@dataclass(frozen=True, slots=True)
class FastMarket:
    """A `Market` converted once to floats."""

    assets: dict[str, FastAsset]
    stale: dict[str, bool]
    buffers: dict[tuple[str, str], float]
    pnl_weights: tuple[float, float]
    warning_at: float


@dataclass(frozen=True, slots=True)
class FastStatus:
    """Standard-mode totals and status, in floats."""

    collateral_init: float
    collateral_maint: float
    requirement_init: float
    requirement_maint: float
    health_init: float
    health_maint: float
    health_factor: float | None
    status: Status


def fast_market(market: Market) -> FastMarket:
    """Convert a prepared market to floats."""
    assets: dict[str, FastAsset] = {}
    for symbol, risk in market.assets.items():
        state = market.prices[symbol]
        price = float(state.price)
        band = min(float(state.band_width), float(CONF_BAND_CAP) * price)
        tiers = None
        if not is_default_tiers(risk.tiers):
            tiers = tuple(
                (float(t.start), _INF if t.end is None else float(t.end), float(t.ratio))
                for t in risk.tiers
            )
        assets[symbol] = FastAsset(
            price - band,
            price + band,
            price,
            state.valid,
            (
                float(risk.init_weight),
                float(risk.maint_weight),
                float(risk.init_liability_weight),
                float(risk.maint_liability_weight),
            ),
            float(risk.imf),
            tiers,
        )
    return FastMarket(
        assets,
        {name: chain.stale for name, chain in market.chains.items()},
        {key: float(b) for key, b in market.buffers.items()},
        (float(market.params.pnl_weight_init), float(market.params.pnl_weight_maint)),
        float(market.params.warning_health_factor),
    )


def _tiered(size: float, tiers: tuple[tuple[float, float, float], ...] | None) -> float:
    if tiers is None:
        return size
    counted = 0.0
    for start, end, ratio in tiers:
        if size <= start:
            break
        counted += (min(size, end) - start) * ratio
    return counted


def _asset_raw(
    size: float, weight: float, imf: float, tiers: tuple[tuple[float, float, float], ...] | None
) -> float:
    adjusted = weight
    if imf > 0 and size > 0:
        adjusted = min(weight, 1.1 / (1.0 + imf * math.sqrt(size)))
    return _tiered(size, tiers) * adjusted


def _asset_curve(size: float, weight: float, asset: FastAsset) -> float:
    """Mirror of `AssetCurve.__call__`."""
    if size <= 0:
        return 0.0
    best = _asset_raw(size, weight, asset.imf, asset.tiers)
    if asset.imf <= 0 or asset.tiers is None or weight <= 0:
        return best
    candidates = [t[0] for t in asset.tiers] + [t[1] for t in asset.tiers if t[1] != _INF]
    root = (1.1 / weight - 1.0) / asset.imf
    candidates.append(root * root)
    for point in candidates:
        if 0 < point < size:
            best = max(best, _asset_raw(point, weight, asset.imf, asset.tiers))
    return best


def _liability_curve(size: float, weight: float, imf: float) -> float:
    if size <= 0:
        return 0.0
    if imf > 0:
        return size * max(weight, 0.8 * weight + imf * math.sqrt(size))
    return size * weight


def _fill_assets(slices: list[tuple[float, float]], weight: float, asset: FastAsset) -> float:
    if asset.imf <= 0 and asset.tiers is None:
        return sum(a * f for a, f in slices) * weight
    total = level = filled = 0.0
    for amount, factor in sorted(slices, key=lambda s: s[1], reverse=True):
        filled += amount
        new_level = _asset_curve(filled, weight, asset)
        total += factor * (new_level - level)
        level = new_level
    return total


def _fill_liabilities(slices: list[tuple[float, float]], weight: float, imf: float) -> float:
    if imf <= 0:
        return sum(a * f for a, f in slices) * weight
    total = level = filled = 0.0
    for amount, factor in sorted(slices, key=lambda s: s[1], reverse=True):
        filled += amount
        new_level = _liability_curve(filled, weight, imf)
        total += factor * (new_level - level)
        level = new_level
    return total


def evaluate_fast(
    market: FastMarket, holdings: Iterable[Holding], perps: Iterable[Perp]
) -> FastStatus:
    """Standard-mode totals and status of a book, in floats (see module docstring).

    May raise: KeyError for a chain or asset absent from the market.
    """
    groups: dict[
        str, tuple[list[tuple[float, float]], list[tuple[float, float]], list[tuple[float, float]]]
    ] = {}
    buffers, stale = market.buffers, market.stale
    for holding in holdings:
        symbol = holding.asset
        group = groups.get(symbol)
        if group is None:
            group = groups[symbol] = ([], [], [])
        amount = float(holding.amount)
        b = buffers[(holding.chain, symbol)]
        if amount >= 0:
            factor = (1.0 - b) if market.assets[symbol].valid else 0.0
            group[0].append((amount, 0.0 if stale[holding.chain] else factor))
            group[1].append((amount, factor))
        else:
            group[2].append((-amount, 1.0 + b))
    coll_i = coll_m = req_i = req_m = 0.0
    for symbol, (init_slices, maint_slices, liability_slices) in groups.items():
        asset = market.assets[symbol]
        w_i, w_m, l_i, l_m = asset.weights
        if init_slices:
            coll_i += asset.asset_price * _fill_assets(init_slices, w_i, asset)
            coll_m += asset.asset_price * _fill_assets(maint_slices, w_m, asset)
        if liability_slices:
            req_i += asset.liability_price * _fill_liabilities(liability_slices, l_i, asset.imf)
            req_m += asset.liability_price * _fill_liabilities(liability_slices, l_m, asset.imf)
    pnl_i, pnl_m = market.pnl_weights
    for perp in perps:
        asset = market.assets[perp.asset]
        base = float(perp.base)
        size = abs(base)
        price = asset.price
        b = buffers[(perp.chain, perp.asset)]
        pnl = base * (price - float(perp.entry_price))
        if pnl > 0:
            if asset.valid:
                coll_m += pnl * pnl_m
                if not stale[perp.chain]:
                    coll_i += pnl * pnl_i
        else:
            req_i -= pnl
            req_m -= pnl
        scaled = float(perp.imf) * math.sqrt(size) if perp.imf > 0 else 0.0
        notional = size * price
        req_i += notional * (max(float(perp.imr), scaled) + b)
        req_m += notional * (max(float(perp.mmr), scaled) + b)
    health_i, health_m = coll_i - req_i, coll_m - req_m
    health_factor = coll_m / req_m if req_m > 0 else None
    status: Status
    if health_m < 0:
        status = "liquidatable"
    elif health_i < 0:
        status = "margin_call"
    elif health_factor is not None and health_factor < market.warning_at:
        status = "warning"
    else:
        status = "healthy"
    return FastStatus(coll_i, coll_m, req_i, req_m, health_i, health_m, health_factor, status)
