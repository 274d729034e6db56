"""Market state prepared once per valuation pass: price validity, confidence bands, freshness
of every chain and the latency buffer of every (chain, asset) pair (design §5).

Everything here depends on the market only, not on an account, so a publish pass prepares one
`Market` and values every account against it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, localcontext
from typing import NamedTuple

from aggregator.valuation.model import (
    PRECISION,
    SECONDS_PER_YEAR,
    AssetRisk,
    ChainState,
    RiskParams,
)
from aggregator.valuation.weights import AssetCurve, LiabilityCurve

CONF_BAND_CAP = Decimal("0.05")  # the confidence band never moves a price by more than 5 %
_ZERO = Decimal(0)
_ONE = Decimal(1)


@dataclass(frozen=True, slots=True)
class PriceState:
    """An asset's oracle price as the engine uses it.

    `price` is the last price (0 when none was ever read); `band_width` is `k * conf` (the
    absolute half-width before the 5 % cap); `valid` False means collateral counts 0.
    """

    symbol: str
    price: Decimal
    band_width: Decimal
    valid: bool
    invalid_reason: str | None


@dataclass(frozen=True, slots=True)
class ChainFreshness:
    """How old a chain's data is, its latency horizon `T` and whether it is stale."""

    name: str
    data_age_seconds: Decimal
    horizon_seconds: Decimal
    stale: bool


def seconds_between(later: datetime, earlier: datetime) -> Decimal:
    """Exact seconds from `earlier` to `later` (negative if `later` is earlier)."""
    delta = later - earlier
    return Decimal(delta.days * 86_400 + delta.seconds) + Decimal(delta.microseconds) / 1_000_000


def confidence_band(price: Decimal, band_width: Decimal) -> Decimal:
    """Half-width of the confidence band at `price`: `min(k*c, 0.05*p)`."""
    cap = CONF_BAND_CAP * price
    return band_width if band_width < cap else cap


def price_state(asset: AssetRisk, as_of: datetime, params: RiskParams) -> PriceState:
    """Check an asset's price: positive, confidence ratio within `max_conf_ratio`, fresh enough.

    A future `price_time` counts as age 0 (clock skew between oracle and reader).
    """
    width = params.conf_multiplier * asset.conf
    if asset.price is None or asset.price <= 0:
        return PriceState(asset.symbol, asset.price or _ZERO, width, False, "no positive price")
    if asset.conf / asset.price > params.max_conf_ratio:
        return PriceState(asset.symbol, asset.price, width, False, "confidence too wide")
    age = max(_ZERO, seconds_between(as_of, asset.price_time))
    if age > asset.max_price_age_seconds:
        return PriceState(asset.symbol, asset.price, width, False, "price too old")
    return PriceState(asset.symbol, asset.price, width, True, None)


def chain_freshness(chain: ChainState, as_of: datetime) -> ChainFreshness:
    """`T = data_age + finality + liquidation latency`; stale when data_age > max_staleness.

    A block timestamp after `as_of` counts as age 0.
    """
    age = max(_ZERO, seconds_between(as_of, chain.block_time))
    horizon = age + chain.finality_seconds + chain.liquidation_latency_seconds
    return ChainFreshness(chain.name, age, horizon, age > chain.max_staleness_seconds)


def latency_buffer(z: Decimal, volatility: Decimal, horizon_seconds: Decimal) -> Decimal:
    """`b = min(1, z * sigma * sqrt(T / 31,536,000))`: the relative move a price can make
    before a liquidation on that chain completes."""
    if horizon_seconds <= 0 or volatility <= 0 or z <= 0:
        return _ZERO
    buffer = z * volatility * (horizon_seconds / SECONDS_PER_YEAR).sqrt()
    return buffer if buffer < _ONE else _ONE


@dataclass(frozen=True, slots=True)
class AssetCurves:
    """The four weight curves of one asset."""

    collateral_init: AssetCurve
    collateral_maint: AssetCurve
    liability_init: LiabilityCurve
    liability_maint: LiabilityCurve


def asset_curves(asset: AssetRisk) -> AssetCurves:
    """Build an asset's weight curves from its weights, `imf` and tiers."""
    return AssetCurves(
        AssetCurve(asset.init_weight, asset.imf, asset.tiers),
        AssetCurve(asset.maint_weight, asset.imf, asset.tiers),
        LiabilityCurve(asset.init_liability_weight, asset.imf),
        LiabilityCurve(asset.maint_liability_weight, asset.imf),
    )


