"""Valuation: prices, confidence bands, latency buffers and haircut weights (design §5).

Pure functions over plain data: no I/O, no database, no chain access.
"""

from aggregator.valuation.market import (
    Market,
    chain_freshness,
    confidence_band,
    latency_buffer,
    prepare_market,
    price_state,
)
from aggregator.valuation.model import (
    AssetRisk,
    ChainState,
    FactorModel,
    Holding,
    Perp,
    Portfolio,
    RiskParams,
    Tier,
)
from aggregator.valuation.volatility import ewma_covariance, ewma_volatility
from aggregator.valuation.weights import (
    size_adjusted_asset_weight,
    size_adjusted_liability_weight,
    tiered_amount,
)

__all__ = [
    "AssetRisk",
    "ChainState",
    "FactorModel",
    "Holding",
    "Market",
    "Perp",
    "Portfolio",
    "RiskParams",
    "Tier",
    "chain_freshness",
    "confidence_band",
    "ewma_covariance",
    "ewma_volatility",
    "latency_buffer",
    "prepare_market",
    "price_state",
    "size_adjusted_asset_weight",
    "size_adjusted_liability_weight",
    "tiered_amount",
]
