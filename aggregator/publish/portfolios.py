"""Build each user's risk-engine `Portfolio` from stored observations and the config. Pure.

The publish step reads rows, maps them onto the small types below, and calls `build_portfolios`;
the result goes to `aggregator.margin.evaluate`, exactly as a `risk evaluate` document would.
Chains are named by their CAIP-2 ids inside portfolios, so the published document speaks CAIP-2.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from aggregator.config import LoadedConfig
from aggregator.margin import AssetRisk, ChainState, Holding, Perp, Portfolio, RiskParams
from aggregator.store.observed.lines import HeldLine
from aggregator.valuation.lines import new_instance, slot_setters
from aggregator.valuation.model import Tier
from chains.hyperliquid.terms import VENUE as HYPERLIQUID_VENUE
from chains.hyperliquid.terms import parse_terms

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class ObservedChain:
    """The latest good read point of a chain."""

    chain: str
    height: int
    block_hash: str
    block_time: datetime
    finality: str


ObservedLine = HeldLine
"""A wallet balance or a protocol position of one user, exact in base units (the store's row)."""


@dataclass(frozen=True, slots=True)
class ObservedPrice:
    """The price an asset is valued at: the newest valid oracle read."""

    asset: str
    price: Decimal
    conf: Decimal
    publish_time: datetime


def risk_params(config: LoadedConfig) -> RiskParams:
    risk = config.risk
    return RiskParams(
        conf_multiplier=risk.conf_multiplier,
        max_conf_ratio=risk.max_conf_ratio,
        latency_z=risk.latency_z,
        warning_health_factor=risk.warning_health_factor,
        pnl_weight_init=risk.pnl_weight_init,
        pnl_weight_maint=risk.pnl_weight_maint,
        portfolio_floor_ratio=risk.portfolio_floor_ratio,
        portfolio_init_multiplier=risk.portfolio_init_multiplier,
        stress_in_requirement=risk.portfolio_stress_in_requirement,
    )


def asset_risks(
    config: LoadedConfig,
    prices: Mapping[str, ObservedPrice],
    volatility_override: Mapping[str, Decimal] | None = None,
) -> dict[str, AssetRisk]:
    """Every configured asset that has a price, with its risk parameters."""
    volatility_override = volatility_override or {}
    out: dict[str, AssetRisk] = {}
    for symbol, asset in config.assets.items():
        observed = prices.get(symbol)
        if observed is None:
            continue
        out[symbol] = AssetRisk(
            symbol=symbol,
            price=observed.price,
            conf=observed.conf,
            price_time=observed.publish_time,
            max_price_age_seconds=Decimal(asset.max_price_age_seconds),
            init_weight=asset.init_weight,
            maint_weight=asset.maint_weight,
            init_liability_weight=asset.init_liability_weight,
            maint_liability_weight=asset.maint_liability_weight,
            volatility=volatility_override.get(symbol, asset.volatility),
            family=asset.family,
            stable=asset.stable,
            imf=asset.imf,
            tiers=tuple(Tier(start, end, ratio) for start, end, ratio in asset.tiers)
            or (Tier(Decimal(0), None, Decimal(1)),),
        )
    return out


def chain_states(config: LoadedConfig, chains: Iterable[ObservedChain]) -> dict[str, ChainState]:
    """Chain key → state (named by CAIP-2 id) of every configured chain read at least once."""
    out: dict[str, ChainState] = {}
    for observed in chains:
        chain = config.chains.get(observed.chain)
        if chain is None:  # a chain removed from config: its rows are ignored
            continue
        out[observed.chain] = ChainState(
            name=chain.caip2,
            block_time=observed.block_time,
            finality_seconds=Decimal(chain.finality_seconds),
            liquidation_latency_seconds=Decimal(chain.liquidation_latency_seconds),
            max_staleness_seconds=Decimal(chain.max_staleness_seconds),
        )
    return out


def _perp_terms(config: LoadedConfig, line: ObservedLine) -> tuple[Decimal, Decimal, Decimal]:
    """(imr, mmr, imf) of the perp market a line is on, from the chain's venue config."""
    chain = config.chains[line.chain]
    if chain.family == "hyperliquid" and line.venue == HYPERLIQUID_VENUE:
        # The adapter read the venue's own terms (leverage, margin tier) into the market text.
        terms = parse_terms(line.market)
        if terms is not None:
            return terms.imr, terms.mmr, Decimal(0)
    if chain.drift is not None and line.venue == "drift":
        for market in chain.drift.perp_markets:
            # The Drift adapter names perp markets `perp:<index>`.
            if line.market == f"perp:{market.market_index}" or (
                line.market is None and market.asset == line.asset
            ):
                return market.imr, market.mmr, market.imf
    # An unconfigured market: the strictest sensible terms rather than none at all.
    return Decimal(1), Decimal("0.5"), Decimal(0)


def _fenced(config: LoadedConfig, line: ObservedLine) -> bool:
    """A Hyperliquid isolated perp: its margin backs it alone and its loss cannot exceed that
    margin, so it neither adds collateral nor requirement to the unified status (risk.md)."""
    if line.kind != "perp" or line.venue != HYPERLIQUID_VENUE:
        return False
    if config.chains[line.chain].family != "hyperliquid":
        return False
    terms = parse_terms(line.market)
    return terms is not None and terms.mode == "isolated"


@dataclass(frozen=True)
class PortfolioBatch:
    """What one publish pass values.

    `unpriced` lists, per user, assets held as collateral that never had a valid price read:
    those lines count nothing and the user is flagged stale. `unvalued` holds users who owe an
    asset that never had a price: no honest status exists for them, so they keep their last one.
    """

    portfolios: dict[int, Portfolio]
    unpriced: dict[int, tuple[str, ...]]
    unvalued: dict[int, str]


# A pass builds a million holdings: filling the slots directly skips the frozen dataclass's
# `__init__` (the same object, the same values).
_new_holding = new_instance
_SET_CHAIN, _SET_ASSET, _SET_AMOUNT, _SET_VENUE = slot_setters(Holding)


def build_portfolios(
    config: LoadedConfig,
    as_of: datetime,
    user_chains: Mapping[int, Iterable[str]],
    chains: Iterable[ObservedChain],
    lines: Iterable[ObservedLine],
    prices: Mapping[str, ObservedPrice],
    volatility_override: Mapping[str, Decimal] | None = None,
) -> PortfolioBatch:
    """One portfolio per user in `user_chains` (user → the chains it has wallets on).

    A user's portfolio carries the states of its wallets' chains only, so a stale chain flags
    the users who hold wallets there and nobody else. Market data is shared by all.
    """
    states = chain_states(config, chains)
    names = {key: state.name for key, state in states.items()}
    assets = asset_risks(config, prices, volatility_override)
    configured = config.assets
    params = risk_params(config)
    holdings: dict[int, list[Holding]] = defaultdict(list)
    perps: dict[int, list[Perp]] = defaultdict(list)
    unpriced: dict[int, set[str]] = defaultdict(set)
    unvalued: dict[int, str] = {}
    for line in lines:
        user_id = line.user_id
        chain = names.get(line.chain)
        if chain is None or user_id not in user_chains:
            continue
        kind = line.kind
        if line.amount_raw == 0 or (kind == "perp" and _fenced(config, line)):
            continue
        asset = line.asset
        if asset not in assets:
            if asset not in configured:
                continue  # an asset removed from config since the read
            if line.amount_raw < 0 or kind == "perp":
                unvalued[user_id] = f"{asset} is owed but has no valid price yet"
            else:
                unpriced[user_id].add(asset)
            continue
        if kind == "perp":
            imr, mmr, imf = _perp_terms(config, line)
            perps[user_id].append(
                Perp(
                    chain=chain,
                    venue=line.venue,
                    asset=asset,
                    base=line.amount,
                    entry_price=line.entry_price or Decimal(0),
                    imr=imr,
                    mmr=mmr,
                    imf=imf,
                )
            )
        else:
            holding = _new_holding(Holding)
            _SET_CHAIN(holding, chain)
            _SET_ASSET(holding, asset)
            _SET_AMOUNT(holding, line.amount)
            _SET_VENUE(holding, line.venue)
            holdings[user_id].append(holding)
    mode = config.risk.mode
    # Users on the same chains share one (read-only) mapping of chain states.
    chain_sets: dict[tuple[str, ...], dict[str, ChainState]] = {}
    portfolios: dict[int, Portfolio] = {}
    for user_id, wallet_chains in user_chains.items():
        if user_id in unvalued:
            continue
        key = tuple(wallet_chains)
        user_states = chain_sets.get(key)
        if user_states is None:
            user_states = {states[c].name: states[c] for c in sorted(set(key)) if c in states}
            chain_sets[key] = user_states
        portfolios[user_id] = Portfolio(
            as_of,
            user_states,
            assets,
            tuple(holdings.get(user_id, ())),
            tuple(perps.get(user_id, ())),
            mode,
            params,
        )
    return PortfolioBatch(
        portfolios=portfolios,
        unpriced={user: tuple(sorted(assets)) for user, assets in unpriced.items()},
        unvalued=unvalued,
    )
