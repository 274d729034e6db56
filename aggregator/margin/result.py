"""The margin status of one account: what `evaluate` returns and what gets published."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from aggregator.valuation.exposure import LineValue, Sides
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
