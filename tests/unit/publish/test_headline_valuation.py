"""What a publish pass stores (the headline, valued without lines, liquidation prices or
limits) is the full result's headline, digit for digit, in both modes."""

from __future__ import annotations

import dataclasses
import json
import random
from decimal import Decimal
from pathlib import Path

import pytest

from aggregator.margin import Holding, Perp, Portfolio, evaluate_in_market, prepare_market
from aggregator.risk.document import parse_portfolio
from aggregator.risk.output import headline_to_json, result_to_json

EXAMPLE = Path(__file__).resolve().parents[3] / "config" / "examples" / "portfolio.json"


def _books(portfolio: Portfolio, count: int) -> list[tuple[list[Holding], list[Perp]]]:
    rng = random.Random(11)
    assets, chains = list(portfolio.assets), list(portfolio.chains)
    books = []
    for _ in range(count):
        holdings = [
            Holding(
                rng.choice(chains),
                symbol := rng.choice(assets),
                Decimal(rng.randint(-4000, 9000)) / (1000 if symbol != "USDC" else 1),
                "venue",
            )
            for _ in range(rng.randint(0, 9))
        ]
        perps = [
            Perp(
                rng.choice(chains),
                "perps",
                rng.choice(assets),
                Decimal(rng.randint(-30, 30)) / 3,
                Decimal(rng.randint(1, 5000)),
                Decimal("0.1"),
                Decimal("0.05"),
                Decimal("0.0005"),
            )
            for _ in range(rng.randint(0, 2))
        ]
        books.append((holdings, perps))
    return books


@pytest.mark.parametrize("mode", ["standard", "portfolio"])
def test_the_headline_without_lines_is_the_full_results_headline(mode: str) -> None:
    portfolio = parse_portfolio(json.loads(EXAMPLE.read_text(), parse_float=Decimal))
    portfolio = dataclasses.replace(portfolio, mode=mode)  # type: ignore[arg-type]
    market = prepare_market(portfolio.as_of, portfolio.params, portfolio.chains, portfolio.assets)
    statuses = set()
    # Portfolio mode's full result (scenario scans, limits) costs far more per book.
    for holdings, perps in _books(portfolio, 300 if mode == "standard" else 5):
        full = evaluate_in_market(market, holdings, perps, mode=portfolio.mode)
        headline = evaluate_in_market(
            market,
            holdings,
            perps,
            mode=portfolio.mode,
            liquidation=False,
            limits=False,
            lines=False,
        )
        expected = result_to_json(full)
        stored = headline_to_json(headline)
        assert stored == {key: expected[key] for key in stored}
        if mode == "standard":
            assert headline.lines == ()
        statuses.add(full.status)
    assert len(statuses) >= 2  # the books span more than one status
