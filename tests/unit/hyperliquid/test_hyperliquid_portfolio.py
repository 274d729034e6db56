"""Hyperliquid lines in the unified status (docs/risk.md): cross perps with the venue's terms,
the USD cash line as a USDC holding, isolated perps fenced (no collateral, no requirement)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from aggregator.config import load_config
from aggregator.margin import evaluate
from aggregator.publish.portfolios import (
    ObservedChain,
    ObservedLine,
    ObservedPrice,
    PortfolioBatch,
    build_portfolios,
)
from aggregator.valuation.model import Perp

REPO = Path(__file__).resolve().parents[3]
AS_OF = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
READ = datetime(2026, 11, 24, 11, 59, 55, tzinfo=UTC)
CHAIN = "devnet_hyperliquid"
CAIP2 = "hypercore:localnet"


def _line(
    kind: str,
    asset: str,
    raw: int,
    decimals: int,
    market: str | None = None,
    entry: str | None = None,
) -> ObservedLine:
    return ObservedLine(
        1, CHAIN, "0xA", asset, "hyperliquid", kind, raw, decimals,
        Decimal(entry) if entry else None, market,
    )  # fmt: skip


LINES = [
    _line("perp", "ETH", 20000, 4, "ETH|cross|imr=0.2|mmr=0.02", "2950.0"),
    _line("perp", "HYPE", 5000, 2, "HYPE|isolated|imr=0.2|mmr=0.05", "38.0"),
    _line("deposit", "USDC", 2460000000000, 8, "cash"),
]
PRICES = {
    "ETH": ObservedPrice("ETH", Decimal(3000), Decimal(0), READ),
    "USDC": ObservedPrice("USDC", Decimal(1), Decimal(0), READ),
    "HYPE": ObservedPrice("HYPE", Decimal(40), Decimal(0), READ),
}


def _batch(lines: list[ObservedLine]) -> PortfolioBatch:
    config = load_config(REPO / "config" / "devnet.toml")
    chains = [ObservedChain(CHAIN, 1_764_000_000_000, "hypercore-time:1", READ, "latest")]
    return build_portfolios(config, AS_OF, {1: [CHAIN]}, chains, lines, PRICES)


def test_cross_perps_carry_the_venue_terms_and_isolated_ones_are_fenced() -> None:
    portfolio = _batch(LINES).portfolios[1]

    terms = (Decimal("2950.0"), Decimal("0.2"), Decimal("0.02"))
    assert portfolio.perps == (Perp(CAIP2, "hyperliquid", "ETH", Decimal("2"), *terms),)
    (cash,) = portfolio.holdings
    assert (cash.chain, cash.asset, cash.amount, cash.venue) == (
        CAIP2,
        "USDC",
        Decimal("24600"),
        "hyperliquid",
    )
    assert set(portfolio.chains) == {CAIP2}


def test_the_unified_equity_is_the_venues_cross_account_value() -> None:
    result = evaluate(_batch(LINES).portfolios[1])

    # cash 24,600 + 2 * (3,000 - 2,950): the world's cross accountValue (24,700)
    assert result.equity == Decimal("24700")


def test_an_isolated_position_alone_adds_nothing() -> None:
    portfolio = _batch([LINES[1]]).portfolios[1]
    assert portfolio.perps == () and portfolio.holdings == ()


def test_a_perp_line_without_terms_gets_the_strict_fallback() -> None:
    line = _line("perp", "ETH", 10000, 4, None, "3000")
    (perp,) = _batch([line]).portfolios[1].perps
    assert (perp.imr, perp.mmr) == (Decimal(1), Decimal("0.5"))


def test_the_local_world_seeds_the_demo_users_at_their_demo_addresses() -> None:
    from aggregator.demo import demo_evm_wallet
    from chains.hyperliquid.localnet import World, demo_address, seed_demo_world

    world = World(manual_time_ms=0)
    seeded = seed_demo_world(world)

    assert seeded == {name: demo_evm_wallet(name) for name in ("alice", "bob")}
    assert seeded == {name: demo_address(name) for name in ("alice", "bob")}
    assert set(world.accounts) == {address.lower() for address in seeded.values()}
