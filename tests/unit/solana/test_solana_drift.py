"""Drift User / SpotMarket / PerpMarket decoding on real dumps, and the scaled-balance math.

Users: tests/fixtures/solana/solana_lending_layouts.json. Markets: the 5 mainnet SpotMarket /
PerpMarket accounts protocol-v2 embeds in its tests (tests/fixtures/solana/real_accounts). Those
tests state nothing about the markets' weights, margin ratios or imf factors, so those values
are decoded by us (protocol-v2 layout at 0ae3e3b1) and asserted as decoded; the mint, oracle,
name and market index are checked against the SDK's mainnet table (the fixtures'
`provenance_cross_check`), the pubkey against each file's.
"""

from __future__ import annotations

from typing import Any

import pytest
from solana_fixtures import b64, load
from solana_real_accounts import real_account, real_bytes, stated, with_bytes
from solders.pubkey import Pubkey

from chains.base import Address, EndpointPolicy
from chains.solana.decoders import AccountDecodeError
from chains.solana.decoders.drift import (
    MARGIN_PRECISION,
    DriftSpotPosition,
    decode_perp_market,
    decode_spot_market,
    decode_user,
    encode_spot_market,
    spot_market_address,
    spot_token_amount,
)
from chains.solana.lines import RawAccount, build_lines
from chains.solana.plan import build_plan
from chains.solana.spec import DriftSpotMarket, DriftVenue, SolanaChainSpec

DUMPS = load("solana_lending_layouts.json")["drift_user"]["real_dumps"]


@pytest.mark.parametrize("dump", DUMPS, ids=["decodeUser.ts", "liquidation-tests"])
def test_real_drift_users_decode_to_the_stated_positions(dump: dict[str, Any]) -> None:
    expected = dump["decoded_by_us"]

    user = decode_user(b64(dump["data_base64"]))

    assert user.authority == expected["authority"]
    assert user.delegate == expected["delegate"]
    assert user.name == expected["name"]
    assert user.sub_account_id == expected["sub_account_id"]
    assert user.open_orders == expected["open_orders"]
    assert [
        (s.market_index, s.scaled_balance, s.balance_type, s.cumulative_deposits)
        for s in user.spot_positions
    ] == [
        (
            s["market_index"],
            s["scaled_balance"],
            s["balance_type"].lower(),
            s["cumulative_deposits"],
        )
        for s in expected["spot_positions_nonempty"]
    ]
    assert [
        (
            p.market_index,
            p.base_asset_amount,
            p.quote_asset_amount,
            p.quote_entry_amount,
            p.quote_break_even_amount,
            p.settled_pnl,
        )
        for p in user.perp_positions
    ] == [
        (
            p["market_index"],
            p["base_asset_amount"],
            p["quote_asset_amount"],
            p["quote_entry_amount"],
            p["quote_break_even_amount"],
            p["settled_pnl"],
        )
        for p in expected["perp_positions_nonempty"]
    ]


def test_upstream_assertion_two_perp_positions_and_ten_open_orders() -> None:
    user = decode_user(b64(DUMPS[0]["data_base64"]))
    assert len(user.perp_positions) == 2
    assert user.open_orders == 10


def test_a_user_dump_with_a_wrong_discriminator_is_rejected() -> None:
    data = bytearray(b64(DUMPS[0]["data_base64"]))
    data[0] ^= 0xFF
    with pytest.raises(AccountDecodeError, match="discriminator"):
        decode_user(bytes(data))


def _market(decimals: int, deposit: int, borrow: int) -> Any:
    return decode_spot_market(
        encode_spot_market(
            address=Pubkey.new_unique(),
            mint=Pubkey.new_unique(),
            market_index=3,
            decimals=decimals,
            cumulative_deposit_interest=deposit,
            cumulative_borrow_interest=borrow,
        )
    )


def test_spot_market_fields_sit_at_drifts_offsets() -> None:
    data = encode_spot_market(
        address=Pubkey.default(),
        mint=Pubkey.default(),
        market_index=22,
        decimals=9,
        cumulative_deposit_interest=12_345,
        cumulative_borrow_interest=67_890,
    )
    assert len(data) == 776
    assert int.from_bytes(data[684:686], "little") == 22  # Drift's MARKET_INDEX_OFFSET
    assert int.from_bytes(data[464:480], "little") == 12_345
    assert int.from_bytes(data[480:496], "little") == 67_890


