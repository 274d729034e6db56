"""Parsing portfolio documents (errors name the field) and writing status documents."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from aggregator.margin import evaluate
from aggregator.risk.document import PortfolioError, parse_portfolio
from aggregator.risk.output import decimal_text, result_to_json

EXAMPLE = Path(__file__).resolve().parents[3] / "config" / "examples" / "portfolio.json"


def example() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(EXAMPLE.read_text(), parse_float=Decimal)
    return doc


def error_for(doc: dict[str, Any]) -> str:
    with pytest.raises(PortfolioError) as info:
        parse_portfolio(doc)
    return str(info.value)


def test_example_parses_with_exact_decimals() -> None:
    p = parse_portfolio(example())
    assert p.assets["USDC"].price == Decimal("1.0001")
    assert p.holdings[2].amount == Decimal(-30000)
    assert p.assets["SOL"].tiers[1].ratio == Decimal("0.9")
    assert p.chains["solana"].block_time.microsecond == 600000


def test_numbers_may_be_json_numbers_or_strings() -> None:
    doc = example()
    doc["holdings"][0]["amount"] = 10  # int
    doc["holdings"][1]["amount"] = 5.5  # float: read through its shortest repr
    p = parse_portfolio(doc)
    assert p.holdings[0].amount == Decimal(10) and p.holdings[1].amount == Decimal("5.5")


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("holdings", 2, "amount"), "abc", "holdings[2].amount: not a decimal number"),
        (("holdings", 0, "asset"), "DOGE", "holdings[0].asset: unknown asset 'DOGE'"),
        (("holdings", 0, "chain"), "base", "holdings[0].chain: unknown chain 'base'"),
        (("assets", "ETH", "price"), "-1", "assets.ETH.price: must be positive"),
        (
            ("assets", "ETH", "init_weight"),
            "0.9",
            "assets.ETH.init_weight: must not exceed maint_weight",
        ),
        (
            ("assets", "SOL", "tiers", 1, 0),
            "90000",
            "assets.SOL.tiers[1][0]: must be 100000 (bands are contiguous from 0)",
        ),
        (
            ("chains", "ethereum", "block_time"),
            "2025-06-01T11:59:48",
            "chains.ethereum.block_time: ISO 8601 time needs a UTC offset (e.g. Z)",
        ),
        (("perps", 0, "imr"), "0.01", "perps[0].imr: must be at least mmr"),
        (("params", "latency_z"), "NaN", "params.latency_z: not a finite decimal number"),
        (("mode",), "cross", "mode: must be 'standard' or 'portfolio'"),
    ],
)
def test_errors_name_the_field(path: tuple[Any, ...], value: object, message: str) -> None:
    doc = example()
    target: Any = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert error_for(doc) == message


def test_unknown_and_missing_fields_are_named() -> None:
    doc = example()
    doc["holdings"][1]["amout"] = "1"
    assert error_for(doc) == "holdings[1].amout: unknown field"
    doc = example()
    del doc["assets"]["BTC"]["volatility"]
    assert error_for(doc) == "assets.BTC.volatility: required"


def test_impossible_correlations_are_refused_in_portfolio_mode() -> None:
    doc = example()
    doc["mode"] = "portfolio"
    doc["correlations"] = {"ETH": {"BTC": "0.9", "SOL": "-0.9"}, "BTC": {"SOL": "0.9"}}
    assert error_for(doc) == "correlations: correlation matrix is not positive semi-definite"


def test_decimal_text_never_uses_exponents_or_floats() -> None:
    assert decimal_text(Decimal("1E+3")) == "1000"
    assert decimal_text(Decimal("1.50")) == "1.5"
    assert decimal_text(Decimal("-0.0000000000000000001")) == "0"
    assert decimal_text(Decimal("0.000000000000000001")) == "0.000000000000000001"


def test_status_document_shape() -> None:
    status = result_to_json(evaluate(parse_portfolio(example())))
    assert status["status"] == "healthy"
    assert status["health_factor"] is not None and isinstance(status["equity"], str)
    assert set(status["weighted_collateral"]) == {"init", "maint"}
    assert status["liquidation_prices"]["ETH"] is None  # other collateral covers the debt
    assert len(status["lines"]) == 7  # 5 holdings + 2 perps
    assert status["lines"][5]["kind"] == "perp" and status["lines"][5]["notional"] == "15000"
    assert status["portfolio"] is None

    def no_floats(value: object) -> None:
        assert not isinstance(value, float)
        if isinstance(value, dict):
            for v in value.values():
                no_floats(v)
        elif isinstance(value, list):
            for v in value:
                no_floats(v)

    no_floats(status)
    json.dumps(status)  # serializable as is


def test_schema_lists_the_fields_the_parser_reads() -> None:
    from aggregator.risk import document as rd

    schema = json.loads((EXAMPLE.parents[1] / "portfolio.schema.json").read_text())
    props = schema["properties"]
    assert set(schema["required"]) == set(rd._TOP_REQUIRED)
    assert set(props) == set(rd._TOP_REQUIRED) | set(rd._TOP_OPTIONAL)
    asset_schema = props["assets"]["additionalProperties"]
    assert set(asset_schema["required"]) == set(rd._ASSET_REQUIRED)
    assert set(props["params"]["properties"]) == {
        *rd._PARAM_BOUNDS,
        "scenario_count",
        "scenario_seed",
        "stress_in_requirement",
    }


def test_worked_example_in_docs_matches_the_engine() -> None:
    import re

    text = (EXAMPLE.parents[2] / "docs" / "risk.md").read_text()
    match = re.search(r"```json\n(.*?)```", text, re.S)
    assert match is not None
    status = result_to_json(evaluate(parse_portfolio(json.loads(match.group(1)))))
    assert status["health"] == {"init": "10000", "maint": "11500"}
    assert status["equity"] == "15000" and status["status"] == "healthy"
    assert status["liquidation_prices"]["ETH"] == "647.058823529411764706"  # 5500 / 8.5
    assert status["liquidation_shock"] == "-0.676470588235294118"
    assert status["max_borrow"]["USDC"] == "8333.333333333333333333"  # 10,000 / 1.2
    assert status["max_withdraw"]["ETH"] == "6.25"  # 10,000 / (2000 * 0.8)
