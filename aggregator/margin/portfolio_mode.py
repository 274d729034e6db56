"""Portfolio mode: net liquidation value against the expected shortfall of the whole book.

`weighted_collateral` is the net liquidation value (collateral minus liabilities at buffered
prices, plus perp pnl); when the account owes anything (a liability or an open perp),
`requirement.maint = max(floor, ES)` (with `stress_in_requirement`, `max(floor, ES, worst stress
loss)`), `floor = portfolio_floor_ratio * gross notional`, and `requirement.init =
portfolio_init_multiplier * requirement.maint`. Losses are computed in binary floating point
over Monte Carlo scenarios (seeded) and the stress grid.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from aggregator.margin.result import PortfolioRisk
from aggregator.margin.roots import largest_satisfying, nearest_root_bracketing
from aggregator.margin.standard import riskiest_chain, with_holding, withdrawal_order, withdrawn
from aggregator.valuation.exposure import AssetExposure, ExposureValue, Sides, value_exposure
from aggregator.valuation.market import Market, confidence_band
from aggregator.valuation.model import SECONDS_PER_YEAR, FactorModel, Holding
from aggregator.valuation.scenarios import (
    StressScenario,
    correlated_draws,
    factor_structure,
    stress_grid,
)

_ZERO = Decimal(0)
_ONE = Decimal(1)


def _to_decimal(x: float) -> Decimal:
    return Decimal(repr(x)) if math.isfinite(x) else _ZERO


@dataclass(frozen=True, slots=True)
class LossFigures:
    """Loss statistics of one set of exposures (USD, positive = loss)."""

    var: float
    es: float
    worst_mc: float
    stress_loss: float
    stress_name: str


@dataclass(frozen=True, slots=True)
class ScenarioEngine:
    """Scenario multipliers (`exp(r) - 1`) per asset of a book, and the stress grid."""

    multipliers: Mapping[str, Sequence[float]]
    stress: Sequence[StressScenario]
    count: int
    tail: int

    def losses(self, exposures: Mapping[str, float]) -> LossFigures:
        """VaR and ES over the Monte Carlo tail, the worst stress loss, for USD exposures."""
        losses = [0.0] * self.count
        for asset, exposure in exposures.items():
            if exposure:
                losses = [
                    loss - exposure * m
                    for loss, m in zip(losses, self.multipliers[asset], strict=True)
                ]
        tail = heapq.nlargest(self.tail, losses) if self.count else [0.0]
        stress_loss, stress_name = 0.0, "none"
        for scenario in self.stress:
            loss = -sum(exposures.get(a, 0.0) * move for a, move in scenario.moves.items())
            if loss > stress_loss:
                stress_loss, stress_name = loss, scenario.name
        return LossFigures(tail[-1], sum(tail) / len(tail), tail[0], stress_loss, stress_name)


@dataclass(frozen=True, slots=True)
class PortfolioBook:
    """A book valued in portfolio mode."""

    market: Market
    groups: Mapping[str, AssetExposure]
    values: Mapping[str, ExposureValue]
    nlv: Sides
    owes: bool
    engine: ScenarioEngine
    horizon_seconds: Decimal


def counted_quantities(market: Market, group: AssetExposure) -> tuple[Decimal, Decimal]:
    """Net and gross tokens of exposure that the valuation counts (collateral with an
    invalid price counts 0; liabilities and perps always count)."""
    valid = market.prices[group.asset].valid
    net = gross = _ZERO
    for _, holding in group.holdings:
        if holding.amount < 0 or valid:
            net += holding.amount
            gross += abs(holding.amount)
    for _, perp in group.perps:
        net += perp.base
        gross += abs(perp.base)
    return net, gross


def _owes(groups: Mapping[str, AssetExposure]) -> bool:
    return any(
        any(h.amount < 0 for _, h in g.holdings) or any(p.base != 0 for _, p in g.perps)
        for g in groups.values()
    )


def value_portfolio_book(
    market: Market, groups: Mapping[str, AssetExposure], factors: FactorModel
) -> PortfolioBook:
    """Net liquidation value and the scenario engine of a book.

    May raise: FactorModelError (impossible correlations), KeyError (unknown chain/asset).
    """
    params = market.params
    values = {a: value_exposure(market, g, weighted=False) for a, g in groups.items()}
    nlv = Sides(
        sum((v.collateral.init for v in values.values()), _ZERO),
        sum((v.collateral.maint for v in values.values()), _ZERO),
    )
    used_chains = {h.chain for g in groups.values() for _, h in g.holdings} | {
        p.chain for g in groups.values() for _, p in g.perps
    }
    horizon = max((market.chains[c].horizon_seconds for c in used_chains), default=_ZERO)
    structure = factor_structure(market.assets, factors, params)
    draws = correlated_draws(structure.correlation, params.scenario_count, params.scenario_seed)
    root_tau = math.sqrt(float(horizon / SECONDS_PER_YEAR))
    multipliers: dict[str, list[float]] = {}
    for asset in groups:
        column = draws[structure.families.index(structure.asset_family[asset])]
        scale = structure.asset_volatility[asset] * root_tau
        multipliers[asset] = [math.expm1(scale * z) for z in column]
    count = params.scenario_count
    tail = max(1, math.ceil(float(_ONE - params.es_confidence) * count - 1e-9))
    stress = stress_grid(structure, list(groups), root_tau * root_tau, params, factors)
    engine = ScenarioEngine(multipliers, stress, count, min(tail, max(count, 1)))
    return PortfolioBook(market, groups, values, nlv, _owes(groups), engine, horizon)


@dataclass(frozen=True, slots=True)
class RiskOutcome:
    """Requirement and its ingredients for one set of prices and quantities."""

    requirement_maint: Decimal
    floor: Decimal
    gross_notional: Decimal
    figures: LossFigures


def risk_outcome(
    book: PortfolioBook,
    quantities: Mapping[str, tuple[Decimal, Decimal]],
    prices: Mapping[str, Decimal],
    owes: bool,
) -> RiskOutcome:
    """`max(floor, ES)` (with `stress_in_requirement`, also the worst stress loss) for the
    given counted quantities at the given prices."""
    exposures = {a: float(net * prices[a]) for a, (net, _) in quantities.items()}
    gross = sum((g * prices[a] for a, (_, g) in quantities.items()), _ZERO)
    floor = book.market.params.portfolio_floor_ratio * gross
    figures = book.engine.losses(exposures)
    if not owes:
        return RiskOutcome(_ZERO, floor, gross, figures)
    risk = max(floor, _to_decimal(figures.es))
    if book.market.params.stress_in_requirement:
        risk = max(risk, _to_decimal(figures.stress_loss))
    return RiskOutcome(risk, floor, gross, figures)


def current_quantities(book: PortfolioBook) -> dict[str, tuple[Decimal, Decimal]]:
    """Counted quantities of every asset group of the book."""
    return {a: counted_quantities(book.market, g) for a, g in book.groups.items()}


def current_prices(book: PortfolioBook) -> dict[str, Decimal]:
    """Oracle prices of the book's assets."""
    return {a: book.market.prices[a].price for a in book.groups}


