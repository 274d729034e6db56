"""The API view of a status: renamed to the API conventions, every null explained."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from aggregator.api.reads.views import liquidation_reason, render_status, render_summary
from aggregator.api.schemas import MarginStatus
from aggregator.margin import evaluate
from aggregator.risk.document import parse_portfolio
from aggregator.risk.output import result_to_json

BOOK = {
    "as_of": "2026-12-01T12:00:00Z",
    "chains": {
        "eip155:1": {
            "block_time": "2026-12-01T11:59:48Z",
            "finality_seconds": "0",
            "liquidation_latency_seconds": "60",
            "max_staleness_seconds": "300",
        }
    },
    "assets": {
        "ETH": {
            "price": "3000", "conf": "1.5", "price_time": "2026-12-01T11:59:30Z",
            "max_price_age_seconds": "3600", "init_weight": "0.8", "maint_weight": "0.9",
            "init_liability_weight": "1.2", "maint_liability_weight": "1.1",
            "volatility": "0.8", "family": "ETH",
        },
        "USDC": {
            "price": "1", "conf": "0", "price_time": "2026-12-01T11:59:30Z",
            "max_price_age_seconds": "3600", "init_weight": "0.95", "maint_weight": "0.98",
            "init_liability_weight": "1.05", "maint_liability_weight": "1.02",
            "volatility": "0.02", "family": "USD", "stable": True,
        },
    },
    "holdings": [
        {"chain": "eip155:1", "asset": "ETH", "amount": "10", "venue": "aave_v3:main"},
        {"chain": "eip155:1", "asset": "USDC", "amount": "-20000", "venue": "aave_v3:main"},
    ],
}  # fmt: skip


def _view(book: dict[str, object]) -> dict[str, object]:
    return render_status(result_to_json(evaluate(parse_portfolio(book))), book)


def test_a_borrower_has_a_health_factor_and_an_eth_liquidation_price() -> None:
    view = _view(BOOK)
    MarginStatus.model_validate(view)
    assert view["health_factor_reason"] is None
    prices = {p["asset"]: p for p in view["liquidation_prices"]}  # type: ignore[attr-defined]
    eth = prices["ETH"]
    assert eth["price_usd"] == "3000" and eth["liquidation_price_usd_reason"] is None
    assert Decimal(2000) < Decimal(eth["liquidation_price_usd"]) < Decimal(3000)
    # Freshness of each input, relative to as_of.
    (chain,) = view["chains"]  # type: ignore[misc]
    assert chain["data_age_seconds"] == "12"
    price = {p["asset"]: p for p in view["prices"]}["ETH"]  # type: ignore[attr-defined]
    assert (price["age_seconds"], price["valid"]) == ("30", True)


def test_without_debt_the_nulls_say_no_debt() -> None:
    book = dict(BOOK, holdings=[BOOK["holdings"][0]])  # type: ignore[index]
    view = _view(book)
    assert (view["health_factor"], view["health_factor_reason"]) == (None, "no_debt")
    (eth,) = view["liquidation_prices"]  # type: ignore[misc]
    assert (eth["liquidation_price_usd"], eth["liquidation_price_usd_reason"]) == (
        None,
        "no_debt",
    )
    assert (view["liquidation_shock"], view["liquidation_shock_reason"]) == (None, "no_debt")


def test_reasons_for_invalid_prices_no_exposure_and_stale_chains() -> None:
    document = {
        "invalid_prices": {"ETH": "older than max_price_age_seconds"},
        "stale_chains": ["eip155:10"],
        "requirement": {"init": "5", "maint": "5"},
        "lines": [],
    }
    assert liquidation_reason(document, "ETH", [{"amount": "1", "chain": "eip155:1"}]) == (
        "price_invalid"
    )
    assert liquidation_reason(document, "BTC", []) == "no_exposure"
    assert liquidation_reason(document, "OP", [{"amount": "3", "chain": "eip155:10"}]) == "stale"
    assert liquidation_reason(document, "SOL", [{"amount": "3", "chain": "eip155:1"}]) == (
        "unreachable"
    )


def test_a_history_summary_keeps_the_headline_numbers() -> None:
    document = result_to_json(evaluate(parse_portfolio(BOOK)))
    recorded = datetime(2026, 12, 1, 12, 0, 1, tzinfo=UTC)
    summary = render_summary(document, seq=7, recorded_at=recorded)
    assert summary["seq"] == 7 and summary["recorded_at"] == "2026-12-01T12:00:01Z"
    assert summary["equity_usd"] == document["equity"] == "10000"
    assert summary["health_factor"] == document["health_factor"]
