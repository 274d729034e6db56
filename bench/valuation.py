"""Risk-engine throughput on one core: users valued per second in standard mode.

Each user has 10 lines (8 holdings over 3 chains and 5 assets, 2 perps) in one shared market
(the example portfolio's chains and assets: SOL has a size adjustment and tiers, so its lines
take the sorted-fill path). The market is prepared once, as a publish pass does. Timings
exclude building the inputs. Figures printed:

- float fast path: `evaluate_fast` -> totals, health, health factor, status. No lines,
  no liquidation prices, no limits (error vs Decimal bounded by 1e-9 in the tests).
- Decimal core: `evaluate_in_market(..., liquidation=False, limits=False)` -> the full exact
  `MarginResult` with every line (what is stored), no liquidation prices or limits. Each
  result is dropped once made, as a publish pass does.
- Decimal core, all kept: the same with every result kept in one list (the cyclic garbage
  collector then rescans the growing heap: the figure a batch that holds everything sees).
- result_to_json: serialising core results (made in chunks of 1000, untimed).
- core + result_to_json: both, per user, streamed: the publish step without the database.
- Decimal + liquidation: the core plus a liquidation price per asset and the uniform shock.
- Decimal full: the above plus max_borrow / max_withdraw for every asset (a what-if figure).

Usage: .venv/bin/python bench/valuation.py [USERS]   (default 100000)
"""

from __future__ import annotations

import json
import random
import sys
import time
from decimal import Decimal
from pathlib import Path

from aggregator.margin import Holding, Perp, evaluate_in_market, prepare_market
from aggregator.margin.fast import evaluate_fast, fast_market
from aggregator.risk.document import parse_portfolio
from aggregator.risk.output import result_to_json

EXAMPLE = Path(__file__).resolve().parents[1] / "config" / "examples" / "portfolio.json"


def build_users(
    count: int, assets: list[str], chains: list[str]
) -> list[tuple[list[Holding], list[Perp]]]:
    rng = random.Random(7)
    users = []
    for _ in range(count):
        holdings = []
        for _ in range(8):
            symbol = rng.choice(assets)
            amount = Decimal(rng.randint(1, 5000)) / (
                1000 if symbol in ("BTC", "ETH", "wstETH") else 10
            )
            if symbol == "USDC":
                amount *= 100
                if rng.random() < 0.6:
                    amount = -amount
            holdings.append(Holding(rng.choice(chains), symbol, amount, "venue"))
        perps = [
            Perp(
                "solana",
                "drift",
                "SOL",
                Decimal(rng.randint(-50, 50)),
                Decimal(140),
                Decimal("0.1"),
                Decimal("0.05"),
                Decimal("0.0005"),
            ),
            Perp(
                "arbitrum",
                "gmx",
                "ETH",
                Decimal(rng.randint(-5, 5)) / 2,
                Decimal(2900),
                Decimal("0.1"),
                Decimal("0.05"),
            ),
        ]
        users.append((holdings, perps))
    return users


def rate(label: str, count: int, seconds: float) -> None:
    print(f"{label:<44} {count:>7} users {seconds:8.2f} s {count / seconds:>10,.0f} users/s")


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    portfolio = parse_portfolio(json.loads(EXAMPLE.read_text(), parse_float=Decimal))
    market = prepare_market(portfolio.as_of, portfolio.params, portfolio.chains, portfolio.assets)
    users = build_users(count, list(portfolio.assets), list(portfolio.chains))
    print(f"{count} users x 10 lines, one core, Python {sys.version.split()[0]}")

    started = time.perf_counter()
    floats = fast_market(market)
    statuses = [evaluate_fast(floats, h, p).status for h, p in users]
    rate("float fast path (status, no lines)", count, time.perf_counter() - started)

    agree = 0
    started = time.perf_counter()
    for (h, p), fast_status in zip(users, statuses, strict=True):
        result = evaluate_in_market(market, h, p, liquidation=False, limits=False)
        agree += result.status == fast_status
    rate("Decimal core (exact result, all lines)", count, time.perf_counter() - started)
    print(f"  fast-path status agrees with Decimal for {agree}/{count} users")

    started = time.perf_counter()
    kept = [evaluate_in_market(market, h, p, liquidation=False, limits=False) for h, p in users]
    rate("Decimal core, all results kept in memory", count, time.perf_counter() - started)
    del kept

    serialising = 0.0
    for start in range(0, count, 1000):
        chunk = [
            evaluate_in_market(market, h, p, liquidation=False, limits=False)
            for h, p in users[start : start + 1000]
        ]
        started = time.perf_counter()
        for result in chunk:
            result_to_json(result)
        serialising += time.perf_counter() - started
    rate("result_to_json of core results", count, serialising)

    started = time.perf_counter()
    for h, p in users:
        result_to_json(evaluate_in_market(market, h, p, liquidation=False, limits=False))
    rate("Decimal core + result_to_json (publish step)", count, time.perf_counter() - started)

    subset = users[: max(1, count // 10)]
    started = time.perf_counter()
    for h, p in subset:
        evaluate_in_market(market, h, p, liquidation=True, limits=False)
    rate("Decimal + liquidation prices + shock", len(subset), time.perf_counter() - started)

    started = time.perf_counter()
    for h, p in subset:
        evaluate_in_market(market, h, p, liquidation=True, limits=True)
    rate("Decimal full (+ max_borrow/max_withdraw)", len(subset), time.perf_counter() - started)


if __name__ == "__main__":
    main()
