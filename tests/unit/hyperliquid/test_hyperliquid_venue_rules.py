"""The venue view of a Hyperliquid account: the `VenueAccount` the adapter builds from a
RECORDED `clearinghouseState` (chains/hyperliquid/venues.py), measured by
`aggregator.venues.hyperliquid_rules.RULES`, gives Hyperliquid's own crossMaintenanceMarginUsed,
cross accountValue, totalMarginUsed, isolated marginUsed and liquidationPx to 1e-6 relative.

Margin tables come from the recorded `meta` (Hyperliquid's documented example with
`marginTables`: BTC and ETH at 50x). The recorded metas list no SOL, HYPE or flx:CRCL; for
those the universe entry is the one the position itself states (its `maxLeverage`), and for the
2023 format (no `maxLeverage`) 50x, the leverage the fixtures' README finds its numbers were
made with. The 2023 liquidation prices came from an older formula (README) and are not compared.
"""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from hl_fixtures import body_of, case, cases, raw_json

from aggregator.venues.hyperliquid_rules import RULES, liquidation_prices, margin_tiers
from aggregator.venues.model import VenueParameterError
from aggregator.venues.registry import rules_for
from chains.base import Address, EndpointPolicy, VenueAccount, VenueAsset
from chains.hyperliquid.decoders import (
    ClearinghouseState,
    PerpMarkets,
    decode_clearinghouse_state,
    decode_meta,
)
from chains.hyperliquid.spec import HyperliquidChainSpec, PerpCoin
from chains.hyperliquid.venues import venue_account

STATES = "clearinghouse_state.json"
META = "docs_meta_with_tiered_table"
ACCOUNT = Address("0x0000000000000000000000000000000000000001")
SPEC = HyperliquidChainSpec(
    chain="hl",
    network="mainnet",
    endpoints=EndpointPolicy(urls=("http://127.0.0.1:1/info",)),
    perp_coins=tuple(PerpCoin(c, c) for c in ("BTC", "ETH", "SOL", "HYPE")),
)  # flx:CRCL and the 2023 altcoins are not configured: the venue counts them all the same
WITH_POSITIONS = [c["name"] for c in cases(STATES) if c["response"]["assetPositions"]]
NEW_FORMAT = [name for name in WITH_POSITIONS if "2023" not in name]
REL = Decimal("1e-6")


def close(ours: Decimal, theirs: Decimal) -> bool:
    return abs(ours - theirs) <= REL * max(abs(theirs), Decimal("1e-12"))


def state_of(name: str) -> ClearinghouseState:
    return decode_clearinghouse_state(body_of(case(STATES, name)))


def recorded_meta() -> dict[str, Any]:
    meta: dict[str, Any] = json.loads(json.dumps(raw_json(case("meta.json", META))))
    return meta


def markets_for(state: ClearinghouseState, meta: dict[str, Any] | None = None) -> PerpMarkets:
    """The recorded meta, plus a universe entry at the position's own max leverage for each
    coin it does not list."""
    doc = meta if meta is not None else recorded_meta()
    listed = {entry["name"] for entry in doc["universe"]}
    for position in state.positions:
        if position.coin not in listed:
            leverage = position.max_leverage if position.max_leverage is not None else 50
            doc["universe"].append(
                {"name": position.coin, "szDecimals": 0, "maxLeverage": leverage}
            )
            listed.add(position.coin)
    return PerpMarkets(decode_meta(doc), {}, {})


def account_of(name: str, meta: dict[str, Any] | None = None) -> VenueAccount:
    state = state_of(name)
    built = venue_account(SPEC, ACCOUNT, state, markets_for(state, meta), "disabled")
    assert built is not None
    return built


def reported(account: VenueAccount, key: str) -> Decimal:
    return Decimal(account.reported[key])


# --- the recorded numbers ------------------------------------------------------------------


def test_the_rules_are_the_registrys_and_name_their_metric() -> None:
    assert rules_for("hyperliquid") is RULES
    assert (RULES.name, RULES.metric) == ("hyperliquid", "account_value_to_maintenance")
    assert "below 1" in RULES.units


