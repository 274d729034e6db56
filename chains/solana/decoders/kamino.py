"""Kamino Lending (klend) `Obligation` accounts.

Layout (klend state/obligation.rs, 3336 bytes + 8-byte discriminator = 3344): lending_market @32,
owner @64, deposits [ObligationCollateral x 8] (136 bytes) @96, borrows [ObligationLiquidity x 5]
(200 bytes) @1208. `*_sf` fields are U68F60 fixed point (value / 2**60). Deposits are in the
reserve's collateral-token units (`deposited_amount`); borrows are liquidity base units scaled
by 2**60 (`borrowed_amount_sf`). An empty slot has the all-zero reserve key.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from decimal import Decimal

from solders.pubkey import Pubkey

from chains.solana.decoders import AccountDecodeError

OBLIGATION_DISCRIMINATOR = bytes.fromhex("a8ce8d6a584caca7")
OBLIGATION_LEN = 3344
SF_ONE = 1 << 60
_DEPOSITS, _DEPOSIT_LEN, _DEPOSIT_SLOTS = 96, 136, 8
_BORROWS, _BORROW_LEN, _BORROW_SLOTS = 1208, 200, 5
_ZERO_KEY = bytes(32)
_SYSTEM_PROGRAM = Pubkey.default()


@dataclass(frozen=True, slots=True)
class KaminoDeposit:
    reserve: str
    deposited_amount: int  # collateral-token base units
    market_value_sf: int  # USD x 2**60 at the obligation's last refresh


@dataclass(frozen=True, slots=True)
class KaminoBorrow:
    reserve: str
    borrowed_amount_sf: int  # liquidity base units x 2**60
    market_value_sf: int

    @property
    def borrowed_amount_raw(self) -> int:
        """Base units, rounded up so that a debt is never understated."""
        return -(-self.borrowed_amount_sf // SF_ONE)


@dataclass(frozen=True, slots=True)
class KaminoObligation:
    lending_market: str
    owner: str
    deposits: tuple[KaminoDeposit, ...]
    borrows: tuple[KaminoBorrow, ...]
    deposited_value_sf: int
    borrowed_assets_market_value_sf: int

    @property
    def deposited_value_usd(self) -> Decimal:
        return Decimal(self.deposited_value_sf) / SF_ONE


def _u128(data: bytes, offset: int) -> int:
    low, high = struct.unpack_from("<QQ", data, offset)
    return int(low | high << 64)


def decode_obligation(data: bytes) -> KaminoObligation:
    """Decode an Obligation; empty deposit and borrow slots are dropped.

    May raise: AccountDecodeError (size or discriminator).
    """
    if len(data) != OBLIGATION_LEN:
        raise AccountDecodeError(f"Kamino Obligation is {len(data)} bytes, expected 3344")
    if data[:8] != OBLIGATION_DISCRIMINATOR:
        raise AccountDecodeError("not a Kamino Obligation account (discriminator mismatch)")
    deposits = []
    for index in range(_DEPOSIT_SLOTS):
        base = _DEPOSITS + _DEPOSIT_LEN * index
        if data[base : base + 32] == _ZERO_KEY:
            continue
        (amount,) = struct.unpack_from("<Q", data, base + 32)
        deposits.append(
            KaminoDeposit(
                reserve=str(Pubkey.from_bytes(data[base : base + 32])),
                deposited_amount=amount,
                market_value_sf=_u128(data, base + 40),
            )
        )
    borrows = []
    for index in range(_BORROW_SLOTS):
        base = _BORROWS + _BORROW_LEN * index
        if data[base : base + 32] == _ZERO_KEY:
            continue
        borrows.append(
            KaminoBorrow(
                reserve=str(Pubkey.from_bytes(data[base : base + 32])),
                borrowed_amount_sf=_u128(data, base + 88),
                market_value_sf=_u128(data, base + 104),
            )
        )
    return KaminoObligation(
        lending_market=str(Pubkey.from_bytes(data[32:64])),
        owner=str(Pubkey.from_bytes(data[64:96])),
        deposits=tuple(deposits),
        borrows=tuple(borrows),
        deposited_value_sf=_u128(data, 1192),
        borrowed_assets_market_value_sf=_u128(data, 2224),
    )


def obligation_address(
    program_id: Pubkey, owner: Pubkey, lending_market: Pubkey, tag: int = 0, obligation_id: int = 0
) -> Pubkey:
    """The vanilla Obligation PDA: seeds [tag, id, owner, lending_market, seed1, seed2] with
    both seed accounts the default (system program) key, as klend's init_obligation checks for
    tag 0."""
    address, _bump = Pubkey.find_program_address(
        [
            bytes([tag]),
            bytes([obligation_id]),
            bytes(owner),
            bytes(lending_market),
            bytes(_SYSTEM_PROGRAM),
            bytes(_SYSTEM_PROGRAM),
        ],
        program_id,
    )
    return address


def _pack_u128(buffer: bytearray, offset: int, value: int) -> None:
    struct.pack_into("<QQ", buffer, offset, value & ((1 << 64) - 1), value >> 64)


def encode_obligation(
    *,
    lending_market: Pubkey,
    owner: Pubkey,
    deposits: tuple[tuple[Pubkey, int, int], ...] = (),
    borrows: tuple[tuple[Pubkey, int, int], ...] = (),
) -> bytes:
    """An Obligation with the real layout (for local test chains).

    `deposits`: (reserve, deposited_amount, market_value_sf); `borrows`: (reserve,
    borrowed_amount_sf, market_value_sf). May raise: ValueError (too many slots).
    """
    if len(deposits) > _DEPOSIT_SLOTS or len(borrows) > _BORROW_SLOTS:
        raise ValueError("a Kamino obligation holds at most 8 deposits and 5 borrows")
    buffer = bytearray(OBLIGATION_LEN)
    buffer[:8] = OBLIGATION_DISCRIMINATOR
    buffer[32:64] = bytes(lending_market)
    buffer[64:96] = bytes(owner)
    for index, (reserve, amount, value_sf) in enumerate(deposits):
        base = _DEPOSITS + _DEPOSIT_LEN * index
        buffer[base : base + 32] = bytes(reserve)
        struct.pack_into("<Q", buffer, base + 32, amount)
        _pack_u128(buffer, base + 40, value_sf)
    for index, (reserve, amount_sf, value_sf) in enumerate(borrows):
        base = _BORROWS + _BORROW_LEN * index
        buffer[base : base + 32] = bytes(reserve)
        _pack_u128(buffer, base + 88, amount_sf)
        _pack_u128(buffer, base + 104, value_sf)
    _pack_u128(buffer, 1192, sum(value for _r, _a, value in deposits))
    _pack_u128(buffer, 2224, sum(value for _r, _a, value in borrows))
    return bytes(buffer)
