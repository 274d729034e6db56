"""The optimised standard-mode path gives exactly the numbers of a straightforward reference
(tests/unit/risk/reference_engine.py) on generated books, and the published strings agree."""

from __future__ import annotations

from dataclasses import fields
from datetime import timedelta
from decimal import Decimal, localcontext

from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.margin import (
    AssetRisk,
    ChainState,
    Holding,
    LineValue,
    Perp,
    Portfolio,
    RiskParams,
    Sides,
    Tier,
    evaluate,
    evaluate_in_market,
    prepare_market,
)
from aggregator.risk.output import result_to_json
from aggregator.valuation.exposure import new_line, new_sides
from aggregator.valuation.model import PRECISION
from aggregator.valuation.weights import AssetCurve, LiabilityCurve, perp_margin_ratios

from .builders import AS_OF, D
from .reference_engine import (
    asset_curve,
    liability_curve,
    margin_ratio,
    reference_standard,
    reference_text,
)

TIER_SETS = [
    (Tier(D(0), None, D(1)),),
    (Tier(D(0), D(50), D(1)), Tier(D(50), D(200), D("0.6")), Tier(D(200), None, D("0.2"))),
    (Tier(D(0), D(100), D("0.9")), Tier(D(100), D(300), D("0.5"))),
]


def decimals(low: int, high: int, places: int) -> st.SearchStrategy[Decimal]:
    return st.integers(low * 10**places, high * 10**places).map(
        lambda n: Decimal(n).scaleb(-places)
    )


@st.composite
def books(draw: st.DrawFn) -> Portfolio:
    chain_names = ["a", "b", "c"][: draw(st.integers(1, 3))]
    chains = {
        name: ChainState(
            name,
            AS_OF - timedelta(seconds=draw(st.sampled_from([0, 5, 12.345678, 400, -30]))),
            D(draw(st.sampled_from([0, 13, 768]))),
            D(draw(st.sampled_from([0, 10, 60]))),
            D(draw(st.sampled_from([120, 1800]))),
        )
        for name in chain_names
    }
    assets = {}
    for symbol in ["X", "Y", "Z"][: draw(st.integers(1, 3))]:
        price = draw(decimals(1, 5000, draw(st.sampled_from([0, 2, 18]))))
        init_w = draw(decimals(0, 1, draw(st.sampled_from([2, 17]))))
        maint_l = draw(decimals(1, 2, draw(st.sampled_from([2, 17]))))
        assets[symbol] = AssetRisk(
            symbol,
            price,
            draw(st.sampled_from([D(0), price / 1000, price / 8])),
            AS_OF - timedelta(seconds=draw(st.sampled_from([0, 100, 5000]))),
            D(3600),
            init_w,
            max(init_w, draw(decimals(0, 1, 2))),
            max(maint_l, draw(decimals(1, 2, 2))),
            maint_l,
            draw(decimals(0, 2, draw(st.sampled_from([2, 12])))),
            symbol,
            False,
            draw(st.sampled_from([D(0), D("0.0005"), D("0.05")])),
            draw(st.sampled_from(TIER_SETS)),
        )
    symbols = list(assets)
    holdings = [
        Holding(
            draw(st.sampled_from(chain_names)),
            draw(st.sampled_from(symbols)),
            draw(decimals(-300, 3000, draw(st.sampled_from([0, 3, 18])))),
            "v",
        )
        for _ in range(draw(st.integers(0, 10)))
    ]
    perps = []
    for _ in range(draw(st.integers(0, 3))):
        mmr = draw(decimals(0, 1, 3)) / 10
        perps.append(
            Perp(
                draw(st.sampled_from(chain_names)),
                "p",
                draw(st.sampled_from(symbols)),
                draw(decimals(-500, 500, draw(st.sampled_from([0, 4, 18])))),
                draw(decimals(1, 6000, 4)),
                mmr + draw(decimals(0, 1, 3)) / 10,
                mmr,
                draw(st.sampled_from([D(0), D("0.001"), D("0.05")])),
            )
        )
    return Portfolio(AS_OF, chains, assets, tuple(holdings), tuple(perps), "standard", RiskParams())


def _line_numbers(line: LineValue) -> tuple[object, ...]:
    return (
        line.amount,
        line.price,
        line.price_valid,
        line.value,
        line.price_used,
        line.buffer,
        (line.weight.init, line.weight.maint),
        (line.collateral.init, line.collateral.maint),
        (line.requirement.init, line.requirement.maint),
        line.notional,
        line.pnl,
    )


