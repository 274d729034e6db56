"""Kamino Obligation layout. No real Obligation dump exists in the fixtures (klend ships none),
so these tests pin the decoder to the offsets stated in solana_lending_layouts.json by writing
bytes at those offsets directly."""

from __future__ import annotations

import pytest
from solana_fixtures import load
from solders.pubkey import Pubkey

from chains.solana.decoders import AccountDecodeError
from chains.solana.decoders.kamino import (
    OBLIGATION_DISCRIMINATOR,
    OBLIGATION_LEN,
    decode_obligation,
    encode_obligation,
)

LAYOUT = load("solana_lending_layouts.json")["kamino_obligation"]


def test_stated_account_size_and_discriminator() -> None:
    assert OBLIGATION_LEN == LAYOUT["account_data_len"] == 3344
    assert OBLIGATION_DISCRIMINATOR.hex() == LAYOUT["discriminator"].split()[0]


def test_deposits_and_borrows_are_read_at_the_stated_offsets() -> None:
    data = bytearray(OBLIGATION_LEN)
    data[:8] = OBLIGATION_DISCRIMINATOR
    market, owner = Pubkey.new_unique(), Pubkey.new_unique()
    deposit_reserve, borrow_reserve = Pubkey.new_unique(), Pubkey.new_unique()
    data[32:64], data[64:96] = bytes(market), bytes(owner)
    second_deposit = 96 + 136 * 1  # slot 1; slot 0 stays empty
    data[second_deposit : second_deposit + 32] = bytes(deposit_reserve)
    data[second_deposit + 32 : second_deposit + 40] = (20 * 10**9).to_bytes(8, "little")
    data[second_deposit + 40 : second_deposit + 56] = (3_000 << 60).to_bytes(16, "little")
    first_borrow = 1208
    data[first_borrow : first_borrow + 32] = bytes(borrow_reserve)
    borrowed_sf = (1_000 * 10**6 << 60) + 1  # a hair over 1,000 USDC
    data[first_borrow + 88 : first_borrow + 104] = borrowed_sf.to_bytes(16, "little")

    obligation = decode_obligation(bytes(data))

    assert (obligation.lending_market, obligation.owner) == (str(market), str(owner))
    assert [
        (d.reserve, d.deposited_amount, d.market_value_sf >> 60) for d in obligation.deposits
    ] == [(str(deposit_reserve), 20_000_000_000, 3_000)]
    assert [(b.reserve, b.borrowed_amount_raw) for b in obligation.borrows] == [
        (str(borrow_reserve), 1_000_000_001)  # rounded up: a debt is never understated
    ]


def test_encoded_obligation_round_trips() -> None:
    reserve = Pubkey.new_unique()
    data = encode_obligation(
        lending_market=Pubkey.new_unique(),
        owner=Pubkey.new_unique(),
        deposits=((reserve, 5, 7 << 60),),
        borrows=((reserve, 9 << 60, 1 << 60),),
    )
    obligation = decode_obligation(data)
    assert obligation.deposits[0].deposited_amount == 5
    assert obligation.borrows[0].borrowed_amount_raw == 9
    assert obligation.deposited_value_usd == 7


def test_wrong_size_is_rejected() -> None:
    with pytest.raises(AccountDecodeError, match="3343 bytes"):
        decode_obligation(OBLIGATION_DISCRIMINATOR + bytes(3335))
