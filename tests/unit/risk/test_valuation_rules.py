"""Golden cases for design §5's valuation rules, each worked by hand in the comments."""

from __future__ import annotations

from decimal import Decimal

from aggregator.margin import RiskParams, Tier, evaluate
from aggregator.valuation import (
    latency_buffer,
    size_adjusted_asset_weight,
    size_adjusted_liability_weight,
    tiered_amount,
)

from .builders import AS_OF, D, asset, chain, hold, portfolio, with_params


def test_confidence_band_lowers_collateral_and_raises_liabilities() -> None:
    # ETH 2000 ± 10: collateral at 2000 - 10 = 1990, liability at 2000 + 10 = 2010.
    p = portfolio([asset("ETH", "2000", conf="10")], [hold("ETH", "1"), hold("ETH", "-1")])
    result = evaluate(p)
    collateral, liability = result.lines
    assert collateral.price_used == D(1990)
    assert liability.price_used == D(2010)
    assert result.weighted_collateral.maint == D(1990)
    assert result.requirement.maint == D(2010)


def test_confidence_band_is_capped_at_five_percent_of_price() -> None:
    # conf 200 on 2000 is ratio 0.10 (still valid); the band is min(200, 0.05*2000) = 100.
    p = portfolio([asset("ETH", "2000", conf="200")], [hold("ETH", "1")])
    assert evaluate(p).lines[0].price_used == D(1900)


def test_conf_multiplier_scales_the_band() -> None:
    # k = 2: band = min(2*10, 100) = 20, collateral at 1980.
    p = with_params(
        portfolio([asset("ETH", "2000", conf="10")], [hold("ETH", "1")]), conf_multiplier=D(2)
    )
    assert evaluate(p).lines[0].price_used == D(1980)


def test_too_wide_confidence_invalidates_collateral_but_not_liabilities() -> None:
    # conf/p = 201/2000 = 0.1005 > 0.10: collateral counts 0; the 1-token liability is still
    # counted at its last price plus the capped band: 2000 + min(201, 100) = 2100.
    p = portfolio([asset("ETH", "2000", conf="201")], [hold("ETH", "3"), hold("ETH", "-1")])
    result = evaluate(p)
    assert result.weighted_collateral == result.weighted_collateral.__class__(D(0), D(0))
    assert result.requirement.maint == D(2100)
    assert result.stale is True
    assert result.invalid_prices == {"ETH": "confidence too wide"}
    assert result.collateral_value == 0
    assert result.equity == D(-2000)  # only the liability counts: -1 * 2000


def test_old_price_is_invalid() -> None:
    # Price 3601 s old with max age 3600.
    from datetime import timedelta

    old = asset("ETH", "2000", price_time=AS_OF - timedelta(seconds=3601))
    result = evaluate(portfolio([old], [hold("ETH", "1")]))
    assert result.weighted_collateral.maint == 0
    assert result.invalid_prices == {"ETH": "price too old"}
    assert result.stale


def test_latency_buffer_formula() -> None:
    # T = 153.6 s data age + 3000 s finality + 0 = 3153.6 s = 1/10,000 year: sqrt = 0.01,
    # b = 2.326 * 0.8 * 0.01 = 0.018608; collateral at 2000 * (1 - 0.018608) = 1962.784,
    # a liability at 2000 * 1.018608 = 2037.216.
    c = chain(age=153.6, finality="3000", max_staleness="600")
    p = portfolio(
        [asset("ETH", "2000", volatility="0.8")], [hold("ETH", "1"), hold("ETH", "-1")], chains=[c]
    )
    result = evaluate(p)
    assert result.latency_buffers == {"eth": {"ETH": D("0.018608")}}
    assert result.lines[0].price_used == D("1962.784")
    assert result.lines[1].price_used == D("2037.216")


def test_latency_buffer_is_capped_at_one() -> None:
    # z*sigma*sqrt(1 year) = 2.326 * 5 = 11.63 -> 1: the collateral counts nothing.
    assert latency_buffer(D("2.326"), D(5), D(31_536_000)) == 1
    assert latency_buffer(D("2.326"), D("0.8"), D(0)) == 0


def test_stale_chain_counts_zero_for_initial_side_only() -> None:
    # Data 700 s old, max staleness 600: the 1 ETH counts 0 on the init side, 2000 on maint;
    # the liability of 500 USDC counts on both sides.
    stale = chain("old", age=700, max_staleness="600")
    p = portfolio(
        [asset("ETH", "2000"), asset("USDC", "1")],
        [hold("ETH", "1", "old"), hold("USDC", "-500", "old")],
        chains=[stale],
    )
    result = evaluate(p)
    assert result.weighted_collateral.init == 0
    assert result.weighted_collateral.maint == D(2000)
    assert result.requirement.init == result.requirement.maint == D(500)
    assert result.stale and result.stale_chains == ("old",)
    assert result.status == "margin_call"  # health.init = -500 < 0 <= health.maint = 1500


