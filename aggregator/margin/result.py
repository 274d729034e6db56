"""The margin status of one account: what `evaluate` returns and what gets published."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from aggregator.valuation.lines import LineValue, Sides, new_instance, slot_setters
from aggregator.valuation.model import Mode

Status = Literal["healthy", "warning", "margin_call", "liquidatable"]


@dataclass(frozen=True, slots=True)
class PortfolioRisk:
    """Portfolio-mode figures: losses over the latency horizon, USD, positive = loss."""

    horizon_seconds: Decimal
    confidence: Decimal
    scenario_count: int
    var: Decimal
    es: Decimal
    stress_loss: Decimal  # worst loss of the SPAN-like grid
    floor: Decimal  # portfolio_floor_ratio * gross notional
    gross_notional: Decimal
    worst_scenario: str
    worst_loss: Decimal


@dataclass(frozen=True, slots=True)
class MarginResult:
    """One cross-chain margin status (design §5)."""

    mode: Mode
    status: Status
    stale: bool
    stale_chains: tuple[str, ...]
    invalid_prices: Mapping[str, str]  # asset -> reason, for assets the book uses
    equity: Decimal
    collateral_value: Decimal
    weighted_collateral: Sides
    requirement: Sides
    health: Sides
    health_factor: Decimal | None
    free_collateral: Decimal
    liquidation_prices: Mapping[str, Decimal | None]
    liquidation_shock: Decimal | None
    max_borrow: Mapping[str, Decimal]
    max_withdraw: Mapping[str, Decimal]
    latency_buffers: Mapping[str, Mapping[str, Decimal]]
    lines: tuple[LineValue, ...]
    portfolio: PortfolioRisk | None = None


(
    _R_MODE,
    _R_STATUS,
    _R_STALE,
    _R_STALE_CHAINS,
    _R_INVALID_PRICES,
    _R_EQUITY,
    _R_COLLATERAL_VALUE,
    _R_WEIGHTED_COLLATERAL,
    _R_REQUIREMENT,
    _R_HEALTH,
    _R_HEALTH_FACTOR,
    _R_FREE_COLLATERAL,
    _R_LIQUIDATION_PRICES,
    _R_LIQUIDATION_SHOCK,
    _R_MAX_BORROW,
    _R_MAX_WITHDRAW,
    _R_LATENCY_BUFFERS,
    _R_LINES,
    _R_PORTFOLIO,
) = slot_setters(MarginResult)


def new_margin_result(
    mode: Mode,
    status: Status,
    stale: bool,
    stale_chains: tuple[str, ...],
    invalid_prices: Mapping[str, str],
    equity: Decimal,
    collateral_value: Decimal,
    weighted_collateral: Sides,
    requirement: Sides,
    health: Sides,
    health_factor: Decimal | None,
    free_collateral: Decimal,
    liquidation_prices: Mapping[str, Decimal | None],
    liquidation_shock: Decimal | None,
    max_borrow: Mapping[str, Decimal],
    max_withdraw: Mapping[str, Decimal],
    latency_buffers: Mapping[str, Mapping[str, Decimal]],
    lines: tuple[LineValue, ...],
    portfolio: PortfolioRisk | None = None,
) -> MarginResult:
    """`MarginResult(...)` (same arguments), built without the frozen dataclass's per-field
    setattr: one result per account on the hot path (see `aggregator.valuation.lines`)."""
    result: MarginResult = new_instance(MarginResult)
    _R_MODE(result, mode)
    _R_STATUS(result, status)
    _R_STALE(result, stale)
    _R_STALE_CHAINS(result, stale_chains)
    _R_INVALID_PRICES(result, invalid_prices)
    _R_EQUITY(result, equity)
    _R_COLLATERAL_VALUE(result, collateral_value)
    _R_WEIGHTED_COLLATERAL(result, weighted_collateral)
    _R_REQUIREMENT(result, requirement)
    _R_HEALTH(result, health)
    _R_HEALTH_FACTOR(result, health_factor)
    _R_FREE_COLLATERAL(result, free_collateral)
    _R_LIQUIDATION_PRICES(result, liquidation_prices)
    _R_LIQUIDATION_SHOCK(result, liquidation_shock)
    _R_MAX_BORROW(result, max_borrow)
    _R_MAX_WITHDRAW(result, max_withdraw)
    _R_LATENCY_BUFFERS(result, latency_buffers)
    _R_LINES(result, lines)
    _R_PORTFOLIO(result, portfolio)
    return result


def margin_status(health: Sides, health_factor: Decimal | None, warning_at: Decimal) -> Status:
    """Precedence: liquidatable > margin_call > warning > healthy."""
    if health.maint < 0:
        return "liquidatable"
    if health.init < 0:
        return "margin_call"
    if health_factor is not None and health_factor < warning_at:
        return "warning"
    return "healthy"


def health_factor(weighted_collateral_maint: Decimal, requirement_maint: Decimal) -> Decimal | None:
    """`wc_maint / req_maint`, None when nothing is owed."""
    if requirement_maint <= 0:
        return None
    return weighted_collateral_maint / requirement_maint
