"""Stored observations → risk-engine portfolios: units, CAIP-2 names, per-user chains."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Context, Decimal
from pathlib import Path

from aggregator.config import LoadedConfig, load_config
from aggregator.publish.portfolios import (
    ObservedChain,
    ObservedLine,
    ObservedPrice,
    build_portfolios,
)

REPO = Path(__file__).resolve().parents[3]
AS_OF = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
BLOCK = datetime(2026, 11, 24, 11, 59, 30, tzinfo=UTC)


def _config() -> LoadedConfig:
    return load_config(REPO / "config" / "devnet.toml")


def test_lines_become_human_amounts_on_caip2_chains_for_each_user() -> None:
    config = _config()
    chains = [
        ObservedChain("devnet_l1", 18, "0xabc", BLOCK, "latest"),
        ObservedChain("devnet_solana", 1001, "hash", BLOCK, "finalized"),
    ]
    lines = [
        ObservedLine(1, "devnet_l1", "0xA", "USDC", "wallet", "balance", 1_234_567_891, 6),
        ObservedLine(1, "devnet_l1", "0xA", "USDC", "aave_v3:devnet", "borrow", -500 * 10**6, 6),
        ObservedLine(1, "devnet_l1", "0xA", "WETH", "wallet", "balance", 0, 18),
        ObservedLine(
            2, "devnet_solana", "So1", "SOL", "drift", "perp", -3 * 10**9, 9, Decimal(140), "perp:0"
        ),
        ObservedLine(3, "devnet_l1", "0xC", "USDC", "wallet", "balance", 5, 6),  # no wallets row
    ]
    prices = {"USDC": ObservedPrice("USDC", Decimal(1), Decimal(0), BLOCK)}
    prices["SOL"] = ObservedPrice("SOL", Decimal(150), Decimal("0.05"), BLOCK)
    prices["WBTC"] = ObservedPrice("WBTC", Decimal(60000), Decimal(20), BLOCK)
    batch = build_portfolios(
        config,
        AS_OF,
        {1: ["devnet_l1"], 2: ["devnet_solana", "devnet_l2"]},
        chains,
        lines,
        prices,
    )
    portfolios = batch.portfolios
    assert set(portfolios) == {1, 2}
    assert batch.unpriced == {} and batch.unvalued == {}

    alice = portfolios[1]
    assert list(alice.chains) == ["eip155:31337"]  # only the chains of alice's wallets
    assert [(h.chain, h.asset, h.amount, h.venue) for h in alice.holdings] == [
        ("eip155:31337", "USDC", Decimal("1234.567891"), "wallet"),
        ("eip155:31337", "USDC", Decimal("-500"), "aave_v3:devnet"),
    ]  # the zero WETH balance carries nothing
    assert alice.assets["USDC"].price == Decimal(1)
    assert "ETH" not in alice.assets  # never read
    assert [(t.start, t.end, t.ratio) for t in alice.assets["WBTC"].tiers] == [
        (Decimal(0), Decimal(500), Decimal(1)),
        (Decimal(500), Decimal(2000), Decimal("0.9")),
        (Decimal(2000), None, Decimal("0.5")),
    ]

    bob = portfolios[2]
    # devnet_l2 was never read: no state for it (publish flags it stale separately).
    assert list(bob.chains) == ["solana:FCTrmGKGCJ2XvpSunv7BBcoojPJGxwaJ"]
    (perp,) = bob.perps
    assert (perp.base, perp.entry_price, perp.imr, perp.mmr, perp.imf) == (
        Decimal(-3),
        Decimal(140),
        Decimal("0.10"),
        Decimal("0.05"),
        Decimal("0.0005"),
    )
    assert bob.chains["solana:FCTrmGKGCJ2XvpSunv7BBcoojPJGxwaJ"].liquidation_latency_seconds == 30


def test_risk_settings_and_volatility_override_reach_the_engine() -> None:
    config = _config()
    prices = {
        symbol: ObservedPrice(symbol, Decimal(3000), Decimal(1), BLOCK)
        for symbol in ("ETH", "WETH")
    }
    batch = build_portfolios(
        config,
        AS_OF,
        {7: ["devnet_l1"]},
        [ObservedChain("devnet_l1", 1, "0x", BLOCK, "latest")],
        [],
        prices,
        volatility_override={"ETH": Decimal("1.7")},
    )
    book = batch.portfolios[7]
    assert book.holdings == () and book.perps == ()
    assert book.params.latency_z == Decimal("2.326")
    assert book.params.warning_health_factor == Decimal("1.25")
    assert book.assets["ETH"].volatility == Decimal("1.7")
    assert book.assets["WETH"].volatility == Decimal("0.80")
    assert set(book.assets) == {"ETH", "WETH"}  # only assets with a price reach the engine


def test_unpriced_collateral_counts_nothing_and_unpriced_debt_is_not_valued() -> None:
    config = _config()
    chain = [ObservedChain("devnet_l1", 1, "0x", BLOCK, "latest")]
    lines = [
        ObservedLine(1, "devnet_l1", "0xA", "USDC", "wallet", "balance", 10**6, 6),
        ObservedLine(1, "devnet_l1", "0xA", "WBTC", "wallet", "balance", 10**8, 8),
        ObservedLine(2, "devnet_l1", "0xB", "USDC", "wallet", "balance", 10**6, 6),
        ObservedLine(2, "devnet_l1", "0xB", "WBTC", "aave_v3:devnet", "borrow", -(10**8), 8),
    ]
    prices = {"USDC": ObservedPrice("USDC", Decimal(1), Decimal(0), BLOCK)}
    batch = build_portfolios(
        config, AS_OF, {1: ["devnet_l1"], 2: ["devnet_l1"]}, chain, lines, prices
    )
    assert [h.asset for h in batch.portfolios[1].holdings] == ["USDC"]
    assert batch.unpriced == {1: ("WBTC",)}
    assert 2 not in batch.portfolios
    assert batch.unvalued == {2: "WBTC is owed but has no valid price yet"}


def test_devnet_config_reads_the_demo_solana_world() -> None:
    """config/devnet.toml and the local Solana demo world name the same accounts."""
    from aggregator.specs import chain_spec
    from chains.solana.localnet.demo import demo_spec
    from chains.solana.spec import SolanaChainSpec

    config = _config()
    spec = chain_spec(config, "devnet_solana")
    assert isinstance(spec, SolanaChainSpec)
    expected = demo_spec(tuple(config.chains["devnet_solana"].rpc_urls), marginfi=True)
    assert spec.genesis_hash == expected.genesis_hash
    assert (spec.mints, spec.drift, spec.kamino, spec.marginfi) == (
        expected.mints,
        expected.drift,
        expected.kamino,
        expected.marginfi,
    )
    assert [(f.asset, f.account, f.feed_id) for f in spec.feeds] == [
        ("SOL", expected.feeds[0].account, expected.feeds[0].feed_id),
        ("PYUSD", expected.feeds[1].account, expected.feeds[1].feed_id),  # priced as USDC
    ]


def test_a_line_amount_keeps_every_digit_of_a_uint256() -> None:
    raw = 2**256 - 1  # 78 digits: the default 28-digit context would round it
    line = ObservedLine(1, "devnet_l1", "0xA", "SHIB", "wallet", "balance", raw, 18)
    text = str(raw)
    assert line.amount == Decimal(f"{text[:-18]}.{text[-18:]}")
    assert int(line.amount.scaleb(18, Context(prec=100))) == raw