@pytest.mark.parametrize("name", WITH_POSITIONS)
def test_the_account_is_built_as_the_lines_name_it(name: str) -> None:
    state = state_of(name)
    account = account_of(name)

    assert (account.account, account.venue, account.rules, account.problem) == (
        ACCOUNT,
        "hyperliquid",
        "hyperliquid",
        None,
    )
    assert [a.market for a in account.assets] == [p.coin for p in state.positions]
    for asset, position in zip(account.assets, state.positions, strict=True):
        assert Decimal(asset.amount_raw).scaleb(-asset.decimals) == position.szi
        assert asset.price is not None and close(
            abs(position.szi) * asset.price, position.position_value
        )
        assert asset.params["leverage_type"] == position.leverage_type
        assert asset.params["margin_tiers"] == "1"
        for value in asset.params.values():
            if value not in ("cross", "isolated"):
                Decimal(value)  # every param an exact decimal string
    assert account.params["cross_total_raw_usd"] == str(state.cross_margin_summary.total_raw_usd)
    RULES.check(account)


def test_a_coin_the_config_does_not_list_still_counts_under_its_coin() -> None:
    account = account_of("ccxt_hip3_isolated_long_flx")
    (asset,) = account.assets
    assert (asset.asset, asset.market) == ("flx:CRCL", "flx:CRCL")


@pytest.mark.parametrize("name", NEW_FORMAT)
def test_the_cross_maintenance_margin_is_hyperliquids(name: str) -> None:
    account = account_of(name)

    measure = RULES.measure(account, {})

    theirs = reported(account, "cross_maintenance_margin_used")
    assert measure.requirement == theirs if theirs == 0 else close(measure.requirement, theirs)


@pytest.mark.parametrize("name", WITH_POSITIONS)
def test_the_cross_account_value_and_margin_used_are_hyperliquids(name: str) -> None:
    account = account_of(name)

    measure = RULES.measure(account, {})

    assert measure.extra is not None
    assert close(measure.collateral, reported(account, "cross_account_value"))
    assert close(Decimal(measure.extra["cross_account_value"]), measure.collateral)
    used = Decimal(measure.extra["cross_margin_used"])
    theirs = reported(account, "cross_total_margin_used")
    assert used == theirs if theirs == 0 else close(used, theirs)


@pytest.mark.parametrize("name", WITH_POSITIONS)
def test_isolated_buckets_are_hyperliquids_and_outside_the_cross_measure(name: str) -> None:
    account = account_of(name)

    measure = RULES.measure(account, {})

    assert measure.extra is not None
    isolated = [a.market for a in account.assets if a.params["leverage_type"] == "isolated"]
    buckets = Decimal(0)
    for coin in isolated:
        ours = Decimal(measure.extra[f"isolated:{coin}:margin_used"])
        assert close(ours, reported(account, f"margin_used:{coin}"))
        buckets += ours
    assert close(measure.collateral + buckets, reported(account, "account_value"))
    if isolated and len(isolated) == len(account.assets):
        assert measure.requirement == 0 and measure.metric is None
        assert measure.metric_reason is not None and "no cross position" in measure.metric_reason


def test_the_ratio_of_the_cross_account_is_the_venues_own_numbers_ratio() -> None:
    account = account_of("ccxt_fetch_positions_cross_two_longs")

    measure = RULES.measure(account, {})

    theirs = reported(account, "cross_account_value") / reported(
        account, "cross_maintenance_margin_used"
    )
    assert measure.metric is not None and close(measure.metric, theirs)
    assert measure.metric.quantize(Decimal("0.001")) == Decimal("139.585")
    assert not measure.liquidatable


