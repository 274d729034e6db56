"""MarginFi v2 `MarginfiAccount` and `Bank` accounts (zero-copy, repr(C), 8-byte discriminator).

MarginfiAccount (mrgnlabs/marginfi-v2 type-crate/src/types/user_account.rs, commit 3031ba3b,
upstream assert_struct_size!(MarginfiAccount, 2304) + discriminator = 2312): group @8,
authority @40, lending_account.balances [Balance x 16] (104 bytes) @72, account_flags u64 @1800,
emissions_destination_account @1808, health_cache (304 bytes) @1840, migrated_from @2144,
migrated_to @2176, last_update u64 @2208, account_index u16 @2216, third_party_index u16 @2218,
bump u8 @2220, liquidation_record @2224, padding to @2312.
Balance: active u8 +0, bank_pk +1, bank_asset_tag u8 +33, asset_shares I80F48 +40,
liability_shares I80F48 +56, emissions_outstanding I80F48 +72, last_update u64 +88.

Bank (type-crate/src/types/bank.rs, bank_config.rs, interest_rate.rs; upstream
assert_struct_size!(Bank, 1856) + discriminator = 1864, BankConfig 544, InterestRateConfig 240):
mint @8, mint_decimals u8 @40, group @41, 7 bytes padding, asset_share_value I80F48 @80,
liability_share_value I80F48 @96, collected_insurance_fees_outstanding @184,
collected_group_fees_outstanding @240, total_liability_shares @256, total_asset_shares @272,
last_update i64 @288, config @296 { asset_weight_init +0, asset_weight_maint +16,
liability_weight_init +32, liability_weight_maint +48 (all I80F48), deposit_limit u64 +64,
interest_rate_config +72 { optimal_utilization_rate, plateau_interest_rate, max_interest_rate,
insurance_fee_fixed_apr, insurance_ir_fee, protocol_fixed_fee_apr, protocol_ir_fee,
protocol_origination_fee: I80F48 x 8 }, operational_state u8 +312, oracle_setup u8 +313,
oracle_keys [Pubkey; 5] +314, borrow_limit u64 +480, risk_tier u8 +488, asset_tag u8 +489,
config_flags u8 +490, total_asset_value_init_limit u64 +496, oracle_max_age u16 +504 },
flags u64 @840, emissions_rate u64 @848, emissions_remaining I80F48 @856, emissions_mint @872.

Discriminators from type-crate/src/constants.rs `discriminators::{ACCOUNT, BANK}` (equal to
sha256("account:<Name>")[:8]). I80F48 is a signed i128 over 2**48 (wrapped_i80f48.rs); the
weights are returned as exact Decimals (bits / 2**48), other I80F48 values as their raw bits.
Token amount = shares x share value (bank.rs `get_asset_amount` / `get_liability_amount`), so a
base-unit amount is shares_bits x value_bits / 2**96: rounded down for deposits and up for
liabilities, so that neither is flattering.

Weights are checked against the ranges marginfi's `BankConfig::validate` enforces on every
config change (programs/marginfi/src/state/bank_config.rs): 0 <= asset_weight_init <= 1,
asset_weight_init <= asset_weight_maint <= 2, 1 <= liability_weight_maint <=
liability_weight_init. A weight outside them is an `AccountDecodeError`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

from solders.pubkey import Pubkey

from chains.solana.decoders import AccountDecodeError

ACCOUNT_DISCRIMINATOR = bytes([67, 178, 130, 109, 126, 114, 28, 42])
BANK_DISCRIMINATOR = bytes([142, 49, 166, 242, 50, 66, 97, 188])
ACCOUNT_LEN = 2312
BANK_LEN = 1864
I80F48_ONE = 1 << 48
_BALANCES, _BALANCE_LEN, _BALANCE_SLOTS = 72, 104, 16
_ACCOUNT_FLAGS = 1800
_MIGRATED_FROM, _MIGRATED_TO, _ACCOUNT_LAST_UPDATE = 2144, 2176, 2208
_ACCOUNT_INDEX, _LIQUIDATION_RECORD = 2216, 2224
_CONFIG = 296
_WEIGHTS = _CONFIG  # asset init, asset maint, liability init, liability maint
_DEPOSIT_LIMIT = _CONFIG + 64
_INTEREST_RATE = _CONFIG + 72
_OPERATIONAL_STATE, _ORACLE_SETUP, _ORACLE_KEYS = _CONFIG + 312, _CONFIG + 313, _CONFIG + 314
_BORROW_LIMIT, _RISK_TIER = _CONFIG + 480, _CONFIG + 488
_TOTAL_ASSET_VALUE_INIT_LIMIT, _ORACLE_MAX_AGE = _CONFIG + 496, _CONFIG + 504
_BANK_FLAGS = 840  # flags u64, emissions_rate u64, emissions_remaining I80F48

OPERATIONAL_STATES = ("paused", "operational", "reduce_only", "killed_by_bankruptcy")
RISK_TIERS = ("collateral", "isolated")
ORACLE_SETUPS = (
    "none",
    "pyth_legacy",
    "switchboard_v2",
    "pyth_push_oracle",
    "switchboard_pull",
    "staked_with_pyth_push",
    "kamino_pyth_push",
    "kamino_switchboard_pull",
    "fixed",
    "drift_pyth_pull",
    "drift_switchboard_pull",
    "solend_pyth_pull",
    "solend_switchboard_pull",
)


def i80f48_to_decimal(bits: int) -> Decimal:
    """The exact value of I80F48 `bits`: bits / 2**48 = bits x 5**48 / 10**48, written without
    trailing zeros (no Decimal context is involved, so nothing is rounded)."""
    digits, exponent = bits * 5**48, -48
    while exponent < 0 and digits % 10 == 0:
        digits //= 10
        exponent += 1
    return Decimal(f"{digits}E{exponent}")


def decimal_to_i80f48(value: Decimal) -> int:
    """I80F48 bits of `value`, rounded to nearest as fixed's `I80F48::from_str` does."""
    with localcontext() as context:
        context.prec = 100
        return int((value * I80F48_ONE).to_integral_value(ROUND_HALF_EVEN))


