"""Step 3 of a pass: each user's portfolio valued by the pure engine (the same `evaluate_in_market`
as `xmargin risk evaluate`), with the market prepared once per set of chains."""

from __future__ import annotations

from decimal import localcontext

from aggregator.margin import MarginResult, Portfolio, evaluate_in_market, prepare_market
from aggregator.valuation.market import Market
from aggregator.valuation.model import PRECISION


def value_portfolio(portfolio: Portfolio, markets: dict[tuple[str, ...], Market]) -> MarginResult:
    """`evaluate(portfolio)`, with the market prepared once per set of chains: users of one
    pass share as_of, params and assets, and differ only in the chains of their wallets."""
    key = tuple(portfolio.chains)
    market = markets.get(key)
    if market is None:
        with localcontext() as ctx:
            ctx.prec = PRECISION
            market = prepare_market(
                portfolio.as_of, portfolio.params, portfolio.chains, portfolio.assets
            )
        markets[key] = market
    return evaluate_in_market(
        market, portfolio.holdings, portfolio.perps, mode=portfolio.mode, factors=portfolio.factors
    )