@pytest.mark.parametrize("name", NEW_FORMAT)
def test_each_liquidation_price_is_hyperliquids(name: str) -> None:
    account = account_of(name)

    ours = liquidation_prices(account)
    extra = RULES.measure(account, {}).extra

    assert extra is not None
    for coin, price in ours.items():
        key = f"liquidation_px:{coin}"
        if key in account.reported:
            assert price is not None and close(price, reported(account, key)), coin
        else:
            assert price is None, coin  # the venue's null: no positive price liquidates it
        assert extra[key] == ("none" if price is None else format(price, "f"))


def test_the_exact_liquidation_prices_match_to_the_shown_digits() -> None:
    for name in ("jkorf_hype_isolated_long", "ccxt_isolated_short_position"):
        account = account_of(name)
        ((coin, price),) = liquidation_prices(account).items()
        assert price is not None
        assert price.quantize(Decimal("1e-10")) == reported(account, f"liquidation_px:{coin}")


def test_the_2023_nulls_are_ours_too() -> None:
    account = account_of("python_sdk_2023_user_state_12_cross")
    ours = liquidation_prices(account)
    nulls = [coin for coin in ours if f"liquidation_px:{coin}" not in account.reported]
    assert len(nulls) == 7 and all(ours[coin] is None for coin in nulls)


def test_an_account_without_positions_has_no_venue_account() -> None:
    state = state_of("ccxt_swap_balance_no_positions")
    assert venue_account(SPEC, ACCOUNT, state, markets_for(state), "disabled") is None


# --- prices: shocks, liquidation, tiers ------------------------------------------------------


def test_a_price_shock_against_the_positions_lowers_the_margin() -> None:
    account = account_of("ccxt_fetch_positions_cross_two_longs")  # two cross longs
    marks = {a.asset: a.price for a in account.assets if a.price is not None}

    at_mark = RULES.measure(account, {}).margin
    down = RULES.measure(account, {k: v * Decimal("0.9") for k, v in marks.items()}).margin
    up = RULES.measure(account, {k: v * Decimal("1.1") for k, v in marks.items()}).margin

    assert down < at_mark < up


def test_a_price_shock_against_a_position_lowers_the_ratio_below_twice_max_leverage() -> None:
    # ratio = value / maintenance; a move of dp against a position takes |szi|*dp from the
    # value and |szi|*dp/(2*max leverage) from the maintenance (a long) or adds it (a short):
    # a short's ratio always falls, a long's falls while the ratio is below 2 * max leverage.
    account = account_of("python_sdk_2023_user_state_12_cross")  # ratio 34.4, 50x
    marks = {a.asset: a.price for a in account.assets if a.price is not None}
    at_mark = RULES.measure(account, {}).metric

    eth_down = RULES.measure(account, {"ETH": marks["ETH"] * Decimal("0.9")}).metric
    btc_up = RULES.measure(account, {"BTC": marks["BTC"] * Decimal("1.1")}).metric
    eth_up = RULES.measure(account, {"ETH": marks["ETH"] * Decimal("1.1")}).metric

    assert at_mark is not None and Decimal(1) < at_mark < 100
    assert eth_down is not None and btc_up is not None and eth_up is not None
    assert eth_down < at_mark < eth_up
    assert btc_up < at_mark


def test_above_twice_max_leverage_a_falling_long_lifts_the_ratio_as_the_venue_counts() -> None:
    account = account_of("ccxt_fetch_positions_cross_two_longs")  # ratio 139.6 at 50x
    marks = {a.asset: a.price for a in account.assets if a.price is not None}

    at_mark = RULES.measure(account, {}).metric
    down = RULES.measure(account, {k: v * Decimal("0.9") for k, v in marks.items()}).metric

    assert at_mark is not None and down is not None and at_mark > 100 and down > at_mark
    assert set(liquidation_prices(account).values()) == {None}  # the venue's nulls


