"""Portfolio mode (VaR/ES over the latency horizon, stress grid, floor)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from aggregator.margin import FactorModel, FactorModelError, RiskParams, evaluate
from aggregator.valuation.scenarios import cholesky, factor_structure

from .builders import D, asset, chain, hold, perp, portfolio

USDC = asset("USDC", "1", stable=True, family="USD")
ETH = asset("ETH", "2000", volatility="0.8", family="ETH")
DAY_CHAIN = chain(latency="86400")  # a one-day horizon makes ES the binding term


def test_stress_grid_golden_case() -> None:
    # 10,000 USDC and a long 1 ETH perp at its entry; horizon 0, so every Monte Carlo loss is
    # 0. ETH's stress range is fixed at 30 %: the "-3/3" scan loses 2000*0.3 = 600; the USDC
    # depeg (5 %) loses 500. Floor = 1 % of gross 12,000 = 120. With the stress grid in the
    # requirement: max(120, 0, 600) = 600, init = 1.25*600 = 750; NLV = 10,000.
    p = portfolio(
        [ETH, USDC],
        [hold("USDC", "10000")],
        [perp("ETH", "1", "2000")],
        mode="portfolio",
        params=RiskParams(stress_in_requirement=True),
        factors=FactorModel(stress_ranges={"ETH": D("0.3")}),
    )
    result = evaluate(p)
    risk = result.portfolio
    assert risk is not None
    assert (risk.var, risk.es) == (0, 0)
    assert risk.floor == D(120) and risk.gross_notional == D(12000)
    assert risk.stress_loss == D(600) and risk.worst_scenario == "ETH -3/3"
    assert (result.requirement.init, result.requirement.maint) == (D(750), D(600))
    assert result.weighted_collateral.maint == D(10000)
    assert (result.health.init, result.health.maint) == (D(9250), D(9400))


def test_by_default_the_requirement_is_max_of_floor_and_es_and_the_grid_is_reported() -> None:
    # The same book as the golden case, default params: requirement.maint = max(120, 0) = 120,
    # init = 150; the grid's worst scan is still reported.
    p = portfolio(
        [ETH, USDC],
        [hold("USDC", "10000")],
        [perp("ETH", "1", "2000")],
        mode="portfolio",
        factors=FactorModel(stress_ranges={"ETH": D("0.3")}),
    )
    result = evaluate(p)
    risk = result.portfolio
    assert risk is not None
    assert risk.stress_loss == D(600) and risk.worst_scenario == "ETH -3/3"
    assert (result.requirement.init, result.requirement.maint) == (D(150), D(120))


def test_depeg_scenario_hits_stablecoin_collateral() -> None:
    # Only USDC collateral against a tiny ETH debt: the depeg (-5 % of 10,000 = 500 loss) is
    # the worst scenario; the ETH debt gains when ETH falls and loses 0.3*20 = 6 when it rises.
    p = portfolio(
        [ETH, USDC],
        [hold("USDC", "10000"), hold("ETH", "-0.01")],
        mode="portfolio",
        factors=FactorModel(stress_ranges={"ETH": D("0.3")}),
    )
    risk = evaluate(p).portfolio
    assert risk is not None
    assert risk.worst_scenario == "USD depeg" and risk.stress_loss == D(500)


def test_expected_shortfall_matches_the_normal_tail() -> None:
    # One factor, exposure 20,000 USD of ETH, sigma*sqrt(T) = 0.8*sqrt(86400/31,536,000)
    # = 0.041874: ES(97.5 %) of a normal loss is 2.3378 sd = 1958 USD; the Monte Carlo
    # estimate over 4000 seeded draws must be within 8 % (lognormal skew plus sampling).
    p = portfolio(
        [ETH, USDC],
        [hold("ETH", "10"), hold("USDC", "-5000")],
        mode="portfolio",
        chains=[DAY_CHAIN],
    )
    risk = evaluate(p).portfolio
    assert risk is not None
    expected = Decimal("2.3378") * Decimal("0.0418738") * 20000
    assert abs(risk.es - expected) / expected < Decimal("0.08")
    assert risk.es >= risk.var > 0


def test_hedged_book_needs_less_than_the_same_book_unhedged() -> None:
    # 10 ETH against 5000 USDC of debt; hedged adds a short 10 ETH perp at the mark. With a
    # one-day horizon the unhedged ES (~1958) dominates; the hedged book only pays the floor,
    # 1 % of gross 20,000 + 20,000 + 5000 = 450.
    book = ([ETH, USDC], [hold("ETH", "10"), hold("USDC", "-5000")])
    unhedged = evaluate(portfolio(*book, mode="portfolio", chains=[DAY_CHAIN]))
    hedged = evaluate(
        portfolio(*book, [perp("ETH", "-10", "2000")], mode="portfolio", chains=[DAY_CHAIN])
    )
    assert hedged.requirement.maint == D(450)
    assert hedged.requirement.maint < unhedged.requirement.maint
    assert hedged.health.init > unhedged.health.init


def test_nothing_owed_means_no_requirement() -> None:
    result = evaluate(portfolio([ETH, USDC], [hold("ETH", "1")], mode="portfolio"))
    assert result.requirement.maint == 0 and result.health_factor is None
    assert result.status == "healthy"
    assert result.liquidation_prices == {"ETH": None}


def test_portfolio_liquidation_price_zeroes_maintenance_health() -> None:
    # 10 ETH against 15,000 USDC: the price is bracketed and bisected.
    p = portfolio(
        [ETH, USDC],
        [hold("ETH", "10"), hold("USDC", "-15000")],
        mode="portfolio",
        chains=[DAY_CHAIN],
    )
    result = evaluate(p)
    price = result.liquidation_prices["ETH"]
    assert price is not None and 1500 < price < 2000
    moved = replace(p, assets={**p.assets, "ETH": replace(ETH, price=price)})
    assert abs(evaluate(moved, limits=False).health.maint) < D("1e-6") * 20000
    shock = result.liquidation_shock
    assert shock is not None and abs(shock - (price / 2000 - 1)) < D("1e-9")


def test_scenarios_are_deterministic() -> None:
    p = portfolio(
        [ETH, USDC],
        [hold("ETH", "10"), hold("USDC", "-5000")],
        mode="portfolio",
        chains=[DAY_CHAIN],
    )
    assert evaluate(p) == evaluate(p)


def test_lst_moves_with_its_family() -> None:
    # stETH in the ETH family against an ETH debt of equal value: same factor, same vol,
    # so Monte Carlo losses cancel; only the floor (1 % of 40,000) remains.
    steth = asset("stETH", "2000", volatility="0.8", family="ETH")
    p = portfolio(
        [ETH, steth],
        [hold("stETH", "10"), hold("ETH", "-10")],
        mode="portfolio",
        chains=[DAY_CHAIN],
    )
    result = evaluate(p)
    assert result.portfolio is not None and result.portfolio.es == 0
    assert result.requirement.maint == D(400)


def test_cholesky_by_hand_and_refusal_of_impossible_correlations() -> None:
    # [[1, .6], [.6, 1]] = L L^T with L = [[1, 0], [.6, .8]].
    lower = cholesky([[1.0, 0.6], [0.6, 1.0]])
    assert lower[0] == [1.0, 0.0]
    assert abs(lower[1][0] - 0.6) < 1e-15 and abs(lower[1][1] - 0.8) < 1e-15
    btc = asset("BTC", "1", family="BTC")
    sol = asset("SOL", "1", family="SOL")
    bad = FactorModel(
        correlations={("BTC", "ETH"): D("0.9"), ("BTC", "SOL"): D("0.9"), ("ETH", "SOL"): D("-0.9")}
    )
    p = portfolio([ETH, btc, sol], mode="portfolio", factors=bad)
    try:
        factor_structure(p.assets, p.factors, p.params)
    except FactorModelError as exc:
        assert "positive semi-definite" in str(exc)
    else:
        raise AssertionError("an impossible correlation matrix was accepted")


def test_covariance_input_overrides_volatility() -> None:
    # cov(ETH, ETH) = 0.25 -> sigma 0.5 instead of the asset's 0.8.
    p = portfolio(
        [ETH, USDC],
        [hold("ETH", "1")],
        mode="portfolio",
        factors=FactorModel(covariance={("ETH", "ETH"): D("0.25")}),
    )
    structure = factor_structure(p.assets, p.factors, p.params)
    assert structure.asset_volatility["ETH"] == 0.5
