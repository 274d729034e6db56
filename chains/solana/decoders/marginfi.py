"""MarginFi v2 `MarginfiAccount` and `Bank` accounts (zero-copy, repr(C), 8-byte discriminator).

MarginfiAccount (mrgnlabs/marginfi-v2 type-crate/src/types/user_account.rs, commit 3031ba3b,
upstream assert_struct_size!(MarginfiAccount, 2304) + discriminator = 2312): group @8,
authority @40, lending_account.balances [Balance x 16] (104 bytes) @72, account_flags u64 @1800.
Balance: active u8 +0, bank_pk +1, bank_asset_tag u8 +33, asset_shares I80F48 +40,
liability_shares I80F48 +56, emissions_outstanding +72, last_update u64 +88.

Bank (type-crate/src/types/bank.rs; upstream assert_struct_size!(Bank, 1856) + discriminator =
1864): mint @8, mint_decimals u8 @40, group @41, 7 bytes padding, asset_share_value I80F48 @80,
liability_share_value I80F48 @96.

Discriminators from type-crate/src/constants.rs `discriminators::{ACCOUNT, BANK}` (equal to
sha256("account:<Name>")[:8]). I80F48 is a signed i128 over 2**48 (wrapped_i80f48.rs).
Token amount = shares x share value (bank.rs `get_asset_amount` / `get_liability_amount`), so a
base-unit amount is shares_bits x value_bits / 2**96: rounded down for deposits and up for
liabilities, so that neither is flattering.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from solders.pubkey import Pubkey

from chains.solana.decoders import AccountDecodeError

ACCOUNT_DISCRIMINATOR = bytes([67, 178, 130, 109, 126, 114, 28, 42])
BANK_DISCRIMINATOR = bytes([142, 49, 166, 242, 50, 66, 97, 188])
ACCOUNT_LEN = 2312
BANK_LEN = 1864
I80F48_ONE = 1 << 48
_BALANCES, _BALANCE_LEN, _BALANCE_SLOTS = 72, 104, 16
_ACCOUNT_FLAGS = 1800


def _i80f48(data: bytes, offset: int) -> int:
    return int.from_bytes(data[offset : offset + 16], "little", signed=True)


@dataclass(frozen=True, slots=True)
class MarginfiBalance:
    bank: str
    asset_shares: int  # I80F48 bits
    liability_shares: int  # I80F48 bits
    asset_tag: int


@dataclass(frozen=True, slots=True)
class MarginfiAccountState:
    group: str
    authority: str
    balances: tuple[MarginfiBalance, ...]  # active balances only
    flags: int


@dataclass(frozen=True, slots=True)
class MarginfiBankState:
    mint: str
    mint_decimals: int
    group: str
    asset_share_value: int  # I80F48 bits: base units per asset share
    liability_share_value: int  # I80F48 bits

    def asset_amount(self, shares: int) -> int:
        """Base units of deposit for `shares` (I80F48 bits), rounded down."""
        return shares * self.asset_share_value >> 96

    def liability_amount(self, shares: int) -> int:
        """Base units of debt for `shares` (I80F48 bits), rounded up."""
        return -(-(shares * self.liability_share_value) >> 96)


def decode_account(data: bytes) -> MarginfiAccountState:
    """Decode a MarginfiAccount; inactive balance slots are dropped.

    May raise: AccountDecodeError (size, discriminator, negative shares).
    """
    if len(data) != ACCOUNT_LEN:
        raise AccountDecodeError(f"MarginfiAccount is {len(data)} bytes, expected {ACCOUNT_LEN}")
    if data[:8] != ACCOUNT_DISCRIMINATOR:
        raise AccountDecodeError("not a MarginfiAccount (discriminator mismatch)")
    balances = []
    for index in range(_BALANCE_SLOTS):
        base = _BALANCES + _BALANCE_LEN * index
        if data[base] == 0:
            continue
        balance = MarginfiBalance(
            bank=str(Pubkey.from_bytes(data[base + 1 : base + 33])),
            asset_shares=_i80f48(data, base + 40),
            liability_shares=_i80f48(data, base + 56),
            asset_tag=data[base + 33],
        )
        if balance.asset_shares < 0 or balance.liability_shares < 0:
            raise AccountDecodeError(f"MarginfiAccount balance {index} has negative shares")
        balances.append(balance)
    (flags,) = struct.unpack_from("<Q", data, _ACCOUNT_FLAGS)
    return MarginfiAccountState(
        group=str(Pubkey.from_bytes(data[8:40])),
        authority=str(Pubkey.from_bytes(data[40:72])),
        balances=tuple(balances),
        flags=flags,
    )


def decode_bank(data: bytes) -> MarginfiBankState:
    """Decode a Bank's mint, group and share values.

    May raise: AccountDecodeError (size, discriminator, non-positive share value).
    """
    if len(data) != BANK_LEN:
        raise AccountDecodeError(f"MarginFi Bank is {len(data)} bytes, expected {BANK_LEN}")
    if data[:8] != BANK_DISCRIMINATOR:
        raise AccountDecodeError("not a MarginFi Bank (discriminator mismatch)")
    bank = MarginfiBankState(
        mint=str(Pubkey.from_bytes(data[8:40])),
        mint_decimals=data[40],
        group=str(Pubkey.from_bytes(data[41:73])),
        asset_share_value=_i80f48(data, 80),
        liability_share_value=_i80f48(data, 96),
    )
    if bank.asset_share_value <= 0 or bank.liability_share_value <= 0:
        raise AccountDecodeError("MarginFi Bank share value is not positive")
    return bank


def account_address(
    program_id: Pubkey, group: Pubkey, authority: Pubkey, index: int = 0, third_party_id: int = 0
) -> Pubkey:
    """The PDA of a MarginfiAccount created with `marginfi_account_initialize_pda`: seeds
    ["marginfi_account", group, authority, index u16 LE, third_party_id u16 LE]. Accounts
    created as keypairs (most older ones) cannot be derived and must be configured."""
    address, _bump = Pubkey.find_program_address(
        [
            b"marginfi_account",
            bytes(group),
            bytes(authority),
            struct.pack("<H", index),
            struct.pack("<H", third_party_id),
        ],
        program_id,
    )
    return address


def _pack_i80f48(buffer: bytearray, offset: int, bits: int) -> None:
    buffer[offset : offset + 16] = bits.to_bytes(16, "little", signed=True)


def encode_account(
    *,
    group: Pubkey,
    authority: Pubkey,
    balances: tuple[tuple[Pubkey, int, int], ...] = (),
) -> bytes:
    """A MarginfiAccount with the real layout (for local test chains). `balances`: (bank,
    asset_shares bits, liability_shares bits), I80F48 bits = shares x 2**48.

    May raise: ValueError (more than 16 balances)."""
    if len(balances) > _BALANCE_SLOTS:
        raise ValueError("a MarginfiAccount holds at most 16 balances")
    buffer = bytearray(ACCOUNT_LEN)
    buffer[:8] = ACCOUNT_DISCRIMINATOR
    buffer[8:40] = bytes(group)
    buffer[40:72] = bytes(authority)
    for index, (bank, asset_shares, liability_shares) in enumerate(balances):
        base = _BALANCES + _BALANCE_LEN * index
        buffer[base] = 1
        buffer[base + 1 : base + 33] = bytes(bank)
        _pack_i80f48(buffer, base + 40, asset_shares)
        _pack_i80f48(buffer, base + 56, liability_shares)
    return bytes(buffer)


def encode_bank(
    *,
    mint: Pubkey,
    mint_decimals: int,
    group: Pubkey,
    asset_share_value: int = I80F48_ONE,
    liability_share_value: int = I80F48_ONE,
) -> bytes:
    """A Bank with the real layout (for local test chains); share values as I80F48 bits."""
    buffer = bytearray(BANK_LEN)
    buffer[:8] = BANK_DISCRIMINATOR
    buffer[8:40] = bytes(mint)
    buffer[40] = mint_decimals
    buffer[41:73] = bytes(group)
    _pack_i80f48(buffer, 80, asset_share_value)
    _pack_i80f48(buffer, 96, liability_share_value)
    return bytes(buffer)
