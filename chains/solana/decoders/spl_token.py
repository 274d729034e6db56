"""SPL Token and Token-2022 token accounts, and associated token account derivation.

Layout (solana-program-library token/program/src/state.rs): a 165-byte base account
`mint(32) owner(32) amount u64 delegate COption<Pubkey>(36) state u8 is_native COption<u64>(12)
delegated_amount u64 close_authority COption<Pubkey>(36)`. Token-2022 accounts with extensions
are longer: byte 165 is the AccountType (2 = Account) and TLV entries follow.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from solders.pubkey import Pubkey

from chains.solana.decoders import AccountDecodeError

TOKEN_ACCOUNT_LEN = 165
_ACCOUNT_TYPE_ACCOUNT = 2
_STATE_NAMES = {0: "uninitialized", 1: "initialized", 2: "frozen"}
ASSOCIATED_TOKEN_PROGRAM = Pubkey.from_string("ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL")


@dataclass(frozen=True, slots=True)
class TokenAccountState:
    """The parts of a token account a balance reader needs."""

    mint: str
    owner: str
    amount: int
    state: str  # "initialized" | "frozen" ("uninitialized" is rejected)


def decode_token_account(data: bytes) -> TokenAccountState:
    """Decode an SPL Token / Token-2022 token account.

    May raise: AccountDecodeError (wrong size, Token-2022 account type not Account, or an
    uninitialized account).
    """
    size = len(data)
    if size < TOKEN_ACCOUNT_LEN:
        raise AccountDecodeError(f"token account is {size} bytes, expected {TOKEN_ACCOUNT_LEN}")
    if size > TOKEN_ACCOUNT_LEN and data[TOKEN_ACCOUNT_LEN] != _ACCOUNT_TYPE_ACCOUNT:
        raise AccountDecodeError(
            f"extended token account has account type {data[TOKEN_ACCOUNT_LEN]}, expected 2"
        )
    state_tag = data[108]
    if state_tag not in (1, 2):
        raise AccountDecodeError(f"token account state {state_tag} is not initialized/frozen")
    (amount,) = struct.unpack_from("<Q", data, 64)
    return TokenAccountState(
        mint=str(Pubkey.from_bytes(data[0:32])),
        owner=str(Pubkey.from_bytes(data[32:64])),
        amount=amount,
        state=_STATE_NAMES[state_tag],
    )


def encode_token_account(mint: Pubkey, owner: Pubkey, amount: int) -> bytes:
    """The 165-byte base layout of an initialized account (for local test chains only)."""
    return (
        bytes(mint)
        + bytes(owner)
        + struct.pack("<Q", amount)
        + bytes(36)  # delegate: None
        + b"\x01"  # Initialized
        + bytes(12)  # is_native: None
        + bytes(8)  # delegated_amount
        + bytes(36)  # close_authority: None
    )


def associated_token_address(wallet: Pubkey, mint: Pubkey, token_program: Pubkey) -> Pubkey:
    """The ATA: PDA of seeds [wallet, token_program, mint] under the ATA program.

    The token program is part of the seeds, so Token-2022 ATAs differ from SPL Token ones.
    """
    address, _bump = Pubkey.find_program_address(
        [bytes(wallet), bytes(token_program), bytes(mint)], ASSOCIATED_TOKEN_PROGRAM
    )
    return address
