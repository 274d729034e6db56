"""The single entry point: one `Portfolio` in, one `MarginResult` out (design §5)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal, localcontext
from typing import cast

from aggregator.margin import portfolio_mode, standard
from aggregator.margin.result import (
    MarginResult,
    PortfolioRisk,
    health_factor,
    margin_status,
    new_margin_result,
)
from aggregator.valuation.exposure import (
    AssetExposure,
    ExposureValue,
    LineValue,
    Sides,
    group_by_asset,
)
from aggregator.valuation.market import Market, prepare_market
from aggregator.valuation.model import PRECISION, FactorModel, Holding, Mode, Perp, Portfolio

__all__ = ["PRECISION", "evaluate", "evaluate_in_market"]

_ZERO = Decimal(0)


def evaluate(
    portfolio: Portfolio, *, liquidation: bool = True, limits: bool = True
) -> MarginResult:
    """Value one account and decide its status, in standard or portfolio mode.

    `liquidation=False` skips liquidation prices and the shock (reported as null);
    `limits=False` skips `max_borrow` / `max_withdraw` (reported empty).
    May raise: KeyError if a line names a chain or asset absent from the portfolio;
    FactorModelError (portfolio mode) for impossible correlations.
    """
    with localcontext() as ctx:
        ctx.prec = PRECISION
        market = prepare_market(
            portfolio.as_of, portfolio.params, portfolio.chains, portfolio.assets
        )
        return evaluate_in_market(
            market,
            portfolio.holdings,
            portfolio.perps,
            mode=portfolio.mode,
            factors=portfolio.factors,
            liquidation=liquidation,
            limits=limits,
        )


def evaluate_in_market(
    market: Market,
    holdings: Iterable[Holding],
    perps: Iterable[Perp],
    *,
    mode: Mode = "standard",
    factors: FactorModel = FactorModel(),
    liquidation: bool = True,
    limits: bool = True,
    lines: bool = True,
) -> MarginResult:
    """`evaluate` against a market prepared once (`prepare_market`) for many accounts.

    `lines=False` (standard mode) skips the per-line values: the totals, health, health factor
    and status are the same numbers, operation for operation, and `lines` comes back empty (a
    publish pass stores these headline figures; the lines are rendered on read).
    May raise: as `evaluate`.
    """
    holdings = tuple(holdings)
    perps = tuple(perps)
    with localcontext() as ctx:
        ctx.prec = PRECISION
        groups = group_by_asset(holdings, perps)
        shape = (len(holdings), len(holdings) + len(perps))
        if mode == "portfolio":
            return _evaluate_portfolio(market, groups, factors, liquidation, limits, shape)
        if not lines:
            shape = (0, 0)
        return _evaluate_standard(market, groups, liquidation, limits, shape, lines)


def _ordered_lines(
    values: Iterable[ExposureValue], holdings: int, count: int
) -> tuple[LineValue, ...]:
    """Every line, the `holdings` holdings then the perps, each in input order (a group's
    lines carry their input index, so they are placed rather than sorted)."""
    placed: list[LineValue | None] = [None] * count
    filled = 0
    for value in values:
        lines = value.lines
        filled += len(lines)
        for line in lines:
            placed[line.index if line.kind == "holding" else holdings + line.index] = line
    if filled == count:  # indices are distinct, so every slot is taken: nothing to drop
        return cast("tuple[LineValue, ...]", tuple(placed))
    return tuple(line for line in placed if line is not None)


def _freshness(
    market: Market, groups: Mapping[str, AssetExposure]
) -> tuple[tuple[str, ...], dict[str, str]]:
    prices = market.prices
    invalid = {
        asset: prices[asset].invalid_reason or "invalid"
        for asset in groups
        if not prices[asset].valid
    }
    return market.stale_chains, invalid


def _buffers(market: Market) -> dict[str, dict[str, Decimal]]:
    # A fresh copy per result: results never share a mutable mapping.
    return {chain: dict(row) for chain, row in market.buffer_rows.items()}


def _evaluate_standard(
    market: Market,
    groups: Mapping[str, AssetExposure],
    liquidation: bool,
    limits: bool,
    shape: tuple[int, int],
    detail: bool = True,
) -> MarginResult:
    book = standard.value_standard_book(market, groups, detail=detail)
    assets = market.assets
    return _margin_result(
        "standard",
        market,
        groups,
        book.values,
        book.collateral,
        book.requirement,
        book.health,
        {a: standard.liquidation_price(book, a) for a in groups} if liquidation else {},
        standard.liquidation_shock(book) if liquidation else None,
        {a: standard.max_borrow(book, a) for a in assets} if limits else {},
        {a: standard.max_withdraw(book, a) for a in assets} if limits else {},
        shape,
    )


def _evaluate_portfolio(
    market: Market,
    groups: Mapping[str, AssetExposure],
    factors: FactorModel,
    liquidation: bool,
    limits: bool,
    shape: tuple[int, int],
) -> MarginResult:
    book = portfolio_mode.value_portfolio_book(market, groups, factors)
    outcome = portfolio_mode.risk_outcome(
        book,
        portfolio_mode.current_quantities(book),
        portfolio_mode.current_prices(book),
        book.owes,
    )
    requirement = Sides(
        market.params.portfolio_init_multiplier * outcome.requirement_maint,
        outcome.requirement_maint,
    )
    health = Sides(book.nlv.init - requirement.init, book.nlv.maint - requirement.maint)
    assets = market.assets
    return _margin_result(
        "portfolio",
        market,
        groups,
        book.values,
        book.nlv,
        requirement,
        health,
        {a: portfolio_mode.liquidation_price(book, a) for a in groups} if liquidation else {},
        portfolio_mode.liquidation_shock(book) if liquidation else None,
        {a: portfolio_mode.max_borrow(book, a, health.init, factors) for a in assets}
        if limits
        else {},
        {a: portfolio_mode.max_withdraw(book, a, health.init) for a in assets} if limits else {},
        shape,
        portfolio_mode.portfolio_risk(book, outcome),
    )


def _margin_result(
    mode: Mode,
    market: Market,
    groups: Mapping[str, AssetExposure],
    values: Mapping[str, ExposureValue],
    weighted_collateral: Sides,
    requirement: Sides,
    health: Sides,
    liquidation_prices: dict[str, Decimal | None],
    liquidation_shock: Decimal | None,
    max_borrow: dict[str, Decimal],
    max_withdraw: dict[str, Decimal],
    shape: tuple[int, int],
    portfolio: PortfolioRisk | None = None,
) -> MarginResult:
    """The result either mode reports for a valued book: the status from its health and
    health factor (`weighted_collateral.maint / requirement.maint`), freshness, equity and
    collateral value summed asset by asset, and every line in input order."""
    factor = health_factor(weighted_collateral.maint, requirement.maint)
    stale_chains, invalid = _freshness(market, groups)
    equity = collateral_value = _ZERO
    for value in values.values():
        equity += value.equity
        collateral_value += value.collateral_value
    return new_margin_result(
        mode,
        margin_status(health, factor, market.params.warning_health_factor),
        bool(stale_chains or invalid),
        stale_chains,
        invalid,
        equity,
        collateral_value,
        weighted_collateral,
        requirement,
        health,
        factor,
        max(_ZERO, health.init),
        liquidation_prices,
        liquidation_shock,
        max_borrow,
        max_withdraw,
        _buffers(market),
        _ordered_lines(values.values(), *shape),
        portfolio,
    )
