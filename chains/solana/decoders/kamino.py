"""Kamino Lending (klend) `Obligation` and `Reserve` accounts.

Layout (klend state/obligation.rs, 3336 bytes + 8-byte discriminator = 3344): lending_market @32,
owner @64, deposits [ObligationCollateral x 8] (136 bytes) @96, borrows [ObligationLiquidity x 5]
(200 bytes) @1208. `*_sf` fields are U68F60 fixed point (value / 2**60). Deposits are in the
reserve's collateral-token units (`deposited_amount`); borrows are liquidity base units scaled
by 2**60 (`borrowed_amount_sf`). An empty slot has the all-zero reserve key.

Reserve (klend programs/klend/src/state/reserve.rs `struct Reserve`, `ReserveLiquidity`,
`ReserveCollateral` at commit 0055dbeb262c233a80e970a3181716fe6bacdc41; size from
utils/consts.rs RESERVE_SIZE = 8616, + 8-byte discriminator = 8624). Offsets in account data,
computed by us from field order (zero-copy repr(C), every struct explicitly padded, u128 8-aligned
on SBF, so no implicit padding; the field sizes sum to RESERVE_SIZE exactly):
version u64 @8, last_update @16, lending_market @32, farm_collateral @64, farm_debt @96,
liquidity @128 { mint_pubkey @128, supply_vault @160, fee_vault @192, available_amount u64 @224,
borrowed_amount_sf u128 @232, market_price_sf u128 @248, market_price_last_updated_ts @264,
mint_decimals u64 @272, deposit/borrow_limit_crossed_timestamp @280/@288,
cumulative_borrow_rate_bsf [u64;4]+pad @296, accumulated_protocol_fees_sf u128 @344,
accumulated_referrer_fees_sf u128 @360, pending_referrer_fees_sf u128 @376,
absolute_referral_rate_sf @392, token_program @408, padding to @1360 },
reserve_liquidity_padding [u64;150] @1360, collateral @2560 { mint_pubkey @2560,
mint_total_supply u64 @2592, supply_vault @2600 }, then padding and config (not read here).

Collateral → liquidity (reserve.rs `ReserveLiquidity::total_supply`,
`ReserveCollateral::exchange_rate`, `CollateralExchangeRate::collateral_to_liquidity`, with
utils/fraction.rs Fraction = U68F60): total_liquidity = available_amount + borrowed_amount_sf/2^60
- (accumulated_protocol_fees_sf + accumulated_referrer_fees_sf + pending_referrer_fees_sf)/2^60;
liquidity = floor(collateral * total_liquidity / mint_total_supply), and 1:1
(INITIAL_COLLATERAL_RATE) when the supply or total liquidity is zero.
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


RESERVE_DISCRIMINATOR = bytes.fromhex("2bf2ccca1af73b7f")  # sha256("account:Reserve")[:8]
RESERVE_LEN = 8624
_LIQUIDITY = 128
_COLLATERAL = 2560


@dataclass(frozen=True, slots=True)
class KaminoReserveState:
    """The parts of a Reserve needed to turn collateral tokens into liquidity base units."""

    lending_market: str
    liquidity_mint: str
    mint_decimals: int
    available_amount: int  # liquidity base units in the supply vault
    borrowed_amount_sf: int  # liquidity base units x 2**60
    accumulated_protocol_fees_sf: int
    accumulated_referrer_fees_sf: int
    pending_referrer_fees_sf: int
    collateral_mint: str
    collateral_supply: int  # collateral-token base units in circulation

    @property
    def total_liquidity_sf(self) -> int:
        """Liquidity owed to depositors, x 2**60 (klend `ReserveLiquidity::total_supply`)."""
        return (
            (self.available_amount << 60)
            + self.borrowed_amount_sf
            - self.accumulated_protocol_fees_sf
            - self.accumulated_referrer_fees_sf
            - self.pending_referrer_fees_sf
        )

    def collateral_to_liquidity(self, collateral: int) -> int:
        """Liquidity base units redeemable for `collateral` collateral tokens, rounded down as
        klend's `collateral_to_liquidity` does (a deposit is never overstated)."""
        total = self.total_liquidity_sf
        if self.collateral_supply == 0 or total == 0:
            return collateral  # INITIAL_COLLATERAL_RATE: 1 collateral token = 1 base unit
        return collateral * total // (self.collateral_supply << 60)