SPOT_FILES = {
    "USDC": "drift_spot_market_usdc_slot405455796.json",
    "SOL": "drift_spot_market_sol_orders_test.json",
    "JitoSOL-3": "drift_spot_market_jitosol3_borrow_curve_test.json",
}
PERP_FILES = {
    "SOL-PERP": "drift_perp_market_sol_slot405286944.json",
    "ETH-PERP": "drift_perp_market_eth_slot405287065.json",
}
# Decoded, not stated (1e4 = 100 % for weights, 1e6 for imf): (initial asset, maintenance
# asset, initial liability, maintenance liability, imf_factor, decimals).
SPOT_DECODED = {
    "USDC": (10_000, 10_000, 10_000, 10_000, 0, 6),  # the quote market: all weights 1
    "SOL": (8_000, 9_000, 12_000, 11_000, 1_250, 9),
    "JitoSOL-3": (8_500, 9_250, 11_500, 10_750, 50, 9),
}
# Decoded, not stated: (market index, margin_ratio_initial, margin_ratio_maintenance (1e4),
# imf_factor (1e6), high-leverage initial / maintenance (1e4)).
PERP_DECODED = {
    "SOL-PERP": (0, 500, 300, 50, 99, 66),  # 20x initial, liquidated below 3 %
    "ETH-PERP": (2, 500, 200, 250, 99, 66),
}


@pytest.mark.parametrize("symbol", list(SPOT_FILES))
def test_real_spot_markets_decode_to_their_pubkey_and_the_sdks_mainnet_table(
    symbol: str,
) -> None:
    fixture = real_account(SPOT_FILES[symbol])
    sdk = fixture["provenance_cross_check"]

    market = decode_spot_market(real_bytes(SPOT_FILES[symbol]))

    assert market.address == fixture["pubkey"]
    assert (market.mint, market.oracle, market.name) == (sdk["sdk_mint"], sdk["sdk_oracle"], symbol)
    assert sdk["sdk_symbol"] == symbol
    assert market.market_index == sdk["sdk_marketIndex"]
    # a mainnet spot market lives at its PDA
    pda = spot_market_address(Pubkey.from_string(PROGRAM), market.market_index)
    assert market.address == str(pda)


@pytest.mark.parametrize("symbol", list(SPOT_FILES))
def test_real_spot_market_weights_as_decoded_are_in_drifts_ranges(symbol: str) -> None:
    market = decode_spot_market(real_bytes(SPOT_FILES[symbol]))
    weights = (
        market.initial_asset_weight,
        market.maintenance_asset_weight,
        market.initial_liability_weight,
        market.maintenance_liability_weight,
    )
    print(f"{symbol}: weights {weights}, imf {market.imf_factor}, {market.decimals} dp (decoded)")

    assert (*weights, market.imf_factor, market.decimals) == SPOT_DECODED[symbol]
    assert 0 <= market.initial_asset_weight <= market.maintenance_asset_weight <= MARGIN_PRECISION
    # liability weights are at least 1 (a debt counts for at least its value)
    assert MARGIN_PRECISION <= market.maintenance_liability_weight
    assert market.maintenance_liability_weight <= market.initial_liability_weight
    assert 0 <= market.imf_factor < 1_000_000


def test_the_jitosol_markets_stated_max_borrow_rate_is_decoded() -> None:
    name = SPOT_FILES["JitoSOL-3"]
    market = decode_spot_market(real_bytes(name))
    assert market.max_borrow_rate == stated(name)["max_borrow_rate"]["value"] == 500_000
    # decoded, not stated: the rest of the legacy curve (1e6 precision)
    assert (market.optimal_utilization, market.optimal_borrow_rate) == (800_000, 20_000)


