"""Decoded recorded states become snapshot lines: perps with Hyperliquid's terms, one USD cash
line that with the perps' pnl is the venue's cross account value, spot balances, oracle prices;
unknown coins and over-precise amounts are skipped and recorded; unified accounts count spot."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hl_fixtures import body_of, case

from chains.base import Address, EndpointPolicy, Position
from chains.hyperliquid.decoders import (
    ClearinghouseState,
    PerpMarkets,
    decode_clearinghouse_state,
    decode_meta_and_asset_ctxs,
    decode_spot_state,
)
from chains.hyperliquid.lines import UserRead, market_prices, to_base_units, user_lines
from chains.hyperliquid.spec import HyperliquidChainSpec, PerpCoin, PriceCoin, SpotToken
from chains.hyperliquid.terms import parse_terms

ACCOUNT = Address("0x0000000000000000000000000000000000000001")
SPEC = HyperliquidChainSpec(
    chain="hl",
    network="mainnet",
    endpoints=EndpointPolicy(urls=("http://127.0.0.1:1/info",)),
    perp_coins=(PerpCoin("SOL", "SOL"), PerpCoin("ETH", "ETH"), PerpCoin("HYPE", "HYPE")),
    spot_tokens=(
        SpotToken("USDC", "USDC", 8),
        SpotToken("HYPE", "HYPE", 8),
        SpotToken("UETH", "ETH", 9),
    ),
    price_coins=(PriceCoin("ETH", "ETH"), PriceCoin("DOGE", "DOGE")),
)


def markets() -> PerpMarkets:
    universe = [
        {"name": "SOL", "szDecimals": 2, "maxLeverage": 50},
        {"name": "ETH", "szDecimals": 4, "maxLeverage": 50},
        {"name": "HYPE", "szDecimals": 2, "maxLeverage": 10},
    ]
    contexts = [
        {"markPx": "138.91", "oraclePx": "138.9"},
        {"markPx": "3803.9", "oraclePx": "3801.4"},
        {"markPx": "37.826", "oraclePx": "37.83"},
    ]
    return decode_meta_and_asset_ctxs([{"universe": universe, "marginTables": []}, contexts])


def lines_of(
    name: str,
    spot: dict[str, Any] | None = None,
    mode: str = "disabled",
    spec: HyperliquidChainSpec = SPEC,
) -> tuple[ClearinghouseState, UserRead]:
    perp = decode_clearinghouse_state(body_of(case("clearinghouse_state.json", name)))
    spot_state = decode_spot_state(spot or {"balances": []})
    return perp, user_lines(spec, ACCOUNT, perp, spot_state, markets(), mode, 1)


def by_market(positions: tuple[Position, ...]) -> dict[str | None, Position]:
    return {p.market: p for p in positions}


def test_cross_positions_become_perps_with_signed_size_entry_and_hyperliquid_terms() -> None:
    _perp, read = lines_of("ccxt_fetch_positions_cross_two_longs")
    lines = by_market(read.positions)

    sol = lines["SOL|cross|imr=0.05|mmr=0.01"]
    eth = lines["ETH|cross|imr=0.05|mmr=0.01"]
    assert (sol.kind, sol.amount_raw, sol.decimals, sol.entry_price) == (
        "perp",
        334,
        2,
        Decimal("112.0945"),
    )
    assert (eth.amount_raw, eth.decimals, eth.entry_price) == (36000, 4, Decimal("1100.0"))
    terms = parse_terms(eth.market)
    assert terms is not None and (terms.imr, terms.mmr) == (Decimal("0.05"), Decimal("0.01"))
    assert read.issues == ()


def test_the_cash_line_is_total_raw_usd_plus_the_cost_of_the_cross_positions() -> None:
    perp, read = lines_of("ccxt_fetch_positions_cross_two_longs")
    cash = by_market(read.positions)["cash"]

    amount = Decimal(cash.amount_raw).scaleb(-cash.decimals)

    assert cash.kind == "deposit" and cash.asset == "USDC"
    raw = perp.cross_margin_summary.total_raw_usd
    assert amount == raw + Decimal("3.34") * Decimal("112.0945") + Decimal("3.6") * Decimal(
        "1100.0"
    )
    assert amount == Decimal("9938.879685")
    pnl = sum(p.szi * (p.mark - p.entry_px) for p in perp.positions)
    assert amount + pnl == perp.cross_margin_summary.account_value  # 19762.483455


def test_an_isolated_position_is_marked_isolated_and_its_bucket_stays_out_of_the_cash() -> None:
    perp, read = lines_of("jkorf_hype_isolated_long")
    lines = by_market(read.positions)

    hype = lines["HYPE|isolated|imr=0.1|mmr=0.05"]
    cash = lines["cash"]

    assert (hype.amount_raw, hype.decimals) == (200, 2)
    assert Decimal(cash.amount_raw).scaleb(-cash.decimals) == Decimal("75.781884")
    assert perp.margin_summary.account_value == Decimal("83.307638")  # cash + the bucket


def test_a_short_is_a_negative_perp_line() -> None:
    _perp, read = lines_of("ccxt_isolated_short_position")
    hype = by_market(read.positions)["HYPE|isolated|imr=0.1|mmr=0.05"]
    assert (hype.amount_raw, hype.decimals, hype.entry_price) == (-400, 2, Decimal("47.9932"))


def test_an_unknown_coin_is_skipped_and_recorded_and_its_value_stays_in_the_cash() -> None:
    spec = HyperliquidChainSpec(
        chain="hl",
        network="mainnet",
        endpoints=SPEC.endpoints,
        perp_coins=(PerpCoin("ETH", "ETH"),),
    )
    perp, read = lines_of("ccxt_fetch_positions_cross_two_longs", spec=spec)

    (issue,) = read.issues
    assert issue.subject == f"{ACCOUNT}:SOL" and "unknown coin 'SOL'" in issue.message
    cash = by_market(read.positions)["cash"]
    eth = next(p for p in perp.positions if p.coin == "ETH")
    amount = Decimal(cash.amount_raw).scaleb(-cash.decimals)
    assert amount + eth.szi * (eth.mark - eth.entry_px) == perp.cross_margin_summary.account_value


def test_a_unified_account_counts_its_spot_usdc_and_writes_no_perp_cash() -> None:
    spot = {
        "balances": [
            {"coin": "USDC", "token": 0, "total": "5604.48", "hold": "0.0", "entryNtl": "0.0"}
        ]
    }
    _perp, read = lines_of("ccxt_fetch_positions_cross_two_longs", spot, mode="unifiedAccount")

    assert "cash" not in by_market(read.positions)
    (usdc,) = read.balances
    assert (usdc.asset, usdc.amount_raw, usdc.decimals) == ("USDC", 560448000000, 8)


def test_spot_balances_unknown_coins_and_over_precise_totals() -> None:
    spot = body_of(case("spot_clearinghouse_state.json", "ccxt_spot_five_tokens"))
    spec = HyperliquidChainSpec(
        chain="hl",
        network="mainnet",
        endpoints=SPEC.endpoints,
        spot_tokens=(
            SpotToken("USDC", "USDC", 8),
            SpotToken("HYPE", "HYPE", 6),
            SpotToken("UETH", "ETH", 9),
        ),
    )
    _perp, read = lines_of("ccxt_swap_balance_no_positions", spot, spec=spec)

    assert [(b.asset, b.amount_raw, b.decimals) for b in read.balances] == [
        ("USDC", 129085940, 8),
        ("ETH", 3397716, 9),
    ]
    messages = {i.subject.split(":")[1]: i.message for i in read.issues}
    assert "has more than 6 decimals" in messages["HYPE"]  # 4.43762752 would lose digits
    assert "unknown spot coin 'USOL'" in messages["USOL"]
    assert "unknown spot coin 'USDH'" in messages["USDH"]


def test_prices_are_oracle_prices_with_the_mark_distance_as_confidence() -> None:
    eth, doge = market_prices(SPEC, markets(), 1_700_000_000)

    assert (eth.asset, eth.price, eth.conf, eth.valid) == (
        "ETH",
        Decimal("3801.4"),
        Decimal("2.5"),
        True,
    )
    assert eth.source == "hyperliquid:ETH" and eth.publish_time == 1_700_000_000
    assert not doge.valid and doge.invalid_reason == "DOGE not in the universe"


def test_base_units_are_exact() -> None:
    assert to_base_units(Decimal("0.0335"), 4) == (335, 4)
    assert to_base_units(Decimal("2.0"), 2) == (200, 2)
    assert to_base_units(Decimal("-0.000000012"), 8) == (-12, 9)
    assert to_base_units(Decimal("1E+3"), 0) == (1000, 0)
