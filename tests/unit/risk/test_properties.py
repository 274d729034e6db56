"""Properties of the risk engine over generated books (hypothesis)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.margin import Holding, MarginResult, Perp, Portfolio, Tier, evaluate

from .builders import D, asset, chain, hold, perp, portfolio

CHAINS = [
    chain("a", age=5, finality="60", latency="30"),
    chain("b", age=400, finality="13", latency="10", max_staleness="300"),
]
TIERS = (Tier(D(0), D(50), D(1)), Tier(D(50), D(200), D("0.6")), Tier(D(200), None, D("0.2")))
ASSETS = [
    asset(
        "ETH",
        "2000",
        conf="2",
        volatility="0.8",
        init_weight="0.8",
        maint_weight="0.85",
        init_liability_weight="1.2",
        maint_liability_weight="1.1",
    ),
    asset(
        "BTC",
        "50000",
        conf="30",
        volatility="0.6",
        init_weight="0.7",
        maint_weight="0.8",
        init_liability_weight="1.3",
        maint_liability_weight="1.2",
        imf="0.05",
        tiers=TIERS,
    ),
    asset(
        "USDC",
        "1",
        conf="0.001",
        volatility="0.02",
        init_weight="0.95",
        maint_weight="0.98",
        init_liability_weight="1.05",
        maint_liability_weight="1.02",
        stable=True,
        family="USD",
    ),
]
SYMBOLS = [a.symbol for a in ASSETS]
SCALE = {"ETH": 100, "BTC": 1000, "USDC": 1}  # amounts in tenths of ETH, thousandths of BTC

amounts = st.integers(min_value=-400, max_value=1000)


@st.composite
def holdings(draw: st.DrawFn) -> Holding:
    symbol = draw(st.sampled_from(SYMBOLS))
    raw = draw(amounts) * (1000 if symbol == "USDC" else 1)
    return hold(symbol, str(Decimal(raw) / SCALE[symbol]), draw(st.sampled_from(["a", "b"])))


@st.composite
def perps(draw: st.DrawFn) -> Perp:
    symbol = draw(st.sampled_from(["ETH", "BTC"]))
    base = Decimal(draw(st.integers(-50, 50))) / SCALE[symbol]
    entry = Decimal(draw(st.integers(50, 150))) / 100 * ASSETS[SYMBOLS.index(symbol)].price  # type: ignore[operator]
    return perp(
        symbol,
        str(base),
        str(entry),
        imf=draw(st.sampled_from(["0", "0.01"])),
        chain_name=draw(st.sampled_from(["a", "b"])),
    )


books = st.builds(
    lambda hs, ps: portfolio(ASSETS, hs, ps, chains=CHAINS),
    st.lists(holdings(), max_size=6),
    st.lists(perps(), max_size=2),
)

FAST = {"liquidation": False, "limits": False}


def health(p: Portfolio) -> tuple[Decimal, Decimal]:
    result = evaluate(p, **FAST)
    return result.health.init, result.health.maint


def scale_of(result: MarginResult) -> Decimal:
    """The size of a book in USD: what a tolerance is relative to."""
    return sum((abs(line.value) + (line.notional or 0) for line in result.lines), D(1))


@settings(max_examples=150, deadline=None)
@given(books, st.sampled_from(SYMBOLS), st.integers(1, 500), st.sampled_from(["a", "b"]))
def test_more_collateral_never_lowers_health(
    p: Portfolio, symbol: str, extra: int, chain_name: str
) -> None:
    before = health(p)
    more = replace(p, holdings=(*p.holdings, hold(symbol, str(extra), chain_name)))
    after = health(more)
    assert after[0] >= before[0] and after[1] >= before[1]


@settings(max_examples=100, deadline=None)
@given(books, st.sampled_from(SYMBOLS), st.integers(1, 300))
def test_higher_volatility_never_raises_health(p: Portfolio, symbol: str, pct: int) -> None:
    a = p.assets[symbol]
    riskier = replace(
        p,
        assets={
            **p.assets,
            symbol: replace(a, volatility=a.volatility * (1 + Decimal(pct) / 100) + D("0.01")),
        },
    )
    after, before = health(riskier), health(p)
    assert after[0] <= before[0] and after[1] <= before[1]


@settings(max_examples=100, deadline=None)
@given(books, st.sampled_from(["a", "b"]), st.integers(1, 100_000))
def test_longer_latency_never_raises_health(p: Portfolio, name: str, seconds: int) -> None:
    c = p.chains[name]
    slower = replace(
        p,
        chains={
            **p.chains,
            name: replace(c, liquidation_latency_seconds=c.liquidation_latency_seconds + seconds),
        },
    )
    after, before = health(slower), health(p)
    assert after[0] <= before[0] and after[1] <= before[1]


@settings(max_examples=100, deadline=None)
@given(books, st.sampled_from(SYMBOLS), st.integers(1, 1000))
def test_wider_confidence_never_raises_health(p: Portfolio, symbol: str, pct: int) -> None:
    a = p.assets[symbol]
    wider = replace(
        p, assets={**p.assets, symbol: replace(a, conf=a.conf * (1 + Decimal(pct) / 100))}
    )
    after, before = health(wider), health(p)
    assert after[0] <= before[0] and after[1] <= before[1]


@settings(max_examples=150, deadline=None)
@given(books)
def test_reported_liquidation_prices_zero_maintenance_health(p: Portfolio) -> None:
    # A liquidation price assumes the oracle stays valid (the confidence width is held at its
    # absolute value, and a far-off price may push conf/p past max_conf_ratio): every
    # generated price is valid now, so the re-evaluation lifts the ratio limit to keep it so.
    result = evaluate(p, limits=False)
    tolerance = D("1e-6") * scale_of(result)
    p = replace(p, params=replace(p.params, max_conf_ratio=D(10) ** 9))
    for symbol, price in result.liquidation_prices.items():
        if price is None:
            continue
        moved = replace(p, assets={**p.assets, symbol: replace(p.assets[symbol], price=price)})
        assert abs(evaluate(moved, **FAST).health.maint) < tolerance
    if result.liquidation_shock is not None:
        factor = 1 + result.liquidation_shock
        shocked = replace(
            p,
            assets={
                s: (a if a.stable else replace(a, price=a.price * factor))  # type: ignore[operator]
                for s, a in p.assets.items()
            },
        )
        assert abs(evaluate(shocked, **FAST).health.maint) < tolerance


@settings(max_examples=100, deadline=None)
@given(books)
def test_limits_keep_initial_health_non_negative(p: Portfolio) -> None:
    result = evaluate(p, liquidation=False)
    riskiest = "b"  # chain b has the larger buffers for every asset
    for symbol, amount in result.max_borrow.items():
        if amount > 0:
            borrowed = replace(p, holdings=(*p.holdings, hold(symbol, str(-amount), riskiest)))
            assert evaluate(borrowed, **FAST).health.init >= -D("1e-12") * scale_of(result)


portfolio_books = st.builds(
    lambda eth, debt, hedge: (eth, debt, hedge),
    st.integers(1, 100),
    st.integers(1, 100_000),
    st.integers(1, 100),
)


@settings(max_examples=25, deadline=None)
@given(portfolio_books)
def test_portfolio_es_at_least_var_and_hedges_reduce_risk(book: tuple[int, int, int]) -> None:
    eth, debt, hedge_pct = book
    day = [chain("a", latency="86400")]
    holdings_ = [hold("ETH", str(eth), "a"), hold("USDC", str(-debt), "a")]
    unhedged = evaluate(portfolio(ASSETS, holdings_, chains=day, mode="portfolio"), **FAST)
    short = Decimal(eth * hedge_pct) / 100
    hedged = evaluate(
        portfolio(
            ASSETS,
            holdings_,
            [perp("ETH", str(-short), "2000", chain_name="a")],
            chains=day,
            mode="portfolio",
        ),
        **FAST,
    )
    for result in (unhedged, hedged):
        assert result.portfolio is not None and result.portfolio.es >= result.portfolio.var
    assert hedged.portfolio is not None and unhedged.portfolio is not None
    assert hedged.portfolio.es < unhedged.portfolio.es
    if hedge_pct == 100:
        # A full hedge leaves only the USDC debt's small risk; the floor is a ratio of GROSS
        # notional (design §5), so the hedge leg raises it: the hedged book needs less
        # whenever the unhedged book's shortfall exceeds the hedged floor and residual risk.
        risk = hedged.portfolio
        assert hedged.requirement.maint == max(risk.floor, risk.es)
        if unhedged.portfolio.es > max(risk.floor, risk.es):
            assert hedged.requirement.maint < unhedged.requirement.maint


@settings(max_examples=200, deadline=None)
@given(books)
def test_float_fast_path_is_within_1e9_of_the_decimal_path(p: Portfolio) -> None:
    from aggregator.margin.fast import evaluate_fast, fast_market
    from aggregator.valuation import prepare_market

    exact = evaluate(p, **FAST)
    fast = evaluate_fast(
        fast_market(prepare_market(p.as_of, p.params, p.chains, p.assets)), p.holdings, p.perps
    )
    bound = 1e-9 * float(scale_of(exact))
    pairs = [
        (fast.collateral_init, exact.weighted_collateral.init),
        (fast.collateral_maint, exact.weighted_collateral.maint),
        (fast.requirement_init, exact.requirement.init),
        (fast.requirement_maint, exact.requirement.maint),
        (fast.health_init, exact.health.init),
        (fast.health_maint, exact.health.maint),
    ]
    for approx, value in pairs:
        assert abs(approx - float(value)) <= bound
    near_threshold = min(abs(float(exact.health.init)), abs(float(exact.health.maint))) <= bound
    if not near_threshold and exact.health_factor is not None:
        near_threshold = abs(float(exact.health_factor) - 1.25) <= 1e-9
    if not near_threshold:
        assert fast.status == exact.status
