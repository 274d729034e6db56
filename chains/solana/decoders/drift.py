"""Drift v2 `User`, `SpotMarket` and `PerpMarket` accounts (zero-copy, repr(C), 8-byte Anchor
discriminator).

User (protocol-v2 state/user.rs, 4376 bytes): authority @8, spot_positions [40 bytes x 8] @104,
perp_positions [96 bytes x 8] @424, sub_account_id u16 @4346.

SpotMarket (state/spot_market.rs, 776 bytes; offsets from field order at protocol-v2 commit
0ae3e3b1 (2026-04-01), unchanged since 2c808512 (2025-05-28) but for a rename): pubkey @8,
oracle @40, mint @72, name [u8;32] @136, cumulative_deposit_interest u128 @464,
cumulative_borrow_interest u128 @480, initial_asset_weight u32 @640, maintenance_asset_weight
@644, initial_liability_weight @648, maintenance_liability_weight @652, imf_factor @656,
liquidator_fee @660, if_liquidation_fee @664, optimal_utilization @668, optimal_borrow_rate
@672, max_borrow_rate @676, decimals u32 @680, market_index u16 @684 (Drift's own
MARKET_INDEX_OFFSET).

PerpMarket (state/perp_market.rs, 1216 bytes, same commit, unchanged since ec32d2ca): pubkey @8,
amm.oracle @40, name [u8;32] @1000, imf_factor u32 @1120, unrealized_pnl_imf_factor @1124,
liquidator_fee @1128, if_liquidation_fee @1132, margin_ratio_initial u32 @1136,
margin_ratio_maintenance u32 @1140, market_index u16 @1160 (MARKET_INDEX_OFFSET),
high_leverage_margin_ratio_initial / _maintenance u16 @1174 / @1176.

Weights and margin ratios are in MARGIN_PRECISION (1e4 = 100 %), imf factors and fees in 1e6.
They are checked against the ranges protocol-v2 enforces when a market is configured
(validation/margin.rs `validate_margin_weights`, `validate_margin`; admin.rs imf updates):
spot 0 <= initial_asset_weight <= maintenance_asset_weight <= 1e4, 1e4 <=
maintenance_liability_weight <= initial_liability_weight, imf_factor < 1e6; perp 0 <
margin_ratio_maintenance < margin_ratio_initial <= 1e4, imf_factor <= 1e6, and high-leverage
ratios both 0 or 0 < maintenance < initial (each below its normal ratio). A value outside is an
`AccountDecodeError`.

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
PERP_MARKET_DISCRIMINATOR = bytes.fromhex("0adf0c2c6bf537f7")  # sha256("account:PerpMarket")
USER_LEN = 4376
SPOT_MARKET_LEN = 776
PERP_MARKET_LEN = 1216
MARGIN_PRECISION = 10_000  # weights and margin ratios: 1e4 = 100 %
IMF_PRECISION = 1_000_000  # SPOT_IMF_PRECISION, also used for perp imf factors
_SPOT_WEIGHTS = struct.Struct("<IIIIIIIIIIIH")  # @640: weights .. max_borrow_rate, decimals, index
_PERP_RATIOS = struct.Struct("<IIIIII")  # @1120: imf, upnl imf, fees, margin ratios
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
    oracle: str = str(Pubkey.default())
    name: str = ""
    # MARGIN_PRECISION (1e4): a deposit counts for value x asset weight, a borrow for value x
    # liability weight; "initial" gates new risk, "maintenance" liquidations.
    initial_asset_weight: int = MARGIN_PRECISION
    maintenance_asset_weight: int = MARGIN_PRECISION
    initial_liability_weight: int = MARGIN_PRECISION
    maintenance_liability_weight: int = MARGIN_PRECISION
    imf_factor: int = 0  # IMF_PRECISION (1e6): weight scaling with position size
    liquidator_fee: int = 0  # 1e6
    if_liquidation_fee: int = 0  # 1e6
    optimal_utilization: int = 0  # 1e6
    optimal_borrow_rate: int = 0  # 1e6
    max_borrow_rate: int = 0  # 1e6


@dataclass(frozen=True, slots=True)
class DriftPerpMarketState:
    address: str
    oracle: str
    name: str
    market_index: int
    margin_ratio_initial: int  # MARGIN_PRECISION (1e4): 500 = 5 % = 20x
    margin_ratio_maintenance: int
    imf_factor: int  # IMF_PRECISION (1e6)
    unrealized_pnl_imf_factor: int
    liquidator_fee: int  # 1e6
    if_liquidation_fee: int  # 1e6
    high_leverage_margin_ratio_initial: int  # 1e4; 0 when high-leverage mode is off
    high_leverage_margin_ratio_maintenance: int


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


def _name(raw: bytes) -> str:
    return raw.rstrip(b"\x00 ").decode("utf-8", "replace")


def decode_spot_market(data: bytes) -> DriftSpotMarketState:
    """Decode a Drift SpotMarket: what turns scaled balances into tokens, and its margin weights.

    May raise: AccountDecodeError (size, discriminator, a weight or imf factor outside the range
    Drift allows).
    """
    if len(data) != SPOT_MARKET_LEN:
        raise AccountDecodeError(f"Drift SpotMarket is {len(data)} bytes, expected 776")
    if data[:8] != SPOT_MARKET_DISCRIMINATOR:
        raise AccountDecodeError("not a Drift SpotMarket account (discriminator mismatch)")
    deposit_lo, deposit_hi, borrow_lo, borrow_hi = struct.unpack_from("<QQQQ", data, 464)
    (
        initial_asset,
        maintenance_asset,
        initial_liability,
        maintenance_liability,
        imf_factor,
        liquidator_fee,
        if_liquidation_fee,
        optimal_utilization,
        optimal_borrow_rate,
        max_borrow_rate,
        decimals,
        market_index,
    ) = _SPOT_WEIGHTS.unpack_from(data, 640)
    market = DriftSpotMarketState(
        address=str(Pubkey.from_bytes(data[8:40])),
        mint=str(Pubkey.from_bytes(data[72:104])),
        market_index=market_index,
        decimals=decimals,
        cumulative_deposit_interest=deposit_lo | deposit_hi << 64,
        cumulative_borrow_interest=borrow_lo | borrow_hi << 64,
        oracle=str(Pubkey.from_bytes(data[40:72])),
        name=_name(data[136:168]),
        initial_asset_weight=initial_asset,
        maintenance_asset_weight=maintenance_asset,
        initial_liability_weight=initial_liability,
        maintenance_liability_weight=maintenance_liability,
        imf_factor=imf_factor,
        liquidator_fee=liquidator_fee,
        if_liquidation_fee=if_liquidation_fee,
        optimal_utilization=optimal_utilization,
        optimal_borrow_rate=optimal_borrow_rate,
        max_borrow_rate=max_borrow_rate,
    )
    _check_spot_weights(market)
    return market


def _check_spot_weights(market: DriftSpotMarketState) -> None:
    """May raise: AccountDecodeError (naming the parameter and its value)."""
    where = f"Drift spot market {market.market_index}"
    asset_initial, asset_maintenance = market.initial_asset_weight, market.maintenance_asset_weight
    if not 0 <= asset_initial <= asset_maintenance <= MARGIN_PRECISION:
        raise AccountDecodeError(
            f"{where} asset weights initial {asset_initial} / maintenance {asset_maintenance} "
            "out of range (0 <= initial <= maintenance <= 1e4)"
        )
    liability_initial = market.initial_liability_weight
    liability_maintenance = market.maintenance_liability_weight
    if not MARGIN_PRECISION <= liability_maintenance <= liability_initial:
        raise AccountDecodeError(
            f"{where} liability weights initial {liability_initial} / maintenance "
            f"{liability_maintenance} out of range (1e4 <= maintenance <= initial)"
        )
    if market.imf_factor >= IMF_PRECISION:
        raise AccountDecodeError(f"{where} imf_factor {market.imf_factor} out of range (< 1e6)")


def decode_perp_market(data: bytes) -> DriftPerpMarketState:
    """Decode a Drift PerpMarket's identity and margin parameters.

    May raise: AccountDecodeError (size, discriminator, a margin ratio or imf factor outside the
    range Drift allows).
    """
    if len(data) != PERP_MARKET_LEN:
        raise AccountDecodeError(f"Drift PerpMarket is {len(data)} bytes, expected 1216")
    if data[:8] != PERP_MARKET_DISCRIMINATOR:
        raise AccountDecodeError("not a Drift PerpMarket account (discriminator mismatch)")
    imf, upnl_imf, liquidator_fee, if_fee, initial, maintenance = _PERP_RATIOS.unpack_from(
        data, 1120
    )
    (market_index,) = struct.unpack_from("<H", data, 1160)
    high_initial, high_maintenance = struct.unpack_from("<HH", data, 1174)
    market = DriftPerpMarketState(
        address=str(Pubkey.from_bytes(data[8:40])),
        oracle=str(Pubkey.from_bytes(data[40:72])),
        name=_name(data[1000:1032]),
        market_index=market_index,
        margin_ratio_initial=initial,
        margin_ratio_maintenance=maintenance,
        imf_factor=imf,
        unrealized_pnl_imf_factor=upnl_imf,
        liquidator_fee=liquidator_fee,
        if_liquidation_fee=if_fee,
        high_leverage_margin_ratio_initial=high_initial,
        high_leverage_margin_ratio_maintenance=high_maintenance,
    )
    _check_perp_ratios(market)
    return market


def _check_perp_ratios(market: DriftPerpMarketState) -> None:
    """May raise: AccountDecodeError (naming the parameter and its value)."""
    where = f"Drift perp market {market.market_index}"
    initial, maintenance = market.margin_ratio_initial, market.margin_ratio_maintenance
    if not 0 < maintenance < initial <= MARGIN_PRECISION:
        raise AccountDecodeError(
            f"{where} margin ratios initial {initial} / maintenance {maintenance} out of range "
            "(0 < maintenance < initial <= 1e4)"
        )
    high_initial = market.high_leverage_margin_ratio_initial
    high_maintenance = market.high_leverage_margin_ratio_maintenance
    if (high_initial, high_maintenance) != (0, 0) and not (
        0 < high_maintenance < high_initial < initial and high_maintenance < maintenance
    ):
        raise AccountDecodeError(
            f"{where} high-leverage margin ratios initial {high_initial} / maintenance "
            f"{high_maintenance} out of range (0 < maintenance < initial, each below the "
            "normal ratio)"
        )
    if market.imf_factor > IMF_PRECISION:
        raise AccountDecodeError(f"{where} imf_factor {market.imf_factor} out of range (<= 1e6)")


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
    oracle: Pubkey | None = None,
    name: str = "",
    initial_asset_weight: int = MARGIN_PRECISION,
    maintenance_asset_weight: int = MARGIN_PRECISION,
    initial_liability_weight: int = MARGIN_PRECISION,
    maintenance_liability_weight: int = MARGIN_PRECISION,
    imf_factor: int = 0,
) -> bytes:
    """A SpotMarket account with the real layout (for local test chains). The default weights
    (all 1e4, imf 0) are what Drift requires of its quote market 0."""
    buffer = bytearray(SPOT_MARKET_LEN)
    buffer[:8] = SPOT_MARKET_DISCRIMINATOR
    buffer[8:40] = bytes(address)
    if oracle is not None:
        buffer[40:72] = bytes(oracle)
    buffer[72:104] = bytes(mint)
    buffer[136:168] = name.encode()[:32].ljust(32, b" ")
    mask = (1 << 64) - 1
    struct.pack_into(
        "<QQQQ", buffer, 464,
        cumulative_deposit_interest & mask, cumulative_deposit_interest >> 64,
        cumulative_borrow_interest & mask, cumulative_borrow_interest >> 64,
    )  # fmt: skip
    struct.pack_into(
        "<IIIII", buffer, 640,
        initial_asset_weight, maintenance_asset_weight,
        initial_liability_weight, maintenance_liability_weight, imf_factor,
    )  # fmt: skip
    struct.pack_into("<IH", buffer, 680, decimals, market_index)
    return bytes(buffer)
