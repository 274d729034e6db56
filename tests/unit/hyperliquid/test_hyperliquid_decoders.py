"""Every recorded Hyperliquid response decodes to its own values, with its JSON types checked:
amounts are decimal strings made Decimal (a JSON number there is refused), integers stay ints."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest
from hl_fixtures import body_of, case, cases, raw_json

from chains.hyperliquid.decoders import (
    DecodeError,
    decode_clearinghouse_state,
    decode_meta,
    decode_meta_and_asset_ctxs,
    decode_position,
    decode_spot_state,
    decode_user_abstraction,
    parse_body,
)

STATES = cases("clearinghouse_state.json")
SPOTS = cases("spot_clearinghouse_state.json")
AMOUNT_KEYS = ("szi", "entryPx", "positionValue", "unrealizedPnl", "marginUsed")
LIVE_TYPED = ("jkorf_hype_isolated_long", "docs_eth_isolated_long")


@pytest.mark.parametrize("entry", STATES, ids=lambda c: c["name"])
def test_every_clearinghouse_state_decodes_to_its_recorded_values(entry: dict[str, Any]) -> None:
    raw = raw_json(entry)

    state = decode_clearinghouse_state(body_of(entry))

    assert state.skipped == ()
    assert len(state.positions) == len(raw["assetPositions"])
    for decoded, recorded in zip(state.positions, raw["assetPositions"], strict=True):
        body = recorded["position"]
        assert decoded.coin == body["coin"]
        assert decoded.szi == Decimal(body["szi"]) and type(decoded.szi) is Decimal
        assert decoded.entry_px == Decimal(body["entryPx"])
        assert decoded.position_value == Decimal(body["positionValue"])
        assert decoded.unrealized_pnl == Decimal(body["unrealizedPnl"])
        assert decoded.margin_used == Decimal(body["marginUsed"])
        assert decoded.leverage == int(body["leverage"]["value"])
        assert decoded.leverage_type == body["leverage"]["type"]
        liq = body["liquidationPx"]
        assert decoded.liquidation_px == (None if liq is None else Decimal(liq))
    for key, summary in (
        ("marginSummary", state.margin_summary),
        ("crossMarginSummary", state.cross_margin_summary),
    ):
        assert summary.account_value == Decimal(raw[key]["accountValue"])
        assert summary.total_raw_usd == Decimal(raw[key]["totalRawUsd"])
        assert summary.total_ntl_pos == Decimal(raw[key]["totalNtlPos"])
    assert state.time_ms == (int(raw["time"]) if "time" in raw else None)


def test_the_live_types_are_ints_for_leverage_max_leverage_and_time() -> None:
    for name in LIVE_TYPED:
        raw = raw_json(case("clearinghouse_state.json", name))
        position = raw["assetPositions"][0]["position"]
        state = decode_clearinghouse_state(body_of(case("clearinghouse_state.json", name)))
        assert type(raw["time"]) is int and state.time_ms == raw["time"]
        assert type(position["leverage"]["value"]) is int
        assert type(position["maxLeverage"]) is int
        assert state.positions[0].max_leverage == position["maxLeverage"]
        assert all(type(position[k]) is str for k in AMOUNT_KEYS)


def test_jkorf_isolated_long_figures() -> None:
    state = decode_clearinghouse_state(
        body_of(case("clearinghouse_state.json", "jkorf_hype_isolated_long"))
    )
    (hype,) = state.positions
    assert (hype.coin, hype.szi, hype.leverage_type, hype.leverage) == (
        "HYPE",
        Decimal("2.0"),
        "isolated",
        10,
    )
    assert hype.raw_usd == Decimal("-68.126246")
    assert hype.liquidation_px == Decimal("35.8559189474")
    assert hype.mark == Decimal("37.826")
    assert state.cross_maintenance_margin_used == Decimal("0.0")
    assert state.withdrawable == Decimal("75.781884")
    assert state.time_ms == 1754467216357


def test_the_2023_format_has_no_time_no_max_leverage_and_twelve_cross_positions() -> None:
    state = decode_clearinghouse_state(
        body_of(case("clearinghouse_state.json", "python_sdk_2023_user_state_12_cross"))
    )
    assert len(state.positions) == 12
    assert {p.leverage_type for p in state.positions} == {"cross"}
    assert all(p.max_leverage is None for p in state.positions)
    assert state.time_ms is None and state.cross_maintenance_margin_used is None
    btc = next(p for p in state.positions if p.coin == "BTC")
    assert btc.szi == Decimal("-0.00785")


def _jkorf_doc() -> Any:
    return body_of(case("clearinghouse_state.json", "jkorf_hype_isolated_long"))


def test_a_number_where_a_string_is_expected_skips_that_position_and_says_why() -> None:
    doc = _jkorf_doc()
    doc["assetPositions"][0]["position"]["szi"] = Decimal("2.0")  # JSON 2.0, not "2.0"

    state = decode_clearinghouse_state(doc)

    assert state.positions == ()
    ((coin, why),) = state.skipped
    assert coin == "HYPE"
    assert "szi: expected a decimal string, got the number 2.0" in why


def test_a_number_in_a_summary_refuses_the_whole_state() -> None:
    doc = _jkorf_doc()
    doc["crossMarginSummary"]["accountValue"] = 75

    with pytest.raises(DecodeError, match=r"crossMarginSummary\.accountValue: expected a decimal"):
        decode_clearinghouse_state(doc)


def test_a_negative_size_on_a_long_shaped_line_is_refused() -> None:
    doc = _jkorf_doc()
    position = doc["assetPositions"][0]["position"]
    position["szi"] = "-2.0"  # the rest of the line (rawUsd, pnl) is a long's

    with pytest.raises(DecodeError, match="disagrees with its"):
        decode_position(doc["assetPositions"][0], "assetPositions[0]")


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("leverage", "type"), "long", "neither cross nor isolated"),
        (("leverage", "value"), 0, "below 1"),
        (("leverage", "value"), 10.5, "expected an integer"),
        (("entryPx",), "NaN", "not a finite number"),
        (("positionValue",), "abc", "not a decimal number"),
    ],
)
def test_bad_position_fields_are_refused_with_the_field_named(
    path: tuple[str, ...], value: Any, message: str
) -> None:
    entry = copy.deepcopy(_jkorf_doc()["assetPositions"][0])
    target = entry["position"]
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = Decimal(str(value)) if isinstance(value, float) else value

    with pytest.raises(DecodeError, match=message):
        decode_position(entry, "assetPositions[0]")


def test_an_html_page_is_not_json() -> None:
    with pytest.raises(DecodeError, match="not JSON"):
        parse_body(b"<html><body>502 Bad Gateway</body></html>")


def test_floats_never_appear_in_a_parsed_body() -> None:
    doc = parse_body(b'{"a": 1.5, "b": [2.25e3], "c": 3}')
    assert doc == {"a": Decimal("1.5"), "b": [Decimal("2.25e3")], "c": 3}
    assert type(doc["a"]) is Decimal and type(doc["c"]) is int


@pytest.mark.parametrize("entry", SPOTS, ids=lambda c: c["name"])
def test_every_spot_state_decodes_to_its_recorded_values(entry: dict[str, Any]) -> None:
    raw = raw_json(entry)

    spot = decode_spot_state(body_of(entry))

    assert spot.skipped == ()
    for decoded, recorded in zip(spot.balances, raw["balances"], strict=True):
        assert decoded.coin == recorded["coin"]
        assert decoded.token == int(recorded["token"])
        assert (decoded.total, decoded.hold, decoded.entry_ntl) == (
            Decimal(recorded["total"]),
            Decimal(recorded["hold"]),
            Decimal(recorded["entryNtl"]),
        )


def test_spot_token_is_an_int_live_and_a_string_in_ccxt() -> None:
    live = raw_json(case("spot_clearinghouse_state.json", "jkorf_usdc_hype_as_captured"))
    ccxt = raw_json(case("spot_clearinghouse_state.json", "ccxt_spot_five_tokens"))
    assert type(live["balances"][1]["token"]) is int
    assert type(ccxt["balances"][1]["token"]) is str
    hype = decode_spot_state(ccxt).balances[1]
    assert (hype.coin, hype.token, hype.total) == ("HYPE", 150, Decimal("4.43762752"))


def test_a_spot_balance_with_a_number_total_is_skipped() -> None:
    doc = body_of(case("spot_clearinghouse_state.json", "jkorf_usdc_hype_as_captured"))
    doc["balances"][0]["total"] = Decimal("2.77363")

    spot = decode_spot_state(doc)

    assert [b.coin for b in spot.balances] == ["HYPE"]
    assert spot.skipped[0][0] == "USDC" and "total: expected a decimal string" in spot.skipped[0][1]


def test_meta_samples_decode_with_and_without_margin_tables() -> None:
    nautilus = decode_meta(body_of(case("meta.json", "nautilus_meta_perp_sample")))
    assert [(a.name, a.max_leverage, a.sz_decimals) for a in nautilus.universe] == [
        ("BTC", 40, 5),
        ("ETH", 25, 4),
        ("ATOM", 5, 2),
    ]
    assert nautilus.margin_tables == {}
    tiered = decode_meta(body_of(case("meta.json", "docs_meta_with_tiered_table")))
    assert [(t.lower_bound, t.max_leverage) for t in tiered.margin_tables[51]] == [
        (Decimal("0.0"), Decimal(10)),
        (Decimal("3000000.0"), Decimal(5)),
    ]
    loom = tiered.universe[3]
    assert (loom.name, loom.delisted, loom.only_isolated) == ("LOOM", True, True)


def test_meta_and_asset_ctxs_give_mark_and_oracle_prices() -> None:
    docs = decode_meta_and_asset_ctxs(body_of(case("meta.json", "docs_meta_and_asset_ctxs")))
    assert docs.contexts["BTC"].mark_px == Decimal("14.3161")
    assert docs.contexts["BTC"].oracle_px == Decimal("14.32")
    assert docs.contexts["HPOS"].oracle_px == Decimal("8.4585")
    hb = decode_meta_and_asset_ctxs(
        body_of(case("meta.json", "hummingbot_meta_and_asset_ctxs_2023"))
    )
    assert (hb.contexts["BTC"].mark_px, hb.contexts["ETH"].oracle_px) == (
        Decimal("36733.0"),
        Decimal("1921.7"),
    )
    btc = hb.asset("BTC")
    assert btc is not None and hb.tier_max_leverage(btc, Decimal(10**9)) == 50


def test_margin_tiers_pick_the_band_of_the_notional() -> None:
    doc = body_of(case("meta.json", "docs_meta_with_tiered_table"))
    doc["universe"][0]["marginTableId"] = 51
    doc["universe"][1]["marginTableId"] = 20  # an id below 50: one tier at that leverage
    markets = decode_meta_and_asset_ctxs([doc, [{"markPx": "1.0", "oraclePx": "1.0"}] * 4])
    btc, eth = markets.asset("BTC"), markets.asset("ETH")
    assert btc is not None and eth is not None
    assert markets.tier_max_leverage(btc, Decimal("2999999")) == 10
    assert markets.tier_max_leverage(btc, Decimal("3000000")) == 5
    assert markets.tier_max_leverage(eth, Decimal("1")) == 20


def test_a_bad_asset_context_leaves_only_that_asset_unpriced() -> None:
    doc = body_of(case("meta.json", "docs_meta_and_asset_ctxs"))
    doc[1][1]["oraclePx"] = Decimal("6.0457")

    markets = decode_meta_and_asset_ctxs(doc)

    assert set(markets.contexts) == {"BTC", "HPOS"}
    assert "oraclePx: expected a decimal string" in markets.bad_contexts["ETH"]


def test_user_abstraction_is_a_bare_string() -> None:
    assert decode_user_abstraction(parse_body(b'"unifiedAccount"')) == "unifiedAccount"
    with pytest.raises(DecodeError):
        decode_user_abstraction(parse_body(b"null"))
