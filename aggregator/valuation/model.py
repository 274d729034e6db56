"""The typed input of the risk engine: one account's book plus the market it is valued in.

Plain frozen dataclasses over `Decimal` and timezone-aware `datetime`; no I/O, no validation
beyond what the types say (documents are checked in `aggregator.risk.document`, the store
builds these from rows). Amounts are human token units, prices USD per token.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Literal

Mode = Literal["standard", "portfolio"]

SECONDS_PER_YEAR = Decimal(31_536_000)
PRECISION = 40  # digits of the engine's arithmetic: 18-decimal amounts times prices, with room


@dataclass(frozen=True, slots=True)
class RiskParams:
    """Engine-wide parameters; the defaults are design §5's."""

    conf_multiplier: Decimal = Decimal(1)
    max_conf_ratio: Decimal = Decimal("0.10")
    latency_z: Decimal = Decimal("2.326")
    warning_health_factor: Decimal = Decimal("1.25")
    pnl_weight_init: Decimal = Decimal("0.9")
    pnl_weight_maint: Decimal = Decimal(1)
    # Portfolio mode (VaR/ES) only.
    portfolio_floor_ratio: Decimal = Decimal("0.01")
    portfolio_init_multiplier: Decimal = Decimal("1.25")
    es_confidence: Decimal = Decimal("0.975")
    scenario_count: int = 4000
    scenario_seed: int = 20240601
    default_correlation: Decimal = Decimal("0.5")
    depeg_shock: Decimal = Decimal("0.05")
    # Also cover the worst stress-grid loss in full: max(floor, ES, worst scan). Off: the
    # requirement is max(floor, ES) and the grid is reported (worst scenario) only.
    stress_in_requirement: bool = False


@dataclass(frozen=True, slots=True)
class ChainState:
    """How fresh one chain's data is and how long a liquidation there takes."""

    name: str
    block_time: datetime  # timestamp of the block/slot the data was read at
    finality_seconds: Decimal
    liquidation_latency_seconds: Decimal
    max_staleness_seconds: Decimal


@dataclass(frozen=True, slots=True)
class Tier:
    """One band of a tiered collateral ratio: tokens in [start, end) count `ratio` each."""

    start: Decimal
    end: Decimal | None  # None: unbounded
    ratio: Decimal


DEFAULT_TIERS: tuple[Tier, ...] = (Tier(Decimal(0), None, Decimal(1)),)


@dataclass(frozen=True, slots=True)
class AssetRisk:
    """One asset's oracle price and risk parameters.

    `price` is None when no price was ever read: collateral then counts 0 and a liability
    cannot be valued (the document parser refuses that combination).
    """

    symbol: str
    price: Decimal | None
    conf: Decimal
    price_time: datetime
    max_price_age_seconds: Decimal
    init_weight: Decimal
    maint_weight: Decimal
    init_liability_weight: Decimal
    maint_liability_weight: Decimal
    volatility: Decimal  # annualized, e.g. 0.8 for 80 %
    family: str
    stable: bool = False
    imf: Decimal = Decimal(0)
    tiers: tuple[Tier, ...] = DEFAULT_TIERS


@dataclass(frozen=True, slots=True)
class Holding:
    """A signed amount of an asset on a chain: positive collateral, negative liability."""

    chain: str
    asset: str
    amount: Decimal
    venue: str = "wallet"


@dataclass(frozen=True, slots=True)
class Perp:
    """A perpetual position; `base` signed (long positive), marked at the asset's price."""

    chain: str
    venue: str
    asset: str
    base: Decimal
    entry_price: Decimal
    imr: Decimal
    mmr: Decimal
    imf: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class FactorModel:
    """Optional portfolio-mode inputs: family covariance, correlations and stress ranges.

    `covariance` (annualized, family x family, both orders or one) overrides volatilities and
    correlations when given; `correlations` overrides `RiskParams.default_correlation` per
    pair; `stress_ranges` overrides a family's stress range (relative move of the ±1 scan).
    """

    covariance: Mapping[tuple[str, str], Decimal] = field(default_factory=dict)
    correlations: Mapping[tuple[str, str], Decimal] = field(default_factory=dict)
    stress_ranges: Mapping[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Portfolio:
    """One account's book at one instant, with everything needed to value it."""

    as_of: datetime
    chains: Mapping[str, ChainState]
    assets: Mapping[str, AssetRisk]
    holdings: tuple[Holding, ...] = ()
    perps: tuple[Perp, ...] = ()
    mode: Mode = "standard"
    params: RiskParams = RiskParams()
    factors: FactorModel = FactorModel()
