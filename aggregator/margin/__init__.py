"""Margin: one cross-chain status per account from its valued lines (design §5).

`evaluate(portfolio)` is the single entry point; the input types are re-exported here.
Pure functions over plain data: no I/O, no database, no chain access.
"""

from aggregator.margin.evaluate import evaluate, evaluate_in_market
from aggregator.margin.result import MarginResult, PortfolioRisk, Status
from aggregator.valuation.exposure import LineValue, Sides
from aggregator.valuation.market import Market, prepare_market
from aggregator.valuation.model import (
    AssetRisk,
    ChainState,
    FactorModel,
    Holding,
    Mode,
    Perp,
    Portfolio,
    RiskParams,
    Tier,
)
from aggregator.valuation.scenarios import FactorModelError

__all__ = [
    "AssetRisk",
    "ChainState",
    "FactorModel",
    "FactorModelError",
    "Holding",
    "LineValue",
    "MarginResult",
    "Market",
    "Mode",
    "Perp",
    "Portfolio",
    "PortfolioRisk",
    "RiskParams",
    "Sides",
    "Status",
    "Tier",
    "evaluate",
    "evaluate_in_market",
    "prepare_market",
]
