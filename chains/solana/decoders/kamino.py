"""Kamino Lending (klend) `Obligation` and `Reserve` accounts.

Layout (klend state/obligation.rs, 3336 bytes + 8-byte discriminator = 3344): tag u64 @8,
lending_market @32, owner @64, deposits [ObligationCollateral x 8] (136 bytes) @96,
deposited_value_sf @1192, borrows [ObligationLiquidity x 5] (200 bytes) @1208,
borrow_factor_adjusted_debt_value_sf @2208, borrowed_assets_market_value_sf @2224,
allowed_borrow_value_sf @2240, unhealthy_borrow_value_sf @2256, elevation_group u8 @2285,
has_debt u8 @2287. ObligationCollateral: deposit_reserve +0, deposited_amount u64 +32,
market_value_sf +40. ObligationLiquidity: borrow_reserve +0, cumulative_borrow_rate_bsf +32,
last_borrowed_at_timestamp +80, borrowed_amount_sf +88, market_value_sf +104,
borrow_factor_adjusted_market_value_sf +120. `*_sf` fields are U68F60 fixed point
(value / 2**60). Deposits are in the reserve's collateral-token units (`deposited_amount`);
borrows are liquidity base units scaled by 2**60 (`borrowed_amount_sf`). An empty slot has the
all-zero reserve key. `allowed_borrow_value_sf` / `unhealthy_borrow_value_sf` are the
deposits' market value weighted by each reserve's LTV / liquidation threshold at the last
refresh.

Reserve (klend programs/klend/src/state/reserve.rs `struct Reserve`, `ReserveLiquidity`,
`ReserveCollateral`, `ReserveConfig`; size from utils/consts.rs RESERVE_SIZE = 8616, + 8-byte
discriminator = 8624). Offsets in account data, computed by us from field order (zero-copy
repr(C), every struct explicitly padded, u128 8-aligned on SBF, so no implicit padding; the
field sizes sum to RESERVE_SIZE exactly). Every offset read here is the same in klend 1.7.0
(c02bcf7, 2024-08) through 1.16.0 (edd5ff5, 2026-03): later versions only renamed fields or
carved new ones out of padding.
version u64 @8, last_update @16, lending_market @32, farm_collateral @64, farm_debt @96,
liquidity @128 { mint_pubkey @128, supply_vault @160, fee_vault @192, available_amount u64 @224,
borrowed_amount_sf u128 @232, market_price_sf u128 @248, market_price_last_updated_ts @264,
mint_decimals u64 @272, deposit/borrow_limit_crossed_timestamp @280/@288,
cumulative_borrow_rate_bsf [u64;4]+pad @296, accumulated_protocol_fees_sf u128 @344,
accumulated_referrer_fees_sf u128 @360, pending_referrer_fees_sf u128 @376,
absolute_referral_rate_sf @392, token_program @408, padding to @1360 },
reserve_liquidity_padding [u64;150] @1360, collateral @2560 { mint_pubkey @2560,
mint_total_supply u64 @2592, supply_vault @2600, padding to @3656 },
reserve_collateral_padding [u64;150] @3656, config @4856 { status u8 +0,
loan_to_value_pct u8 +16, liquidation_threshold_pct u8 +17, min/max_liquidation_bonus_bps u16
+18/+20, fees +40 (24 bytes), borrow_rate_curve +64 (11 x 8 bytes), borrow_factor_pct u64 +152,
deposit_limit u64 +160, borrow_limit u64 +168, token_info.name [u8;32] +176 }.

Risk parameters are checked against the ranges klend itself enforces on every config update
(lending_operations.rs `validate_reserve_config_integrity`): loan_to_value_pct < 100,
loan_to_value_pct <= liquidation_threshold_pct <= 100, borrow_factor_pct >= 100. A value outside
them means the bytes are not the layout read here, and is an `AccountDecodeError`.

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
_DEPOSITED_VALUE = 1192
_BF_ADJUSTED_DEBT, _BORROWED_VALUE, _ALLOWED_BORROW, _UNHEALTHY_BORROW = 2208, 2224, 2240, 2256
_ELEVATION_GROUP, _HAS_DEBT = 2285, 2287
_ZERO_KEY = bytes(32)
_SYSTEM_PROGRAM = Pubkey.default()


@dataclass(frozen=True, slots=True)
class KaminoDeposit:
    reserve: str
    deposited_amount: int  # collateral-token base units
    market_value_sf: int  # USD x 2**60 at the obligation's last refresh
    slot: int = 0  # index in the obligation's 8 deposit slots


@dataclass(frozen=True, slots=True)
class KaminoBorrow:
    reserve: str
    borrowed_amount_sf: int  # liquidity base units x 2**60
    market_value_sf: int
    slot: int = 0  # index in the obligation's 5 borrow slots

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
    tag: int = 0
    borrow_factor_adjusted_debt_value_sf: int = 0
    allowed_borrow_value_sf: int = 0  # deposits' value x their reserves' LTV
    unhealthy_borrow_value_sf: int = 0  # deposits' value x their liquidation thresholds
    elevation_group: int = 0
    has_debt: bool = False

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
                slot=index,
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
                slot=index,
            )
        )
    (tag,) = struct.unpack_from("<Q", data, 8)
    return KaminoObligation(
        lending_market=str(Pubkey.from_bytes(data[32:64])),
        owner=str(Pubkey.from_bytes(data[64:96])),
        deposits=tuple(deposits),
        borrows=tuple(borrows),
        deposited_value_sf=_u128(data, _DEPOSITED_VALUE),
        borrowed_assets_market_value_sf=_u128(data, _BORROWED_VALUE),
        tag=tag,
        borrow_factor_adjusted_debt_value_sf=_u128(data, _BF_ADJUSTED_DEBT),
        allowed_borrow_value_sf=_u128(data, _ALLOWED_BORROW),
        unhealthy_borrow_value_sf=_u128(data, _UNHEALTHY_BORROW),
        elevation_group=data[_ELEVATION_GROUP],
        has_debt=data[_HAS_DEBT] != 0,
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
    _pack_u128(buffer, _DEPOSITED_VALUE, sum(value for _r, _a, value in deposits))
    _pack_u128(buffer, _BORROWED_VALUE, sum(value for _r, _a, value in borrows))
    buffer[_HAS_DEBT] = 1 if borrows else 0
    return bytes(buffer)


RESERVE_DISCRIMINATOR = bytes.fromhex("2bf2ccca1af73b7f")  # sha256("account:Reserve")[:8]
RESERVE_LEN = 8624
_LIQUIDITY = 128
_COLLATERAL = 2560
_CONFIG = 4856
_LTV, _LIQUIDATION_THRESHOLD = _CONFIG + 16, _CONFIG + 17
_LIQUIDATION_BONUS = _CONFIG + 18  # min, max u16
_BORROW_FACTOR, _DEPOSIT_LIMIT, _BORROW_LIMIT = _CONFIG + 152, _CONFIG + 160, _CONFIG + 168
_TOKEN_NAME = _CONFIG + 176


@dataclass(frozen=True, slots=True)
class KaminoReserveState:
    """A Reserve's liquidity and collateral supply (to turn collateral tokens into liquidity
    base units) and its risk parameters."""

    lending_market: str
    liquidity_mint: str
    mint_decimals: int  # of the liquidity mint
    available_amount: int  # liquidity base units in the supply vault
    borrowed_amount_sf: int  # liquidity base units x 2**60
    accumulated_protocol_fees_sf: int
    accumulated_referrer_fees_sf: int
    pending_referrer_fees_sf: int
    collateral_mint: str
    collateral_supply: int  # collateral-token base units in circulation
    farm_collateral: str
    farm_debt: str
    status: int  # 0 active, 1 obsolete, 2 hidden
    loan_to_value_pct: int  # max borrow value per deposit value, percent
    liquidation_threshold_pct: int  # borrow value at which a deposit can be liquidated
    min_liquidation_bonus_bps: int
    max_liquidation_bonus_bps: int
    borrow_factor_pct: int  # a debt counts for borrowed value x borrow_factor_pct / 100
    deposit_limit: int  # liquidity base units
    borrow_limit: int
    token_name: str  # config.token_info.name

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


def _key(data: bytes, offset: int) -> str:
    return str(Pubkey.from_bytes(data[offset : offset + 32]))


def decode_reserve(data: bytes) -> KaminoReserveState:
    """Decode a Reserve's liquidity, collateral supply and risk parameters.

    May raise: AccountDecodeError (size, discriminator, fees above the liquidity they come from,
    mint decimals or a risk parameter outside the range klend allows).
    """
    if len(data) != RESERVE_LEN:
        raise AccountDecodeError(f"Kamino Reserve is {len(data)} bytes, expected {RESERVE_LEN}")
    if data[:8] != RESERVE_DISCRIMINATOR:
        raise AccountDecodeError("not a Kamino Reserve account (discriminator mismatch)")
    (available,) = struct.unpack_from("<Q", data, _LIQUIDITY + 96)
    (decimals,) = struct.unpack_from("<Q", data, _LIQUIDITY + 144)
    (supply,) = struct.unpack_from("<Q", data, _COLLATERAL + 32)
    min_bonus, max_bonus = struct.unpack_from("<HH", data, _LIQUIDATION_BONUS)
    borrow_factor, deposit_limit, borrow_limit = struct.unpack_from("<QQQ", data, _BORROW_FACTOR)
    state = KaminoReserveState(
        lending_market=_key(data, 32),
        liquidity_mint=_key(data, _LIQUIDITY),
        mint_decimals=decimals,
        available_amount=available,
        borrowed_amount_sf=_u128(data, _LIQUIDITY + 104),
        accumulated_protocol_fees_sf=_u128(data, _LIQUIDITY + 216),
        accumulated_referrer_fees_sf=_u128(data, _LIQUIDITY + 232),
        pending_referrer_fees_sf=_u128(data, _LIQUIDITY + 248),
        collateral_mint=_key(data, _COLLATERAL),
        collateral_supply=supply,
        farm_collateral=_key(data, 64),
        farm_debt=_key(data, 96),
        status=data[_CONFIG],
        loan_to_value_pct=data[_LTV],
        liquidation_threshold_pct=data[_LIQUIDATION_THRESHOLD],
        min_liquidation_bonus_bps=min_bonus,
        max_liquidation_bonus_bps=max_bonus,
        borrow_factor_pct=borrow_factor,
        deposit_limit=deposit_limit,
        borrow_limit=borrow_limit,
        token_name=data[_TOKEN_NAME : _TOKEN_NAME + 32].rstrip(b"\x00").decode("utf-8", "replace"),
    )
    if state.total_liquidity_sf < 0:
        raise AccountDecodeError("Kamino Reserve fees exceed its liquidity (corrupt reserve)")
    if decimals > 19:
        raise AccountDecodeError(f"Kamino Reserve mint_decimals {decimals} out of range")
    _check_risk_parameters(state)
    return state


def _check_risk_parameters(state: KaminoReserveState) -> None:
    """The ranges klend's `validate_reserve_config_integrity` enforces.

    May raise: AccountDecodeError (naming the field and its value)."""
    ltv, threshold = state.loan_to_value_pct, state.liquidation_threshold_pct
    if threshold > 100:
        raise AccountDecodeError(
            f"Kamino Reserve liquidation_threshold_pct {threshold} out of range (at most 100)"
        )
    if ltv >= 100 or ltv > threshold:
        raise AccountDecodeError(
            f"Kamino Reserve loan_to_value_pct {ltv} out of range "
            f"(below 100 and at most liquidation_threshold_pct {threshold})"
        )
    if state.borrow_factor_pct < 100:
        raise AccountDecodeError(
            f"Kamino Reserve borrow_factor_pct {state.borrow_factor_pct} out of range "
            "(at least 100)"
        )


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
    loan_to_value_pct: int = 0,
    liquidation_threshold_pct: int = 0,
    borrow_factor_pct: int = 100,
    min_liquidation_bonus_bps: int = 0,
    max_liquidation_bonus_bps: int = 0,
    deposit_limit: int = 0,
    borrow_limit: int = 0,
    token_name: str = "",
) -> bytes:
    """A Reserve with the real layout (for local test chains); other fields stay zero except
    version 1 and a cumulative borrow rate of 1.0, as klend's `Reserve::init` leaves them.
    The defaults (LTV 0 %, liquidation threshold 0 %, borrow factor 100 %) are a reserve that
    cannot back a borrow."""
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
    buffer[_LTV] = loan_to_value_pct
    buffer[_LIQUIDATION_THRESHOLD] = liquidation_threshold_pct
    struct.pack_into(
        "<HH", buffer, _LIQUIDATION_BONUS, min_liquidation_bonus_bps, max_liquidation_bonus_bps
    )
    struct.pack_into("<QQQ", buffer, _BORROW_FACTOR, borrow_factor_pct, deposit_limit, borrow_limit)
    buffer[_TOKEN_NAME : _TOKEN_NAME + 32] = token_name.encode()[:32].ljust(32, b"\x00")
    return bytes(buffer)
