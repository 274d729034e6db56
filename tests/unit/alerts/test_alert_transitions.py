"""Which status changes are alerts."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from aggregator.alerts.outbox import transitions
from aggregator.store.published.statuses import StatusRecord


def _status(state: str, *stale: str) -> StatusRecord:
    zero = Decimal(0)
    return StatusRecord(
        user_id=1,
        as_of=datetime(2026, 1, 1, tzinfo=UTC),
        status=state,
        stale=bool(stale),
        stale_chains=stale,
        health_factor=None,
        equity_usd=zero,
        weighted_collateral_init_usd=zero,
        weighted_collateral_maint_usd=zero,
        requirement_init_usd=zero,
        requirement_maint_usd=zero,
        health_init_usd=zero,
        health_maint_usd=zero,
        free_collateral_usd=zero,
    )


def test_transitions() -> None:
    assert transitions(None, _status("healthy")) == []
    assert transitions(None, _status("margin_call")) == ["margin_call"]
    assert transitions(None, _status("healthy", "base")) == ["stale"]
    assert transitions(_status("healthy"), _status("warning")) == ["warning"]
    assert transitions(_status("warning"), _status("liquidatable")) == ["liquidatable"]
    assert transitions(_status("liquidatable"), _status("margin_call")) == ["margin_call"]
    assert transitions(_status("margin_call"), _status("healthy")) == ["healthy"]
    assert transitions(_status("healthy"), _status("healthy")) == []
    assert transitions(_status("warning", "base"), _status("warning", "base")) == []
    assert transitions(_status("warning", "base"), _status("healthy", "base", "sol")) == [
        "healthy",
        "stale",
    ]
    assert transitions(_status("warning", "base"), _status("warning")) == []  # fresh again
