"""Drift v2 `User` and `SpotMarket` accounts (zero-copy, repr(C), 8-byte Anchor discriminator).

User (protocol-v2 state/user.rs, 4376 bytes): authority @8, spot_positions [40 bytes x 8] @104,
perp_positions [96 bytes x 8] @424, sub_account_id u16 @4346. SpotMarket (state/spot_market.rs,
776 bytes): mint @72, cumulative_deposit_interest u128 @464, cumulative_borrow_interest u128 @480,
decimals u32 @680, market_index u16 @684 (Drift's own MARKET_INDEX_OFFSET).

Spot balances are scaled: token amount = scaled_balance * cumulative_interest / 10**(19 - decimals)
(SPOT_BALANCE_PRECISION 1e9 x SPOT_CUMULATIVE_INTEREST_PRECISION 1e10), rounded up for borrows
as Drift does, so a borrow is never understated.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Literal

from solders.pubkey import Pubkey

from chains.solana.decoders import AccountDecodeError

USER_DISCRIMINATOR = bytes.fromhex("9f755fe3ef973aec")
SPOT_MARKET_DISCRIMINATOR = bytes([100, 177, 8, 107, 168, 65, 65, 39])
USER_LEN = 4376
SPOT_MARKET_LEN = 776
BASE_PRECISION_DECIMALS = 9  # perp base amounts
QUOTE_PRECISION_DECIMALS = 6  # perp quote amounts
_SPOT = struct.Struct("<QqqqHBB4x")
_PERP = struct.Struct("<qqqqqqqqQQq2xHHBB")
_SPOT_OFFSET, _PERP_OFFSET = 104, 424


@dataclass(frozen=True, slots=True)
class DriftSpotPosition:
    market_index: int
    scaled_balance: int
    balance_type: Literal["deposit", "borrow"]
    open_orders: int
    cumulative_deposits: int


@dataclass(frozen=True, slots=True)
class DriftPerpPosition:
    market_index: int
    base_asset_amount: int  # BASE_PRECISION (1e9), signed
    quote_asset_amount: int  # QUOTE_PRECISION (1e6), signed
    quote_entry_amount: int
    quote_break_even_amount: int
    settled_pnl: int
    open_orders: int
    lp_shares: int


@dataclass(frozen=True, slots=True)
class DriftUser:
    authority: str
    delegate: str
    name: str
    sub_account_id: int
    spot_positions: tuple[DriftSpotPosition, ...]  # non-empty slots only
    perp_positions: tuple[DriftPerpPosition, ...]  # non-empty slots only
    open_orders: int


@dataclass(frozen=True, slots=True)
class DriftSpotMarketState:
    address: str
    mint: str
    market_index: int
    decimals: int
    cumulative_deposit_interest: int
    cumulative_borrow_interest: int


def decode_user(data: bytes) -> DriftUser:
    """Decode a Drift User account; empty position slots are dropped.

    A spot slot is empty when its scaled balance and open orders are 0; a perp slot when base,
    quote, open orders and LP shares are all 0 (Drift's own `is_available`).
    May raise: AccountDecodeError (size or discriminator).
    """
    if len(data) != USER_LEN:
        raise AccountDecodeError(f"Drift User is {len(data)} bytes, expected {USER_LEN}")
    if data[:8] != USER_DISCRIMINATOR:
        raise AccountDecodeError("not a Drift User account (discriminator mismatch)")
    spots = []
    for index in range(8):
        balance, _bids, _asks, cum_dep, market, kind, orders = _SPOT.unpack_from(
            data, _SPOT_OFFSET + 40 * index
        )
        if balance == 0 and orders == 0:
            continue
        spots.append(
            DriftSpotPosition(
                market_index=market,
                scaled_balance=balance,
                balance_type="borrow" if kind == 1 else "deposit",
                open_orders=orders,
                cumulative_deposits=cum_dep,
            )
        )
    perps = []
    for index in range(8):
        (
            _funding,
            base,
            quote,
            break_even,
            entry,
            _bids,
            _asks,
            settled,
            lp_shares,
            _isolated,
            _per_lp,
            _max_margin,
            market,
            orders,
            _flag,
        ) = _PERP.unpack_from(data, _PERP_OFFSET + 96 * index)
        if base == 0 and quote == 0 and orders == 0 and lp_shares == 0:
            continue
        perps.append(
            DriftPerpPosition(
                market_index=market,
                base_asset_amount=base,
                quote_asset_amount=quote,
                quote_entry_amount=entry,
                quote_break_even_amount=break_even,
                settled_pnl=settled,
                open_orders=orders,
                lp_shares=lp_shares,
            )
        )
    (sub_account_id,) = struct.unpack_from("<H", data, 4346)
    return DriftUser(
        authority=str(Pubkey.from_bytes(data[8:40])),
        delegate=str(Pubkey.from_bytes(data[40:72])),
        name=data[72:104].rstrip(b"\x00 ").decode("utf-8", "replace"),
        sub_account_id=sub_account_id,
        spot_positions=tuple(spots),
        perp_positions=tuple(perps),
        open_orders=data[4351],
    )


def decode_spot_market(data: bytes) -> DriftSpotMarketState:
    """Decode the parts of a Drift SpotMarket needed to turn scaled balances into tokens.

    May raise: AccountDecodeError (size or discriminator).
    """
    if len(data) != SPOT_MARKET_LEN:
        raise AccountDecodeError(f"Drift SpotMarket is {len(data)} bytes, expected 776")
    if data[:8] != SPOT_MARKET_DISCRIMINATOR:
        raise AccountDecodeError("not a Drift SpotMarket account (discriminator mismatch)")
    deposit_lo, deposit_hi, borrow_lo, borrow_hi = struct.unpack_from("<QQQQ", data, 464)
    decimals, market_index = struct.unpack_from("<IH", data, 680)
    return DriftSpotMarketState(
        address=str(Pubkey.from_bytes(data[8:40])),
        mint=str(Pubkey.from_bytes(data[72:104])),
        market_index=market_index,
        decimals=decimals,
        cumulative_deposit_interest=deposit_lo | deposit_hi << 64,
        cumulative_borrow_interest=borrow_lo | borrow_hi << 64,
    )


def spot_token_amount(position: DriftSpotPosition, market: DriftSpotMarketState) -> int:
    """The position's token amount in the mint's base units (unsigned; borrows rounded up).

    May raise: AccountDecodeError (the market's decimals exceed 19).
    """
    if market.decimals > 19:
        raise AccountDecodeError(f"spot market {market.market_index} has {market.decimals} dp")
    precision_decrease = 10 ** (19 - market.decimals)
    if position.balance_type == "deposit":
        return int(
            position.scaled_balance * market.cumulative_deposit_interest // precision_decrease
        )
    numerator = position.scaled_balance * market.cumulative_borrow_interest
    return int(-(-numerator // precision_decrease))


def user_address(program_id: Pubkey, authority: Pubkey, sub_account_id: int = 0) -> Pubkey:
    """The User PDA: seeds ["user", authority, sub_account_id u16 LE]."""
    address, _bump = Pubkey.find_program_address(
        [b"user", bytes(authority), struct.pack("<H", sub_account_id)], program_id
    )
    return address


def spot_market_address(program_id: Pubkey, market_index: int) -> Pubkey:
    """The SpotMarket PDA: seeds ["spot_market", market_index u16 LE]."""
    address, _bump = Pubkey.find_program_address(
        [b"spot_market", struct.pack("<H", market_index)], program_id
    )
    return address


def encode_user(
    *,
    authority: Pubkey,
    sub_account_id: int,
    spot: tuple[tuple[int, int, Literal["deposit", "borrow"]], ...] = (),
    perp: tuple[tuple[int, int, int, int], ...] = (),
    name: str = "Main Account",
) -> bytes:
    """A User account with the real layout (for local test chains).

    `spot`: (market_index, scaled_balance, kind); `perp`: (market_index, base, quote,
    quote_entry). May raise: ValueError (more than 8 positions of one kind).
    """
    if len(spot) > 8 or len(perp) > 8:
        raise ValueError("a Drift user holds at most 8 spot and 8 perp positions")
    buffer = bytearray(USER_LEN)
    buffer[:8] = USER_DISCRIMINATOR
    buffer[8:40] = bytes(authority)
    buffer[72:104] = name.encode()[:32].ljust(32, b" ")
    for index, (market, balance, kind) in enumerate(spot):
        _SPOT.pack_into(
            buffer, _SPOT_OFFSET + 40 * index, balance, 0, 0, 0, market, kind == "borrow", 0
        )
    for index, (market, base, quote, entry) in enumerate(perp):
        _PERP.pack_into(
            buffer, _PERP_OFFSET + 96 * index,
            0, base, quote, entry, entry, 0, 0, 0, 0, 0, 0, 0, market, 0, 0,
        )  # fmt: skip
    struct.pack_into("<H", buffer, 4346, sub_account_id)
    return bytes(buffer)


def encode_spot_market(
    *,
    address: Pubkey,
    mint: Pubkey,
    market_index: int,
    decimals: int,
    cumulative_deposit_interest: int,
    cumulative_borrow_interest: int,
) -> bytes:
    """A SpotMarket account with the real layout (for local test chains)."""
    buffer = bytearray(SPOT_MARKET_LEN)
    buffer[:8] = SPOT_MARKET_DISCRIMINATOR
    buffer[8:40] = bytes(address)
    buffer[72:104] = bytes(mint)
    mask = (1 << 64) - 1
    struct.pack_into(
        "<QQQQ", buffer, 464,
        cumulative_deposit_interest & mask, cumulative_deposit_interest >> 64,
        cumulative_borrow_interest & mask, cumulative_borrow_interest >> 64,
    )  # fmt: skip
    struct.pack_into("<IH", buffer, 680, decimals, market_index)
    return bytes(buffer)