def test_initial_and_maintenance_weights() -> None:
    # 10 ETH at 2000, weights 0.8 / 0.85: 16,000 init, 17,000 maint.
    # 5000 USDC borrowed, liability weights 1.2 / 1.1: 6000 init, 5500 maint.
    p = portfolio(
        [
            asset("ETH", "2000", init_weight="0.8", maint_weight="0.85"),
            asset("USDC", "1", init_liability_weight="1.2", maint_liability_weight="1.1"),
        ],
        [hold("ETH", "10"), hold("USDC", "-5000")],
    )
    result = evaluate(p)
    assert (result.weighted_collateral.init, result.weighted_collateral.maint) == (16000, 17000)
    assert (result.requirement.init, result.requirement.maint) == (6000, 5500)
    assert (result.health.init, result.health.maint) == (10000, 11500)
    assert result.health_factor is not None
    assert result.health_factor.quantize(D("1e-12")) == D("3.090909090909")  # 17000 / 5500
    assert result.free_collateral == 10000
    assert result.equity == D(15000)


def test_drift_size_adjustment_of_weights() -> None:
    # imf 0.01, 10,000 tokens: sqrt = 100; aw = min(0.8, 1.1 / (1 + 1)) = 0.55;
    # lw = max(1.1, 0.8*1.1 + 0.01*100) = max(1.1, 1.88) = 1.88.
    assert size_adjusted_asset_weight(D("0.8"), D("0.01"), D(10000)) == D("0.55")
    assert size_adjusted_liability_weight(D("1.1"), D("0.01"), D(10000)) == D("1.88")
    # Small sizes keep the configured weight: 100 tokens -> 1.1/1.1 = 1 > 0.8.
    assert size_adjusted_asset_weight(D("0.8"), D("0.01"), D(100)) == D("0.8")
    p = portfolio(
        [asset("X", "1", maint_weight="0.8", init_weight="0.8", imf="0.01")], [hold("X", "10000")]
    )
    assert evaluate(p).weighted_collateral.maint == D("5500")


def test_bybit_tiers_apply_band_by_band() -> None:
    # The design's example: 100,000*1.0 + 400,000*0.9 + 100,000*0.5 = 510,000.
    tiers = (
        Tier(D(0), D(100000), D(1)),
        Tier(D(100000), D(500000), D("0.9")),
        Tier(D(500000), None, D("0.5")),
    )
    assert tiered_amount(D(600000), tiers) == D(510000)
    # The ratio multiplies the weight: at price 1 and weight 0.8, 510,000 * 0.8 = 408,000.
    p = portfolio(
        [asset("X", "1", init_weight="0.8", maint_weight="0.8", tiers=tiers)], [hold("X", "600000")]
    )
    assert evaluate(p).weighted_collateral.maint == D(408000)


def test_tiers_fill_across_lines_of_the_same_asset() -> None:
    # Two lines of 300,000 on two chains count as one 600,000 holding: 510,000 in total.
    # Ranked by unit value (equal here, input order kept): first line gets
    # 100,000 + 200,000*0.9 = 280,000, second 200,000*0.9 + 100,000*0.5 = 230,000.
    tiers = (
        Tier(D(0), D(100000), D(1)),
        Tier(D(100000), D(500000), D("0.9")),
        Tier(D(500000), None, D("0.5")),
    )
    p = portfolio(
        [asset("X", "1", tiers=tiers)],
        [hold("X", "300000", "a"), hold("X", "300000", "b")],
        chains=[chain("a"), chain("b")],
    )
    result = evaluate(p)
    assert [line.collateral.maint for line in result.lines] == [D(280000), D(230000)]


def test_params_defaults_are_the_designs() -> None:
    params = RiskParams()
    assert (params.conf_multiplier, params.max_conf_ratio, params.latency_z) == (
        1,
        D("0.10"),
        D("2.326"),
    )
    assert (params.warning_health_factor, params.pnl_weight_init, params.pnl_weight_maint) == (
        D("1.25"),
        D("0.9"),
        1,
    )
    assert (params.portfolio_floor_ratio, params.portfolio_init_multiplier) == (
        D("0.01"),
        D("1.25"),
    )


def test_decimal_exactness_for_18_decimal_amounts() -> None:
    # 1 wei of ETH at 2000 is exactly 0.000000000000002 USD.
    p = portfolio([asset("ETH", "2000")], [hold("ETH", "0.000000000000000001")])
    assert evaluate(p).collateral_value == Decimal("0.000000000000002")
