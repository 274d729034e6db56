"""Step 3 of a pass: each user's portfolio valued by the pure engine (the same `evaluate_in_market`
as `xmargin risk evaluate`), with the market prepared once per set of chains.

A pass stores the headline figures only (`value_headline`: no per-line values, liquidation
prices or limits, the same totals operation for operation); the full result is computed when a
document is rendered on read (`value_portfolio`).
"""

from __future__ import annotations

from decimal import localcontext

from aggregator.margin import MarginResult, Portfolio, evaluate_in_market, prepare_market
from aggregator.valuation.market import Market
from aggregator.valuation.model import PRECISION


def _market(portfolio: Portfolio, markets: dict[tuple[str, ...], Market]) -> Market:
    key = tuple(portfolio.chains)
    market = markets.get(key)
    if market is None:
        with localcontext() as ctx:
            ctx.prec = PRECISION
            market = prepare_market(
                portfolio.as_of, portfolio.params, portfolio.chains, portfolio.assets
            )
        markets[key] = market
    return market


def value_portfolio(portfolio: Portfolio, markets: dict[tuple[str, ...], Market]) -> MarginResult:
    """`evaluate(portfolio)`, with the market prepared once per set of chains: users of one
    pass share as_of, params and assets, and differ only in the chains of their wallets."""
    return _evaluate(portfolio, markets, detail=True)


def value_headline(portfolio: Portfolio, markets: dict[tuple[str, ...], Market]) -> MarginResult:
    """`value_portfolio` without lines, liquidation prices or limits: the same status, health,
    totals and freshness."""
    return _evaluate(portfolio, markets, detail=False)


def _evaluate(
    portfolio: Portfolio, markets: dict[tuple[str, ...], Market], *, detail: bool
) -> MarginResult:
    return evaluate_in_market(
        _market(portfolio, markets),
        portfolio.holdings,
        portfolio.perps,
        mode=portfolio.mode,
        factors=portfolio.factors,
        liquidation=detail,
        limits=detail,
        lines=detail,
    )