def test_an_isolated_shock_leaves_the_cross_measure_and_drains_the_bucket() -> None:
    account = account_of("jkorf_hype_isolated_long")
    base = RULES.measure(account, {})
    shocked = RULES.measure(account, {"HYPE": Decimal("36")})

    assert (shocked.collateral, shocked.requirement) == (base.collateral, base.requirement)
    assert base.extra is not None and shocked.extra is not None
    key = "isolated:HYPE:margin_available"
    assert Decimal(shocked.extra[key]) < Decimal(base.extra[key])
    liquidation = liquidation_prices(account)["HYPE"]
    assert liquidation is not None
    at_liquidation = RULES.measure(account, {"HYPE": liquidation}).extra
    assert at_liquidation is not None and abs(Decimal(at_liquidation[key])) < Decimal("1e-20")


def test_at_a_cross_liquidation_price_the_cross_margin_is_zero() -> None:
    account = account_of("python_sdk_2023_user_state_12_cross")

    for coin, price in liquidation_prices(account).items():
        if price is None:
            continue
        measure = RULES.measure(account, {coin: price})
        assert abs(measure.margin) < Decimal("1e-18"), coin
        assert measure.metric is not None and close(measure.metric, Decimal(1))


def test_a_notional_past_a_tier_bound_takes_the_lower_leverage() -> None:
    meta = recorded_meta()  # table 51, "tiered 10x": 10x from 0, 5x from 3,000,000
    for entry in meta["universe"]:
        if entry["name"] == "ETH":
            entry["marginTableId"] = 51
    account = account_of("ccxt_fetch_positions_cross_two_longs", meta)
    eth = next(a for a in account.assets if a.asset == "ETH")
    sol = next(a for a in account.assets if a.asset == "SOL")
    assert [t.max_leverage for t in margin_tiers(eth, "ETH")] == [10, 5]
    assert eth.price is not None and sol.price is not None
    sol_maintenance = Decimal("463.9594") / 100

    def maintenance(eth_price: Decimal) -> Decimal:
        return RULES.measure(account, {"ETH": eth_price}).requirement - sol_maintenance

    assert close(maintenance(eth.price), Decimal("13694.04") / 20)
    bound = Decimal(3_000_000) / Decimal("3.6")
    assert close(maintenance(bound * Decimal("0.999")), Decimal("2997000") / 20)
    assert close(maintenance(bound), Decimal(3_000_000) / 10)


# --- out-of-range inputs ---------------------------------------------------------------------


def with_asset_params(account: VenueAccount, **changes: str | None) -> VenueAccount:
    first = account.assets[0]
    params = {k: v for k, v in {**first.params, **changes}.items() if v is not None}
    return replace(account, assets=(replace(first, params=params), *account.assets[1:]))


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"margin_tier.0.max_leverage": "0"}, "margin_tier.0.max_leverage"),
        ({"margin_tier.0.max_leverage": "2.5"}, "whole number"),
        ({"margin_tier.0.max_leverage": None}, "was not read"),
        ({"margin_tiers": "0"}, "margin_tiers"),
        ({"margin_tiers": None}, "margin_tiers was not read"),
        ({"margin_tiers": "2"}, "margin_tier.1.lower_bound was not read"),
        ({"margin_tier.0.lower_bound": "5"}, "starts at 0"),
        ({"margin_tier.0.lower_bound": "abc"}, "not a number"),
        ({"leverage_type": "long"}, "neither cross nor isolated"),
        ({"leverage": "0"}, "leverage"),
    ],
)
def test_an_out_of_range_asset_parameter_is_refused(
    changes: dict[str, str | None], says: str
) -> None:
    account = with_asset_params(account_of("ccxt_fetch_positions_cross_two_longs"), **changes)

    with pytest.raises(VenueParameterError, match=says):
        RULES.check(account)
    with pytest.raises(VenueParameterError):
        RULES.measure(account, {})


def test_tiers_that_do_not_rise_are_refused() -> None:
    account = with_asset_params(
        account_of("ccxt_fetch_positions_cross_two_longs"),
        margin_tiers="2",
        **{"margin_tier.1.lower_bound": "0", "margin_tier.1.max_leverage": "5"},
    )
    with pytest.raises(VenueParameterError, match="not above the last"):
        RULES.check(account)