def portfolio_risk(book: PortfolioBook, outcome: RiskOutcome) -> PortfolioRisk:
    """The `portfolio` section of a result."""
    figures = outcome.figures
    if figures.stress_loss >= figures.worst_mc:
        worst_name, worst = figures.stress_name, figures.stress_loss
    else:
        worst_name, worst = "monte_carlo", figures.worst_mc
    params = book.market.params
    return PortfolioRisk(
        horizon_seconds=book.horizon_seconds,
        confidence=params.es_confidence,
        scenario_count=params.scenario_count,
        var=_to_decimal(figures.var),
        es=_to_decimal(figures.es),
        stress_loss=_to_decimal(figures.stress_loss),
        floor=outcome.floor,
        gross_notional=outcome.gross_notional,
        worst_scenario=worst_name,
        worst_loss=_to_decimal(worst),
    )


def _health_maint_with(book: PortfolioBook, moved: Mapping[str, Decimal]) -> Decimal:
    """`health.maint` with the prices of the assets in `moved` replaced."""
    nlv = book.nlv.maint
    prices = current_prices(book)
    for asset, price in moved.items():
        value = book.values[asset]
        nlv += value.sensitivity.sides_at(price)[0].maint - value.collateral.maint
        prices[asset] = price
    outcome = risk_outcome(book, current_quantities(book), prices, book.owes)
    return nlv - outcome.requirement_maint