def _i80f48(data: bytes, offset: int) -> int:
    return int.from_bytes(data[offset : offset + 16], "little", signed=True)


def _key(data: bytes, offset: int) -> str:
    return str(Pubkey.from_bytes(data[offset : offset + 32]))


def _name(names: tuple[str, ...], value: int) -> str:
    return names[value] if value < len(names) else f"unknown ({value})"


@dataclass(frozen=True, slots=True)
class MarginfiBalance:
    bank: str
    asset_shares: int  # I80F48 bits
    liability_shares: int  # I80F48 bits
    asset_tag: int
    slot: int = 0  # index in the account's 16 balance slots
    emissions_outstanding: int = 0  # I80F48 bits
    last_update: int = 0  # unix seconds


@dataclass(frozen=True, slots=True)
class MarginfiAccountState:
    group: str
    authority: str
    balances: tuple[MarginfiBalance, ...]  # active balances only
    flags: int
    migrated_from: str = str(Pubkey.default())
    migrated_to: str = str(Pubkey.default())
    last_update: int = 0
    account_index: int = 0
    third_party_index: int = 0
    bump: int = 0
    liquidation_record: str = str(Pubkey.default())


@dataclass(frozen=True, slots=True)
class MarginfiInterestRateConfig:
    """The legacy three-point curve and the fees, as I80F48 bits (interest_rate.rs)."""

    optimal_utilization_rate: int
    plateau_interest_rate: int
    max_interest_rate: int
    insurance_fee_fixed_apr: int
    insurance_ir_fee: int
    protocol_fixed_fee_apr: int
    protocol_ir_fee: int
    protocol_origination_fee: int