@pytest.mark.parametrize("symbol", list(PERP_FILES))
def test_real_perp_markets_decode_their_margin_ratios(symbol: str) -> None:
    fixture = real_account(PERP_FILES[symbol])

    market = decode_perp_market(real_bytes(PERP_FILES[symbol]))
    print(
        f"{symbol}: margin ratios {market.margin_ratio_initial} / "
        f"{market.margin_ratio_maintenance}, imf {market.imf_factor} (decoded)"
    )

    assert market.address == fixture["pubkey"]
    assert market.name == fixture["provenance_cross_check"]["bytes_name_found"] == symbol
    assert (
        market.market_index,
        market.margin_ratio_initial,
        market.margin_ratio_maintenance,
        market.imf_factor,
        market.high_leverage_margin_ratio_initial,
        market.high_leverage_margin_ratio_maintenance,
    ) == PERP_DECODED[symbol]
    assert 0 < market.margin_ratio_maintenance < market.margin_ratio_initial <= MARGIN_PRECISION
    assert 0 <= market.imf_factor <= 1_000_000


def test_sol_perp_and_sol_spot_read_the_same_oracle() -> None:
    # a layout cross-check between two account types: both markets price SOL with one feed
    perp = decode_perp_market(real_bytes(PERP_FILES["SOL-PERP"]))
    spot = decode_spot_market(real_bytes(SPOT_FILES["SOL"]))
    assert perp.oracle == spot.oracle == "3m6i4RFWEDw2Ft4tFHPJtYgmpPe21k56M3FHeWYrgGBz"
    # decoded, not stated: ETH-PERP's oracle
    eth = decode_perp_market(real_bytes(PERP_FILES["ETH-PERP"]))
    assert eth.oracle == "93FG52TzNKCnMiasV14Ba34BYcHDb9p4zK4GjZnLwqWR"


def test_the_local_chain_encoder_writes_what_the_real_layout_decodes() -> None:
    real = decode_spot_market(real_bytes(SPOT_FILES["SOL"]))
    encoded = decode_spot_market(
        encode_spot_market(
            address=Pubkey.from_string(real.address),
            mint=Pubkey.from_string(real.mint),
            market_index=real.market_index,
            decimals=real.decimals,
            cumulative_deposit_interest=real.cumulative_deposit_interest,
            cumulative_borrow_interest=real.cumulative_borrow_interest,
            oracle=Pubkey.from_string(real.oracle),
            name=real.name,
            initial_asset_weight=real.initial_asset_weight,
            maintenance_asset_weight=real.maintenance_asset_weight,
            initial_liability_weight=real.initial_liability_weight,
            maintenance_liability_weight=real.maintenance_liability_weight,
            imf_factor=real.imf_factor,
        )
    )
    for field in (
        "address",
        "mint",
        "oracle",
        "name",
        "market_index",
        "decimals",
        "cumulative_deposit_interest",
        "cumulative_borrow_interest",
        "initial_asset_weight",
        "maintenance_asset_weight",
        "initial_liability_weight",
        "maintenance_liability_weight",
        "imf_factor",
    ):
        assert getattr(encoded, field) == getattr(real, field), field


# Offsets from protocol-v2 field order (state/spot_market.rs, perp_market.rs): the spot weights
# follow next_deposit_record_id @632, the perp margin ratios follow 4 u32s from imf_factor @1120.
SPOT_INITIAL_ASSET_AT, SPOT_MAINTENANCE_LIABILITY_AT, SPOT_IMF_AT = 640, 652, 656
PERP_INITIAL_AT, PERP_MAINTENANCE_AT = 1136, 1140


def _u32(value: int) -> bytes:
    return value.to_bytes(4, "little")


def _sol_spot_with(offset: int, value: int) -> bytes:
    return with_bytes(real_bytes(SPOT_FILES["SOL"]), offset, _u32(value))


def _sol_perp_with(offset: int, value: int) -> bytes:
    return with_bytes(real_bytes(PERP_FILES["SOL-PERP"]), offset, _u32(value))


def test_the_offsets_modified_below_hold_the_decoded_values() -> None:
    spot, perp = real_bytes(SPOT_FILES["SOL"]), real_bytes(PERP_FILES["SOL-PERP"])

    def read(data: bytes, at: int) -> int:
        return int.from_bytes(data[at : at + 4], "little")

    assert (read(spot, 640), read(spot, 652), read(spot, 656)) == (8_000, 11_000, 1_250)
    assert (read(perp, 1136), read(perp, 1140)) == (500, 300)