def liquidation_price(book: PortfolioBook, asset: str) -> Decimal | None:
    """Price of `asset` nearest to its current one with `health.maint = 0` (bracketed)."""
    price = book.market.prices[asset].price
    if price <= 0 or not book.owes:
        return None
    return nearest_root_bracketing(lambda p: _health_maint_with(book, {asset: p}), price, _ZERO)


def liquidation_shock(book: PortfolioBook) -> Decimal | None:
    """Uniform relative move of all non-stable prices nearest to 0 with `health.maint = 0`."""
    market = book.market
    moving = [a for a in book.groups if not market.assets[a].stable and market.prices[a].price > 0]
    if not moving or not book.owes:
        return None

    def health_at(shock: Decimal) -> Decimal:
        return _health_maint_with(
            book, {a: market.prices[a].price * (_ONE + shock) for a in moving}
        )

    # Bracket on 1 + shock so that the scan stays above a price of 0.
    root = nearest_root_bracketing(lambda m: health_at(m - _ONE), _ONE, _ZERO)
    return None if root is None else root - _ONE


def _health_init_after(
    book: PortfolioBook, asset: str, changed: AssetExposure, owes: bool
) -> Decimal:
    market = book.market
    revalued = value_exposure(market, changed, weighted=False, detail=False)
    before = book.values[asset].collateral.init if asset in book.values else _ZERO
    nlv = book.nlv.init + revalued.collateral.init - before
    quantities = current_quantities(book)
    quantities[asset] = counted_quantities(market, changed)
    prices = current_prices(book)
    prices[asset] = market.prices[asset].price
    outcome = risk_outcome(book, quantities, prices, owes)
    return nlv - market.params.portfolio_init_multiplier * outcome.requirement_maint


def _engine_for(book: PortfolioBook, asset: str, factors: FactorModel) -> PortfolioBook:
    """The book's engine extended with scenario columns for an asset it does not hold yet."""
    if asset in book.engine.multipliers:
        return book
    extended = dict(book.groups)
    extended[asset] = AssetExposure(asset, (), ())
    rebuilt = value_portfolio_book(book.market, extended, factors)
    return PortfolioBook(
        book.market,
        book.groups,
        book.values,
        book.nlv,
        book.owes,
        rebuilt.engine,
        book.horizon_seconds,
    )


def max_borrow(
    book: PortfolioBook, asset: str, health_init: Decimal, factors: FactorModel
) -> Decimal:
    """Largest extra borrow of `asset` keeping `health.init >= 0` (bisection)."""
    market = book.market
    state = market.prices[asset]
    chain = riskiest_chain(market, asset)
    if health_init <= 0 or not state.valid or chain is None or book.nlv.init <= 0:
        return _ZERO
    unit = (state.price + confidence_band(state.price, state.band_width)) * (
        _ONE + market.buffers[(chain, asset)]
    )
    book = _engine_for(book, asset, factors)
    group = book.groups.get(asset, AssetExposure(asset, (), ()))

    def fits(amount: Decimal) -> bool:
        changed = with_holding(group, Holding(chain, asset, -amount, "borrow"))
        return _health_init_after(book, asset, changed, True) >= 0

    return largest_satisfying(fits, book.nlv.init / unit, iterations=60)


def max_withdraw(book: PortfolioBook, asset: str, health_init: Decimal) -> Decimal:
    """Largest withdrawal of `asset` collateral keeping `health.init >= 0` (bisection)."""
    group = book.groups.get(asset)
    if group is None or health_init < 0:
        return _ZERO
    order = withdrawal_order(book.market, group)
    total = sum((h.amount for _, h in order), _ZERO)

    def fits(amount: Decimal) -> bool:
        return _health_init_after(book, asset, withdrawn(group, order, amount), book.owes) >= 0

    return largest_satisfying(fits, total, iterations=60)
