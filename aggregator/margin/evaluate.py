"""The single entry point: one `Portfolio` in, one `MarginResult` out (design §5)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal, localcontext

from aggregator.margin import portfolio_mode, standard
from aggregator.margin.result import MarginResult, health_factor, margin_status
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
) -> MarginResult:
    """`evaluate` against a market prepared once (`prepare_market`) for many accounts.

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
        return _evaluate_standard(market, groups, liquidation, limits, shape)


def _ordered_lines(
    values: Iterable[ExposureValue], holdings: int, count: int
) -> tuple[LineValue, ...]:
    """Every line, the `holdings` holdings then the perps, each in input order (a group's
    lines carry their input index, so they are placed rather than sorted)."""
    placed: list[LineValue | None] = [None] * count
    for value in values:
        for line in value.lines:
            placed[line.index if line.kind == "holding" else holdings + line.index] = line
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
) -> MarginResult:
    book = standard.value_standard_book(market, groups)
    health = book.health
    factor = health_factor(book.collateral.maint, book.requirement.maint)
    status = margin_status(health, factor, market.params.warning_health_factor)
    stale_chains, invalid = _freshness(market, groups)
    liquidation_prices: dict[str, Decimal | None] = {}
    shock: Decimal | None = None
    if liquidation:
        liquidation_prices = {a: standard.liquidation_price(book, a) for a in groups}
        shock = standard.liquidation_shock(book)
    borrow: dict[str, Decimal] = {}
    withdraw: dict[str, Decimal] = {}
    if limits:
        borrow = {a: standard.max_borrow(book, a) for a in market.assets}
        withdraw = {a: standard.max_withdraw(book, a) for a in market.assets}
    equity = collateral_value = _ZERO
    for value in book.values.values():
        equity += value.equity
        collateral_value += value.collateral_value
    return MarginResult(
        mode="standard",
        status=status,
        stale=bool(stale_chains or invalid),
        stale_chains=stale_chains,
        invalid_prices=invalid,
        equity=equity,
        collateral_value=collateral_value,
        weighted_collateral=book.collateral,
        requirement=book.requirement,
        health=health,
        health_factor=factor,
        free_collateral=max(_ZERO, health.init),
        liquidation_prices=liquidation_prices,
        liquidation_shock=shock,
        max_borrow=borrow,
        max_withdraw=withdraw,
        latency_buffers=_buffers(market),
        lines=_ordered_lines(book.values.values(), *shape),
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
    params = market.params
    requirement = Sides(
        params.portfolio_init_multiplier * outcome.requirement_maint, outcome.requirement_maint
    )
    health = Sides(book.nlv.init - requirement.init, book.nlv.maint - requirement.maint)
    factor = health_factor(book.nlv.maint, requirement.maint)
    status = margin_status(health, factor, params.warning_health_factor)
    stale_chains, invalid = _freshness(market, groups)
    liquidation_prices: dict[str, Decimal | None] = {}
    shock: Decimal | None = None
    if liquidation:
        liquidation_prices = {a: portfolio_mode.liquidation_price(book, a) for a in groups}
        shock = portfolio_mode.liquidation_shock(book)
    borrow: dict[str, Decimal] = {}
    withdraw: dict[str, Decimal] = {}
    if limits:
        borrow = {
            a: portfolio_mode.max_borrow(book, a, health.init, factors) for a in market.assets
        }
        withdraw = {a: portfolio_mode.max_withdraw(book, a, health.init) for a in market.assets}
    return MarginResult(
        mode="portfolio",
        status=status,
        stale=bool(stale_chains or invalid),
        stale_chains=stale_chains,
        invalid_prices=invalid,
        equity=sum((v.equity for v in book.values.values()), _ZERO),
        collateral_value=sum((v.collateral_value for v in book.values.values()), _ZERO),
        weighted_collateral=book.nlv,
        requirement=requirement,
        health=health,
        health_factor=factor,
        free_collateral=max(_ZERO, health.init),
        liquidation_prices=liquidation_prices,
        liquidation_shock=shock,
        max_borrow=borrow,
        max_withdraw=withdraw,
        latency_buffers=_buffers(market),
        lines=_ordered_lines(book.values.values(), *shape),
        portfolio=portfolio_mode.portfolio_risk(book, outcome),
    )