@pytest.mark.parametrize(
    ("decode", "data", "message"),
    [
        (
            decode_spot_market,
            _sol_spot_with(SPOT_INITIAL_ASSET_AT, 12_000),  # asset weight 1.2
            "spot market 1 asset weights initial 12000 / maintenance 9000 out of range",
        ),
        (
            decode_spot_market,
            _sol_spot_with(SPOT_MAINTENANCE_LIABILITY_AT, 9_000),  # liability weight 0.9
            "spot market 1 liability weights initial 12000 / maintenance 9000 out of range",
        ),
        (decode_spot_market, _sol_spot_with(SPOT_IMF_AT, 10**6), "imf_factor 1000000"),
        (
            decode_perp_market,
            _sol_perp_with(PERP_INITIAL_AT, 20_000),  # below 1x leverage
            "perp market 0 margin ratios initial 20000 / maintenance 300 out of range",
        ),
        (
            decode_perp_market,
            _sol_perp_with(PERP_MAINTENANCE_AT, 600),  # maintenance above initial
            "margin ratios initial 500 / maintenance 600 out of range",
        ),
        (
            decode_perp_market,
            with_bytes(real_bytes(PERP_FILES["SOL-PERP"]), 1174, (40).to_bytes(2, "little")),
            "high-leverage margin ratios initial 40 / maintenance 66 out of range",
        ),
        (decode_perp_market, real_bytes(PERP_FILES["SOL-PERP"])[:-8], "1208 bytes"),
        (decode_perp_market, real_bytes(SPOT_FILES["SOL"]), "776 bytes"),
        (
            decode_perp_market,
            with_bytes(real_bytes(PERP_FILES["SOL-PERP"]), 0, bytes(8)),
            "discriminator",
        ),
    ],
    ids=[
        "spot-asset-1.2",
        "spot-liability-0.9",
        "spot-imf",
        "perp-initial",
        "perp-maint-above-initial",
        "perp-high-leverage",
        "perp-size",
        "spot-as-perp",
        "perp-discriminator",
    ],
)
def test_a_real_market_with_a_bad_parameter_is_rejected_naming_it(
    decode: Any, data: bytes, message: str
) -> None:
    with pytest.raises(AccountDecodeError, match=message):
        decode(data)


PROGRAM = "dRiftyHA39MWEi3m9aunc5MzRF1JYuBsbn6VPcn33UH"


def test_a_spot_market_with_an_out_of_range_weight_becomes_an_issue_line() -> None:
    sol = spot_market_address(Pubkey.from_string(PROGRAM), 1)
    spec = SolanaChainSpec(
        chain="t",
        genesis_hash="x" * 32,
        endpoints=EndpointPolicy(urls=("http://127.0.0.1:1",)),
        drift=DriftVenue(PROGRAM, spot_markets=(DriftSpotMarket(1, "SOL", 9, str(sol)),)),
        discover_token_accounts=False,
        native_balances=False,
    )
    plan = build_plan(spec, [Address(str(Pubkey.new_unique()))])
    bad = _sol_spot_with(SPOT_INITIAL_ASSET_AT, 12_000)

    lines = build_lines(spec, plan, {str(sol): RawAccount(PROGRAM, 0, bad)}, block_time=0)

    assert [(issue.subject, issue.message) for issue in lines.issues] == [
        (
            str(sol),
            "Drift spot market: Drift spot market 1 asset weights initial 12000 / maintenance "
            "9000 out of range (0 <= initial <= maintenance <= 1e4)",
        )
    ]


def test_real_deposit_scaled_balance_becomes_tokens_with_the_cumulative_interest() -> None:
    user = decode_user(b64(DUMPS[1]["data_base64"]))
    deposit = user.spot_positions[0]  # market 1 (SOL), scaled 3_221_762
    market = _market(9, 11_234_567_890, 10**10)  # interest 1.123456789
    # 3_221_762 * 11_234_567_890 / 10**10 = 3_619_510.6...: deposits round down
    assert spot_token_amount(deposit, market) == 3_619_510


def test_borrow_amount_rounds_up() -> None:
    borrow = DriftSpotPosition(1, 22_367_776_805_199, "borrow", 0, 0)
    market = _market(6, 10**10, 10_500_000_001)  # 6 dp: divide by 10**13
    # 22_367_776_805_199 * 10_500_000_001 / 10**13 = 23_486_165_647.696...
    assert spot_token_amount(borrow, market) == 23_486_165_648
