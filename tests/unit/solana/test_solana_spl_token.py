"""SPL Token / Token-2022 decoding and ATA derivation on real mainnet data."""

from __future__ import annotations

import pytest
from solana_fixtures import b64, load
from solders.pubkey import Pubkey

from chains.solana.decoders import AccountDecodeError
from chains.solana.decoders.spl_token import (
    associated_token_address,
    decode_token_account,
    encode_token_account,
)
from chains.solana.spec import SPL_TOKEN_PROGRAM, TOKEN_2022_PROGRAM

FIXTURE = load("solana_spl_token.json")
PROGRAMS = {"spl_token": SPL_TOKEN_PROGRAM, "token_2022": TOKEN_2022_PROGRAM}


def test_real_get_token_accounts_by_owner_response_decodes_to_the_usdc_amount() -> None:
    vector = FIXTURE["rpc_vectors"][0]
    entry = vector["raw_response"]["result"]["value"][0]
    assert entry["account"]["data"][1] == "base64"

    state = decode_token_account(b64(entry["account"]["data"][0]))

    assert state.amount == 5_768_089_553_967
    assert state.mint == "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
    assert state.owner == "5yv6Vh8FNx93TXeSS94xy8VLZMbTqx4vXp7Zg5bDLZtE"
    assert state.state == "initialized"
    assert entry["account"]["owner"] == SPL_TOKEN_PROGRAM


def test_real_token_account_pubkey_rederives_as_the_owners_ata() -> None:
    entry = FIXTURE["rpc_vectors"][0]["raw_response"]["result"]["value"][0]
    state = decode_token_account(b64(entry["account"]["data"][0]))

    ata = associated_token_address(
        Pubkey.from_string(state.owner),
        Pubkey.from_string(state.mint),
        Pubkey.from_string(SPL_TOKEN_PROGRAM),
    )

    assert str(ata) == entry["pubkey"] == "5urjqaUDYeHiSiiTkRph6aqYU94GrsBXXSMosxT9b3dF"


@pytest.mark.parametrize("vector", FIXTURE["ata_test_vectors"], ids=lambda v: v["ata"][:8])
def test_ata_vectors_match_for_both_token_programs(vector: dict[str, str]) -> None:
    program = PROGRAMS[vector["token_program"].split(" ")[0]]

    ata = associated_token_address(
        Pubkey.from_string(vector["wallet"]),
        Pubkey.from_string(vector["mint"]),
        Pubkey.from_string(program),
    )

    assert str(ata) == vector["ata"]


def test_token_2022_ata_differs_from_spl_token_ata_for_the_same_wallet_and_mint() -> None:
    wallet = Pubkey.from_string("5d21Nx19eZBThbExCn1ESAk3RGmE8Rdp9PKMWZ2VedSK")
    mint = Pubkey.from_string("3CqfBkrmRsK3uXZaxktvTeeBkJp4yeFKs4mUi2jhKExz")
    spl = associated_token_address(wallet, mint, Pubkey.from_string(SPL_TOKEN_PROGRAM))
    t22 = associated_token_address(wallet, mint, Pubkey.from_string(TOKEN_2022_PROGRAM))
    assert (str(spl), str(t22)) == (
        "Aumq2SPVzZccYL3UAhvXoDDkNYLZr2zpyxLuJiyx79te",
        "4xoV4cxTM3GcaWP7bKbUdu2Gp9P9nEgpmCPV8ykFGo4U",
    )


def test_token_2022_account_with_extensions_decodes_its_base_layout() -> None:
    mint, owner = Pubkey.new_unique(), Pubkey.new_unique()
    base = encode_token_account(mint, owner, 42)
    extended = base + b"\x02" + bytes([7, 0, 0, 0])  # AccountType=Account, ImmutableOwner TLV

    state = decode_token_account(extended)

    assert (state.mint, state.owner, state.amount) == (str(mint), str(owner), 42)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (bytes(100), "100 bytes"),
        (encode_token_account(Pubkey.default(), Pubkey.default(), 1) + b"\x01", "account type 1"),
        (bytes(165), "state 0"),
    ],
)
def test_bad_token_account_bytes_are_rejected_with_the_reason(data: bytes, reason: str) -> None:
    with pytest.raises(AccountDecodeError, match=reason):
        decode_token_account(data)