@dataclass(frozen=True, slots=True)
class MarginfiBankState:
    mint: str
    mint_decimals: int
    group: str
    asset_share_value: int  # I80F48 bits: base units per asset share
    liability_share_value: int  # I80F48 bits
    # Risk weights (config), exact: a deposit counts for value x asset weight, a debt for
    # value x liability weight; "init" gates new borrows, "maint" liquidations.
    asset_weight_init: Decimal
    asset_weight_maint: Decimal
    liability_weight_init: Decimal
    liability_weight_maint: Decimal
    collected_insurance_fees_outstanding: int  # I80F48 bits
    collected_group_fees_outstanding: int  # I80F48 bits
    total_liability_shares: int  # I80F48 bits
    total_asset_shares: int  # I80F48 bits
    last_update: int
    deposit_limit: int  # base units
    borrow_limit: int  # base units
    interest_rate: MarginfiInterestRateConfig
    operational_state: str  # one of OPERATIONAL_STATES
    oracle_setup: str  # one of ORACLE_SETUPS
    oracle_keys: tuple[str, ...]  # the 5 configured keys, default keys included
    risk_tier: str  # "collateral" or "isolated"
    asset_tag: int
    total_asset_value_init_limit: int  # USD
    oracle_max_age: int  # seconds
    flags: int
    emissions_rate: int
    emissions_remaining: int  # I80F48 bits

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
        (balance_update,) = struct.unpack_from("<Q", data, base + 88)
        balance = MarginfiBalance(
            bank=_key(data, base + 1),
            asset_shares=_i80f48(data, base + 40),
            liability_shares=_i80f48(data, base + 56),
            asset_tag=data[base + 33],
            slot=index,
            emissions_outstanding=_i80f48(data, base + 72),
            last_update=balance_update,
        )
        if balance.asset_shares < 0 or balance.liability_shares < 0:
            raise AccountDecodeError(f"MarginfiAccount balance {index} has negative shares")
        balances.append(balance)
    (flags,) = struct.unpack_from("<Q", data, _ACCOUNT_FLAGS)
    (last_update,) = struct.unpack_from("<Q", data, _ACCOUNT_LAST_UPDATE)
    account_index, third_party_index, bump = struct.unpack_from("<HHB", data, _ACCOUNT_INDEX)
    return MarginfiAccountState(
        group=_key(data, 8),
        authority=_key(data, 40),
        balances=tuple(balances),
        flags=flags,
        migrated_from=_key(data, _MIGRATED_FROM),
        migrated_to=_key(data, _MIGRATED_TO),
        last_update=last_update,
        account_index=account_index,
        third_party_index=third_party_index,
        bump=bump,
        liquidation_record=_key(data, _LIQUIDATION_RECORD),
    )


def decode_bank(data: bytes) -> MarginfiBankState:
    """Decode a Bank's mint, group, share values, totals and config (weights, limits, oracle).

    May raise: AccountDecodeError (size, discriminator, non-positive share value, a weight
    outside the range marginfi allows).
    """
    if len(data) != BANK_LEN:
        raise AccountDecodeError(f"MarginFi Bank is {len(data)} bytes, expected {BANK_LEN}")
    if data[:8] != BANK_DISCRIMINATOR:
        raise AccountDecodeError("not a MarginFi Bank (discriminator mismatch)")
    weights = [i80f48_to_decimal(_i80f48(data, _WEIGHTS + 16 * index)) for index in range(4)]
    (last_update,) = struct.unpack_from("<q", data, 288)
    (deposit_limit,) = struct.unpack_from("<Q", data, _DEPOSIT_LIMIT)
    (borrow_limit,) = struct.unpack_from("<Q", data, _BORROW_LIMIT)
    (value_limit,) = struct.unpack_from("<Q", data, _TOTAL_ASSET_VALUE_INIT_LIMIT)
    (oracle_max_age,) = struct.unpack_from("<H", data, _ORACLE_MAX_AGE)
    flags, emissions_rate = struct.unpack_from("<QQ", data, _BANK_FLAGS)
    bank = MarginfiBankState(
        mint=_key(data, 8),
        mint_decimals=data[40],
        group=_key(data, 41),
        asset_share_value=_i80f48(data, 80),
        liability_share_value=_i80f48(data, 96),
        asset_weight_init=weights[0],
        asset_weight_maint=weights[1],
        liability_weight_init=weights[2],
        liability_weight_maint=weights[3],
        collected_insurance_fees_outstanding=_i80f48(data, 184),
        collected_group_fees_outstanding=_i80f48(data, 240),
        total_liability_shares=_i80f48(data, 256),
        total_asset_shares=_i80f48(data, 272),
        last_update=last_update,
        deposit_limit=deposit_limit,
        borrow_limit=borrow_limit,
        interest_rate=MarginfiInterestRateConfig(
            *(_i80f48(data, _INTEREST_RATE + 16 * index) for index in range(8))
        ),
        operational_state=_name(OPERATIONAL_STATES, data[_OPERATIONAL_STATE]),
        oracle_setup=_name(ORACLE_SETUPS, data[_ORACLE_SETUP]),
        oracle_keys=tuple(_key(data, _ORACLE_KEYS + 32 * index) for index in range(5)),
        risk_tier=_name(RISK_TIERS, data[_RISK_TIER]),
        asset_tag=data[_RISK_TIER + 1],
        total_asset_value_init_limit=value_limit,
        oracle_max_age=oracle_max_age,
        flags=flags,
        emissions_rate=emissions_rate,
        emissions_remaining=_i80f48(data, _BANK_FLAGS + 16),
    )
    if bank.asset_share_value <= 0 or bank.liability_share_value <= 0:
        raise AccountDecodeError("MarginFi Bank share value is not positive")
    _check_weights(bank)
    return bank


