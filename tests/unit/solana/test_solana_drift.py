"""Drift User / SpotMarket decoding on real User dumps, and the scaled-balance math."""

from __future__ import annotations

from typing import Any

import pytest
from solana_fixtures import b64, load
from solders.pubkey import Pubkey

from chains.solana.decoders import AccountDecodeError
from chains.solana.decoders.drift import (
    DriftSpotPosition,
    decode_spot_market,
    decode_user,
    encode_spot_market,
    spot_token_amount,
)

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