def _texts(numbers: tuple[object, ...]) -> list[object]:
    out: list[object] = []
    for item in numbers:
        if isinstance(item, tuple):
            out.append([reference_text(x) for x in item])
        elif isinstance(item, Decimal):
            out.append(reference_text(item))
        else:
            out.append(item)
    return out


@settings(max_examples=150, deadline=None)
@given(books())
def test_optimised_path_gives_the_reference_numbers_and_strings(book: Portfolio) -> None:
    reference = reference_standard(book)
    # The reference takes every buffer at the engine's precision, as `evaluate` does.
    with localcontext() as ctx:
        ctx.prec = PRECISION
        market = prepare_market(book.as_of, book.params, book.chains, book.assets)
    for result in (
        evaluate(book, liquidation=False, limits=False),
        evaluate_in_market(market, book.holdings, book.perps, liquidation=False, limits=False),
    ):
        assert (result.weighted_collateral.init, result.weighted_collateral.maint) == (
            reference.collateral
        )
        assert (result.requirement.init, result.requirement.maint) == reference.requirement
        assert result.equity == reference.equity
        assert result.collateral_value == reference.collateral_value
        assert [_line_numbers(line) for line in result.lines] == reference.lines
        document = result_to_json(result)
        assert document["weighted_collateral"] == {
            "init": reference_text(reference.collateral[0]),
            "maint": reference_text(reference.collateral[1]),
        }
        assert document["equity"] == reference_text(reference.equity)
        published = [
            [
                line["amount"],
                line["price"],
                line["price_valid"],
                line["value"],
                line["price_used"],
                line["buffer"],
                [line["weight"]["init"], line["weight"]["maint"]],
                [line["collateral"]["init"], line["collateral"]["maint"]],
                [line["requirement"]["init"], line["requirement"]["maint"]],
                line["notional"],
                line["pnl"],
            ]
            for line in document["lines"]
        ]
        assert published == [_texts(numbers) for numbers in reference.lines]


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([D("0.75"), D("0.8"), D("1"), D("0.3333333333333333333")]),
    st.sampled_from([D("0.0005"), D("0.05"), D("0.0123456789")]),
    st.sampled_from(TIER_SETS),
    st.integers(-30, 30),
)
def test_curves_skip_the_root_only_where_it_cannot_change_the_number(
    weight: Decimal, imf: Decimal, tiers: tuple[Tier, ...], nudge: int
) -> None:
    # Sizes right around the binding point of the size adjustment, where the shortcut must
    # hand over to the root.
    with localcontext() as ctx:
        ctx.prec = PRECISION
        asset_root = (D("1.1") / weight - 1) / imf
        liability_root = (weight + 1 - D("0.8") * (weight + 1)) / imf
        for root, check in (
            (asset_root, "asset"),
            (liability_root, "liability"),
        ):
            size = root * root * (1 + Decimal(nudge).scaleb(-21))
            if check == "asset":
                curve = AssetCurve(weight, imf, tiers)
                other = AssetCurve(min(weight + D("0.05"), D(1)), imf, tiers)
                assert curve(size) == asset_curve(weight, imf, tiers, size)
                assert curve.pair_at(other, size) == (
                    asset_curve(weight, imf, tiers, size),
                    asset_curve(other.weight, imf, tiers, size),
                )
            else:
                liability = LiabilityCurve(weight + 1, imf)
                other_l = LiabilityCurve(weight + 2, imf)
                assert liability(size) == liability_curve(weight + 1, imf, size)
                assert liability.pair_at(other_l, size) == (
                    liability_curve(weight + 1, imf, size),
                    liability_curve(weight + 2, imf, size),
                )
        mmr = weight / 10
        ratio_root = mmr / imf
        base = ratio_root * ratio_root * (1 + Decimal(nudge).scaleb(-21))
        assert perp_margin_ratios(mmr * 2, mmr, imf, base) == (
            margin_ratio(mmr * 2, imf, base),
            margin_ratio(mmr, imf, base),
        )


def test_fast_constructors_build_what_the_dataclasses_build() -> None:
    numbers = [D(i) / 7 for i in range(20)]
    assert new_sides(numbers[0], numbers[1]) == Sides(numbers[0], numbers[1])
    args = (
        "perp",
        3,
        "c",
        "v",
        "A",
        *numbers[2:8],
        new_sides(numbers[8], numbers[9]),
        Sides(numbers[10], numbers[11]),
        Sides(numbers[12], numbers[13]),
        numbers[14],
        numbers[15],
    )
    built = new_line(*args)  # type: ignore[arg-type]
    assert built == LineValue(*args)  # type: ignore[arg-type]
    assert [getattr(built, f.name) for f in fields(LineValue)] == list(args)