def _check_weights(bank: MarginfiBankState) -> None:
    """The ranges marginfi's `BankConfig::validate` enforces.

    May raise: AccountDecodeError (naming the weight and its value)."""
    one = Decimal(1)
    checks = (
        ("asset_weight_init", bank.asset_weight_init, 0 <= bank.asset_weight_init <= one, "[0, 1]"),
        (
            "asset_weight_maint",
            bank.asset_weight_maint,
            bank.asset_weight_init <= bank.asset_weight_maint <= 2 * one,
            f"[asset_weight_init {bank.asset_weight_init}, 2]",
        ),
        (
            "liability_weight_init",
            bank.liability_weight_init,
            bank.liability_weight_init >= one,
            "at least 1",
        ),
        (
            "liability_weight_maint",
            bank.liability_weight_maint,
            one <= bank.liability_weight_maint <= bank.liability_weight_init,
            f"[1, liability_weight_init {bank.liability_weight_init}]",
        ),
    )
    for name, value, valid, allowed in checks:
        if not valid:
            raise AccountDecodeError(f"MarginFi Bank {name} {value} out of range ({allowed})")


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
    asset_weight_init: Decimal = Decimal(0),
    asset_weight_maint: Decimal = Decimal(0),
    liability_weight_init: Decimal = Decimal(1),
    liability_weight_maint: Decimal = Decimal(1),
    operational_state: str = "operational",
    oracle_max_age: int = 60,
) -> bytes:
    """A Bank with the real layout (for local test chains); share values as I80F48 bits,
    weights as Decimals (stored rounded to the nearest I80F48). The default weights are
    marginfi's `BankConfig::default()`: assets count for nothing, debts at face value.

    May raise: ValueError (unknown operational state)."""
    buffer = bytearray(BANK_LEN)
    buffer[:8] = BANK_DISCRIMINATOR
    buffer[8:40] = bytes(mint)
    buffer[40] = mint_decimals
    buffer[41:73] = bytes(group)
    _pack_i80f48(buffer, 80, asset_share_value)
    _pack_i80f48(buffer, 96, liability_share_value)
    weights = (asset_weight_init, asset_weight_maint, liability_weight_init, liability_weight_maint)
    for index, weight in enumerate(weights):
        _pack_i80f48(buffer, _WEIGHTS + 16 * index, decimal_to_i80f48(weight))
    buffer[_OPERATIONAL_STATE] = OPERATIONAL_STATES.index(operational_state)
    struct.pack_into("<H", buffer, _ORACLE_MAX_AGE, oracle_max_age)
    return bytes(buffer)