def test_an_isolated_position_without_its_raw_usd_is_refused() -> None:
    account = with_asset_params(account_of("jkorf_hype_isolated_long"), isolated_raw_usd=None)
    with pytest.raises(VenueParameterError, match="isolated_raw_usd was not read"):
        RULES.check(account)


def test_missing_cross_raw_usd_a_zero_size_a_negative_price_or_other_rules_are_refused() -> None:
    account = account_of("ccxt_fetch_positions_cross_two_longs")
    first = account.assets[0]
    bad = [
        (replace(account, params={}), "cross_total_raw_usd was not read"),
        (replace(account, assets=(replace(first, amount_raw=0),)), "size 0"),
        (replace(account, rules="drift"), "are not 'hyperliquid'"),
        (replace(account, assets=(replace(first, price=None),)), "no venue price"),
    ]
    for broken, says in bad:
        with pytest.raises(VenueParameterError, match=says):
            RULES.check(broken)
    with pytest.raises(VenueParameterError, match="negative price"):
        RULES.measure(account, {first.asset: Decimal(-1)})


def _meta_with(**eth: Any) -> dict[str, Any]:
    meta = recorded_meta()
    for entry in meta["universe"]:
        if entry["name"] == "ETH":
            entry.update(eth)
    return meta


@pytest.mark.parametrize(
    ("meta", "says"),
    [
        (_meta_with(maxLeverage=0), "ETH: max leverage 0 is below 1"),
        (_meta_with(marginTableId=60), "ETH: margin table 60 is not in meta.marginTables"),
    ],
)
def test_a_bad_margin_table_sets_the_problem(meta: dict[str, Any], says: str) -> None:
    account = account_of("docs_eth_isolated_long", meta)

    assert account.problem is not None and says in account.problem
    with pytest.raises(VenueParameterError, match=says):
        RULES.check(account)


def test_a_coin_missing_from_the_meta_sets_the_problem() -> None:
    state = state_of("ccxt_fetch_positions_cross_two_longs")
    markets = PerpMarkets(decode_meta(recorded_meta()), {}, {})  # lists ETH, not SOL

    account = venue_account(SPEC, ACCOUNT, state, markets, "disabled")

    assert account is not None and account.problem is not None
    assert "SOL: not in metaAndAssetCtxs" in account.problem
    assert [a.market for a in account.assets] == ["SOL", "ETH"]  # still listed, not measured
    with pytest.raises(VenueParameterError, match="SOL"):
        RULES.check(account)


def test_a_position_that_did_not_decode_sets_the_problem() -> None:
    body = body_of(case(STATES, "ccxt_fetch_positions_cross_two_longs"))
    body["assetPositions"][0]["position"]["leverage"]["type"] = "long"
    state = decode_clearinghouse_state(body)

    account = venue_account(SPEC, ACCOUNT, state, markets_for(state), "disabled")

    assert account is not None and account.problem is not None
    assert account.problem.startswith("SOL: position not decoded")


def test_a_zero_leverage_tier_reaches_the_lines_as_an_issue_not_a_crash() -> None:
    from chains.hyperliquid.decoders import decode_spot_state
    from chains.hyperliquid.lines import user_lines

    state = state_of("docs_eth_isolated_long")
    markets = markets_for(state, _meta_with(maxLeverage=0))

    read = user_lines(SPEC, ACCOUNT, state, decode_spot_state({"balances": []}), markets, "x", 1)

    assert [p for p in read.positions if p.kind == "perp"] == []
    assert any("max leverage 0 is below 1" in issue.message for issue in read.issues)


def test_venue_asset_prices_are_used_unless_a_price_is_given() -> None:
    account = account_of("ccxt_fetch_positions_cross_two_longs")
    eth: VenueAsset = next(a for a in account.assets if a.asset == "ETH")
    assert eth.price is not None
    same = RULES.measure(account, {"ETH": eth.price})
    assert same == RULES.measure(account, {})