class AssetQuote(NamedTuple):
    """An asset's oracle-price figures, computed once per market (at `PRECISION` digits).

    `asset_price = p - band` and `liability_price = p + band` with `band = min(k*c, 0.05*p)`;
    `linear` is True when all four weight curves are plain `weight * S` (no size adjustment,
    one band of ratio 1); `weights` are (init, maint, init liability, maint liability).
    """

    price: Decimal
    band_width: Decimal
    asset_price: Decimal
    liability_price: Decimal
    valid: bool
    linear: bool
    weights: tuple[Decimal, Decimal, Decimal, Decimal]


class LineFactors(NamedTuple):
    """Per-(chain, asset) figures of a line, computed once per market (at `PRECISION` digits).

    `collateral_factor = 1 - b`, `liability_factor = 1 + b`; `collateral_unit` and
    `liability_unit` are the adjusted prices `p_a * (1 - b)` and `p_l * (1 + b)`.
    """

    buffer: Decimal
    collateral_factor: Decimal
    liability_factor: Decimal
    collateral_unit: Decimal
    liability_unit: Decimal
    stale: bool


@dataclass(frozen=True, slots=True)
class Market:
    """Prices, chain freshness and latency buffers for one valuation instant.

    `quotes`, `factors`, `stale_chains` and `buffer_rows` are derived from the other fields
    when the market is built: they are what every account's valuation would otherwise
    recompute (same operations, same precision, so the results are identical).
    """

    as_of: datetime
    params: RiskParams
    assets: Mapping[str, AssetRisk]
    prices: Mapping[str, PriceState]
    chains: Mapping[str, ChainFreshness]
    buffers: Mapping[tuple[str, str], Decimal]  # (chain, asset) -> b
    curves: Mapping[str, AssetCurves]
    quotes: Mapping[str, AssetQuote] = field(init=False, repr=False, compare=False)
    factors: Mapping[str, Mapping[str, LineFactors]] = field(  # asset -> chain -> factors
        init=False, repr=False, compare=False
    )
    stale_chains: tuple[str, ...] = field(init=False, repr=False, compare=False)
    buffer_rows: Mapping[str, Mapping[str, Decimal]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        with localcontext() as ctx:
            ctx.prec = PRECISION
            quotes: dict[str, AssetQuote] = {}
            for symbol, state in self.prices.items():
                band = confidence_band(state.price, state.band_width)
                curves = self.curves[symbol]
                linear = (
                    curves.collateral_init.linear
                    and curves.collateral_maint.linear
                    and curves.liability_init.linear
                    and curves.liability_maint.linear
                )
                weights = (
                    curves.collateral_init.weight,
                    curves.collateral_maint.weight,
                    curves.liability_init.weight,
                    curves.liability_maint.weight,
                )
                quotes[symbol] = AssetQuote(
                    state.price,
                    state.band_width,
                    state.price - band,
                    state.price + band,
                    state.valid,
                    linear,
                    weights,
                )
            factors: dict[str, dict[str, LineFactors]] = {symbol: {} for symbol in quotes}
            for (chain, symbol), b in self.buffers.items():
                quote = quotes[symbol]
                collateral_factor = _ONE - b
                liability_factor = _ONE + b
                factors[symbol][chain] = LineFactors(
                    b,
                    collateral_factor,
                    liability_factor,
                    quote.asset_price * collateral_factor,
                    quote.liability_price * liability_factor,
                    self.chains[chain].stale,
                )
        object.__setattr__(self, "quotes", quotes)
        object.__setattr__(self, "factors", factors)
        stale = tuple(name for name, chain in self.chains.items() if chain.stale)
        object.__setattr__(self, "stale_chains", stale)
        rows = {
            chain: {symbol: self.buffers[(chain, symbol)] for symbol in self.assets}
            for chain in self.chains
        }
        object.__setattr__(self, "buffer_rows", rows)

    def buffer(self, chain: str, asset: str) -> Decimal:
        """Latency buffer of `asset` on `chain`. May raise: KeyError for an unknown pair."""
        return self.buffers[(chain, asset)]


def prepare_market(
    as_of: datetime,
    params: RiskParams,
    chains: Mapping[str, ChainState],
    assets: Mapping[str, AssetRisk],
) -> Market:
    """Compute every market-level quantity of design §5 once."""
    prices = {symbol: price_state(asset, as_of, params) for symbol, asset in assets.items()}
    freshness = {name: chain_freshness(chain, as_of) for name, chain in chains.items()}
    buffers = {
        (name, symbol): latency_buffer(params.latency_z, asset.volatility, fresh.horizon_seconds)
        for name, fresh in freshness.items()
        for symbol, asset in assets.items()
    }
    curves = {symbol: asset_curves(asset) for symbol, asset in assets.items()}
    return Market(as_of, params, dict(assets), prices, freshness, buffers, curves)