def decode_reserve(data: bytes) -> KaminoReserveState:
    """Decode a Reserve's liquidity and collateral supply.

    May raise: AccountDecodeError (size, discriminator, fees above the liquidity they come from).
    """
    if len(data) != RESERVE_LEN:
        raise AccountDecodeError(f"Kamino Reserve is {len(data)} bytes, expected {RESERVE_LEN}")
    if data[:8] != RESERVE_DISCRIMINATOR:
        raise AccountDecodeError("not a Kamino Reserve account (discriminator mismatch)")
    (available,) = struct.unpack_from("<Q", data, _LIQUIDITY + 96)
    (decimals,) = struct.unpack_from("<Q", data, _LIQUIDITY + 144)
    (supply,) = struct.unpack_from("<Q", data, _COLLATERAL + 32)
    state = KaminoReserveState(
        lending_market=str(Pubkey.from_bytes(data[32:64])),
        liquidity_mint=str(Pubkey.from_bytes(data[_LIQUIDITY : _LIQUIDITY + 32])),
        mint_decimals=decimals,
        available_amount=available,
        borrowed_amount_sf=_u128(data, _LIQUIDITY + 104),
        accumulated_protocol_fees_sf=_u128(data, _LIQUIDITY + 216),
        accumulated_referrer_fees_sf=_u128(data, _LIQUIDITY + 232),
        pending_referrer_fees_sf=_u128(data, _LIQUIDITY + 248),
        collateral_mint=str(Pubkey.from_bytes(data[_COLLATERAL : _COLLATERAL + 32])),
        collateral_supply=supply,
    )
    if state.total_liquidity_sf < 0:
        raise AccountDecodeError("Kamino Reserve fees exceed its liquidity (corrupt reserve)")
    if decimals > 19:
        raise AccountDecodeError(f"Kamino Reserve mint_decimals {decimals} out of range")
    return state


def encode_reserve(
    *,
    lending_market: Pubkey,
    liquidity_mint: Pubkey,
    mint_decimals: int,
    available_amount: int,
    borrowed_amount_sf: int,
    collateral_mint: Pubkey,
    collateral_supply: int,
    accumulated_protocol_fees_sf: int = 0,
    accumulated_referrer_fees_sf: int = 0,
    pending_referrer_fees_sf: int = 0,
    token_program: Pubkey | None = None,
) -> bytes:
    """A Reserve with the real layout (for local test chains); other fields stay zero except
    version 1 and a cumulative borrow rate of 1.0, as klend's `Reserve::init` leaves them."""
    buffer = bytearray(RESERVE_LEN)
    buffer[:8] = RESERVE_DISCRIMINATOR
    struct.pack_into("<Q", buffer, 8, 1)  # PROGRAM_VERSION
    buffer[32:64] = bytes(lending_market)
    buffer[_LIQUIDITY : _LIQUIDITY + 32] = bytes(liquidity_mint)
    struct.pack_into("<Q", buffer, _LIQUIDITY + 96, available_amount)
    _pack_u128(buffer, _LIQUIDITY + 104, borrowed_amount_sf)
    struct.pack_into("<Q", buffer, _LIQUIDITY + 144, mint_decimals)
    _pack_u128(buffer, _LIQUIDITY + 168, SF_ONE)  # cumulative_borrow_rate_bsf value[0..2]
    _pack_u128(buffer, _LIQUIDITY + 216, accumulated_protocol_fees_sf)
    _pack_u128(buffer, _LIQUIDITY + 232, accumulated_referrer_fees_sf)
    _pack_u128(buffer, _LIQUIDITY + 248, pending_referrer_fees_sf)
    if token_program is not None:
        buffer[_LIQUIDITY + 280 : _LIQUIDITY + 312] = bytes(token_program)
    buffer[_COLLATERAL : _COLLATERAL + 32] = bytes(collateral_mint)
    struct.pack_into("<Q", buffer, _COLLATERAL + 32, collateral_supply)
    return bytes(buffer)
