"""MarginFi Bank and MarginfiAccount decoding on real mainnet accounts, and MarginFi lines.

Stated values come from marginfi-v2's own tests, which deserialize these exact bytes with the
program's types: programs/marginfi/tests/misc/regression.rs (banks JitoSOL / META / USDT,
accounts 1-3) and tests/03_addBank.spec.ts (BONK bank). An I80F48 stated as a decimal string
`s` matches when the raw bits equal round(Decimal(s) * 2**48). Values no source states (the BONK
bank's weights, the other balances of account 1) are decoded by us and say so.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from solana_real_accounts import (
    exact_bits,
    i80f48_bits,
    real_account,
    real_bytes,
    stated,
    with_bytes,
)
from solders.pubkey import Pubkey

from chains.base import Address, EndpointPolicy
from chains.solana.decoders import AccountDecodeError
from chains.solana.decoders.marginfi import (
    ACCOUNT_LEN,
    BANK_LEN,
    MarginfiAccountState,
    MarginfiBankState,
    decimal_to_i80f48,
    decode_account,
    decode_bank,
    encode_bank,
    i80f48_to_decimal,
)
from chains.solana.lines import RawAccount, build_lines
from chains.solana.plan import Role, build_plan
from chains.solana.spec import MarginfiBank, MarginfiVenue, SolanaChainSpec

JITOSOL, META, USDT = (
    "marginfi_bank_jitosol_Bohoc1ik.json",
    "marginfi_bank_meta_sample2.json",
    "marginfi_bank_usdt_sample3.json",
)
BONK = "marginfi_bank_bonk_DeyH7QxW.json"
ACCOUNTS = (
    "marginfi_account_sample1_EN1WSBJm.json",
    "marginfi_account_sample2.json",
    "marginfi_account_sample3.json",
)
DEFAULT_KEY = str(Pubkey.default())

# Bank offsets in account data, from type-crate field order (bank.rs, bank_config.rs): mint 32,
# mint_decimals 1, group 32, pad 7, 2 share values, liquidity vault 32+2, insurance vault 32+2,
# pad 4, insurance fees 16, fee vault 32+2, pad 6, group fees, 2 share totals, last_update 8.
CONFIG = 8 + 32 + 1 + 32 + 7 + 2 * 16 + 34 + 34 + 4 + 16 + 34 + 6 + 3 * 16 + 8
ASSET_WEIGHT_INIT_AT, LIABILITY_WEIGHT_MAINT_AT = CONFIG, CONFIG + 48


def test_config_offset_adds_up() -> None:
    assert CONFIG == 296


def _weight(value: Callable[[MarginfiBankState], Decimal]) -> Callable[[MarginfiBankState], int]:
    return lambda bank: exact_bits(value(bank))


# stated field → the decoded value, as I80F48 bits for "i80f48" fields
BANK_FIELDS: dict[str, Callable[[MarginfiBankState], Any]] = {
    "mint": lambda b: b.mint,
    "mint_decimals": lambda b: b.mint_decimals,
    "group": lambda b: b.group,
    "asset_share_value": lambda b: b.asset_share_value,
    "liability_share_value": lambda b: b.liability_share_value,
    "collected_insurance_fees_outstanding": lambda b: b.collected_insurance_fees_outstanding,
    "collected_group_fees_outstanding": lambda b: b.collected_group_fees_outstanding,
    "total_liability_shares": lambda b: b.total_liability_shares,
    "total_asset_shares": lambda b: b.total_asset_shares,
    "config.asset_weight_init": _weight(lambda b: b.asset_weight_init),
    "config.asset_weight_maint": _weight(lambda b: b.asset_weight_maint),
    "config.liability_weight_init": _weight(lambda b: b.liability_weight_init),
    "config.liability_weight_maint": _weight(lambda b: b.liability_weight_maint),
    "config.deposit_limit": lambda b: b.deposit_limit,
    "config.borrow_limit": lambda b: b.borrow_limit,
    "config.total_asset_value_init_limit": lambda b: b.total_asset_value_init_limit,
    "config.oracle_max_age": lambda b: b.oracle_max_age,
    "config.operational_state": lambda b: b.operational_state,
    "config.oracle_setup": lambda b: b.oracle_setup,
    "config.risk_tier": lambda b: b.risk_tier,
    "flags": lambda b: b.flags,
    "emissions_rate": lambda b: b.emissions_rate,
    "emissions_remaining": lambda b: b.emissions_remaining,
    **{
        f"config.interest_rate_config.{name}": (lambda b, name=name: getattr(b.interest_rate, name))
        for name in (
            "optimal_utilization_rate",
            "plateau_interest_rate",
            "max_interest_rate",
            "insurance_fee_fixed_apr",
            "insurance_ir_fee",
            "protocol_fixed_fee_apr",
            "protocol_ir_fee",
            "protocol_origination_fee",
        )
    },
}
# tests/03_addBank.spec.ts names (Anchor TS, camelCase) → the Rust names above
TS_NAMES = {
    "mintDecimals": "mint_decimals",
    "emissionsRate": "emissions_rate",
    "emissionsRemaining": "emissions_remaining",
    "config.depositLimit": "config.deposit_limit",
    "config.borrowLimit": "config.borrow_limit",
    "config.totalAssetValueInitLimit": "config.total_asset_value_init_limit",
    "config.oracleMaxAge": "config.oracle_max_age",
    "config.operationalState": "config.operational_state",
    "config.oracleSetup": "config.oracle_setup",
    "config.riskTier": "config.risk_tier",
    "config.interestRateConfig.protocolOriginationFee": (
        "config.interest_rate_config.protocol_origination_fee"
    ),
}
TS_ENUMS = {"operational": "operational", "pythPushOracle": "pyth_push_oracle"}


def _expected(entry: dict[str, Any]) -> Any:
    if entry["kind"] == "i80f48":
        return i80f48_bits(entry["value"])
    if entry["kind"] == "enum":
        return TS_ENUMS.get(entry["value"], entry["value"])
    return entry["value"]


@pytest.mark.parametrize("name", [JITOSOL, META, USDT, BONK])
def test_every_stated_value_of_the_real_banks_is_decoded(name: str) -> None:
    bank = decode_bank(real_bytes(name))
    values = stated(name)

    for field, entry in values.items():
        key = TS_NAMES.get(field, field).removeprefix("bank.")
        assert BANK_FIELDS[key](bank) == _expected(entry), field
    assert len(values) == {BONK: 14}.get(name, 20)  # every one was looked up above


# Decoded, not stated: the BONK bank's weights (03_addBank.spec.ts comments its weight asserts
# out). They are the f32 values 0.65 / 1.3 / 1.2 the bank was configured with, widened exactly.
BONK_WEIGHTS = (
    Decimal("0.5"),
    Decimal("0.64999997615814208984375"),
    Decimal("1.2999999523162841796875"),
    Decimal("1.2000000476837158203125"),
)


def test_bonk_bank_weights_as_decoded() -> None:
    bank = decode_bank(real_bytes(BONK))
    weights = (
        bank.asset_weight_init,
        bank.asset_weight_maint,
        bank.liability_weight_init,
        bank.liability_weight_maint,
    )
    print(f"BONK bank weights (decoded): {weights}")
    assert weights == BONK_WEIGHTS
    # also decoded, not stated: oracle key, asset tag, the bank's last accrual
    assert bank.oracle_keys[0] == "8ihFLu5FimgTQ1Unh4dVyEHUGodJ5gJQCrQf4KUVB9bN"
    assert (bank.asset_tag, bank.last_update) == (0, 1_724_181_535)


# (asset init, asset maint, liability init, liability maint) as exact Decimals; for the three
# regression-test banks these are the stated values' nearest I80F48, for BONK decoded only.
EXACT_WEIGHTS = {
    JITOSOL: (
        Decimal("0.64999997615814208984375"),
        Decimal("0.800000011920928955078125"),
        Decimal("1.300000000000000710542735760100185871124267578125"),
        Decimal("1.199999999999999289457264239899814128875732421875"),
    ),
    META: (Decimal(0), Decimal(0), Decimal("2.5"), Decimal("1.5")),
    USDT: (
        Decimal(1),
        Decimal(1),
        Decimal("1.25"),
        Decimal("1.10000000000000142108547152020037174224853515625"),
    ),
    BONK: BONK_WEIGHTS,
}


@pytest.mark.parametrize("name", list(EXACT_WEIGHTS))
def test_weights_are_exact_decimals_in_marginfis_ranges(name: str) -> None:
    bank = decode_bank(real_bytes(name))
    weights = (
        bank.asset_weight_init,
        bank.asset_weight_maint,
        bank.liability_weight_init,
        bank.liability_weight_maint,
    )
    assert weights == EXACT_WEIGHTS[name]
    assert 0 <= bank.asset_weight_init <= bank.asset_weight_maint <= 1
    assert 1 <= bank.liability_weight_maint <= bank.liability_weight_init
    for weight in weights:
        assert i80f48_to_decimal(decimal_to_i80f48(weight)) == weight  # nothing was rounded


def test_meta_bank_is_isolated_so_its_asset_weights_are_zero() -> None:
    # decoded, not stated: risk tier Isolated, which marginfi only allows with zero asset weights
    bank = decode_bank(real_bytes(META))
    assert bank.risk_tier == "isolated"
    assert (bank.asset_weight_init, bank.asset_weight_maint) == (0, 0)


def _jitosol_with(offset: int, value: Decimal) -> bytes:
    data = real_bytes(JITOSOL)
    return with_bytes(data, offset, decimal_to_i80f48(value).to_bytes(16, "little", signed=True))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            _jitosol_with(ASSET_WEIGHT_INIT_AT, Decimal("1.5")),
            "asset_weight_init 1.5 out of range ([0, 1])",
        ),
        (
            _jitosol_with(ASSET_WEIGHT_INIT_AT, Decimal(-1)),
            "asset_weight_init -1 out of range",
        ),
        (
            _jitosol_with(ASSET_WEIGHT_INIT_AT + 16, Decimal("2.5")),
            "asset_weight_maint 2.5 out of range",
        ),
        (
            _jitosol_with(LIABILITY_WEIGHT_MAINT_AT, Decimal("0.5")),
            "liability_weight_maint 0.5 out of range",
        ),
        (
            _jitosol_with(LIABILITY_WEIGHT_MAINT_AT - 16, Decimal("0.75")),
            "liability_weight_init 0.75 out of range (at least 1)",
        ),
        (real_bytes(JITOSOL)[:-1], "1863 bytes"),
        (with_bytes(real_bytes(JITOSOL), 0, bytes(8)), "discriminator"),
        (with_bytes(real_bytes(JITOSOL), 80, bytes(16)), "share value is not positive"),
    ],
    ids=["awi-1.5", "awi-neg", "awm-2.5", "lwm-0.5", "lwi-0.75", "size", "disc", "share-value"],
)
def test_a_real_bank_with_a_bad_field_is_rejected_naming_it(data: bytes, message: str) -> None:
    # the offsets written to hold the stated weights
    original = real_bytes(JITOSOL)
    for offset, field in (
        (ASSET_WEIGHT_INIT_AT, "asset_weight_init"),
        (LIABILITY_WEIGHT_MAINT_AT, "liability_weight_maint"),
    ):
        raw = int.from_bytes(original[offset : offset + 16], "little", signed=True)
        assert raw == i80f48_bits(stated(JITOSOL)[f"bank.config.{field}"]["value"])

    with pytest.raises(AccountDecodeError, match=re.escape(message)):
        decode_bank(data)


def test_real_share_values_round_deposits_down_and_debts_up() -> None:
    bank = decode_bank(real_bytes(USDT))  # 1.063003765188338 / 1.12089611736063 stated
    one = 1 << 48
    assert bank.asset_amount(3 * one) == 3  # 3.189 rounded down
    assert bank.liability_amount(3 * one) == 4  # 3.363 rounded up
    assert bank.asset_amount(10**6 * one) == 1_063_003  # 1,063,003.77 rounded down
    assert bank.liability_amount(10**6 * one) == 1_120_897  # 1,120,896.12 rounded up
    assert bank.liability_amount(0) == 0


def test_the_local_chain_encoder_writes_what_the_real_layout_decodes() -> None:
    real = decode_bank(real_bytes(JITOSOL))
    encoded = decode_bank(
        encode_bank(
            mint=Pubkey.from_string(real.mint),
            mint_decimals=real.mint_decimals,
            group=Pubkey.from_string(real.group),
            asset_share_value=real.asset_share_value,
            liability_share_value=real.liability_share_value,
            asset_weight_init=real.asset_weight_init,
            asset_weight_maint=real.asset_weight_maint,
            liability_weight_init=real.liability_weight_init,
            liability_weight_maint=real.liability_weight_maint,
        )
    )
    for field in (
        "mint",
        "mint_decimals",
        "group",
        "asset_share_value",
        "liability_share_value",
        "asset_weight_init",
        "asset_weight_maint",
        "liability_weight_init",
        "liability_weight_maint",
        "operational_state",
    ):
        assert getattr(encoded, field) == getattr(real, field), field


def test_the_local_chain_default_bank_weights_are_marginfis_defaults() -> None:
    bank = decode_bank(
        encode_bank(mint=Pubkey.new_unique(), mint_decimals=6, group=Pubkey.new_unique())
    )
    assert (
        bank.asset_weight_init,
        bank.asset_weight_maint,
        bank.liability_weight_init,
        bank.liability_weight_maint,
    ) == (0, 0, 1, 1)


# ------------------------------------------------------------------ MarginfiAccount
# Account offsets, from user_account.rs: balances 16 x 104 @72, padding 64, flags 8, emissions
# destination 32, health_cache 304, migrated_from / _to 32 each, last_update 8, account_index 2,
# third_party_index 2, bump 1, _pad0 3, liquidation_record 32, _padding0 7 x 8.
HEALTH_CACHE = 72 + 16 * 104 + 64 + 8 + 32
PAD0 = HEALTH_CACHE + 304 + 32 + 32 + 8 + 2 + 2 + 1
PADDING0 = PAD0 + 3 + 32
# in a Balance: _pad0 [u8; 6] after the asset tag, _padding [u64; 1] at the end
BALANCE_PADS = {"_pad0": (34, 6), "_padding": (96, 8)}


def test_account_offsets_add_up() -> None:
    assert (HEALTH_CACHE, PAD0, PADDING0, PADDING0 + 56) == (1840, 2221, 2256, ACCOUNT_LEN)


def _balance_field(slot: int, name: str) -> Callable[[MarginfiAccountState], Any]:
    def get(account: MarginfiAccountState) -> Any:
        balance = next(b for b in account.balances if b.slot == slot)
        return getattr(balance, name)

    return get


ACCOUNT_FIELDS: dict[str, Callable[[MarginfiAccountState], Any]] = {
    "group": lambda a: a.group,
    "authority": lambda a: a.authority,
    "account_flags": lambda a: a.flags,
    "migrated_from": lambda a: a.migrated_from,
    "migrated_to": lambda a: a.migrated_to,
    "last_update": lambda a: a.last_update,
    "account_index": lambda a: a.account_index,
    "third_party_index": lambda a: a.third_party_index,
    "bump": lambda a: a.bump,
    "liquidation_record": lambda a: a.liquidation_record,
}
BALANCE_FIELDS = {
    "bank_pk": "bank",
    "bank_asset_tag": "asset_tag",
    "asset_shares": "asset_shares",
    "liability_shares": "liability_shares",
    "emissions_outstanding": "emissions_outstanding",
    "last_update": "last_update",
}
# Rust expressions the regression test compares with, as the decoded value they mean
EXPRESSIONS = {"Pubkey::default()": DEFAULT_KEY, "ASSET_TAG_DEFAULT": 0}
# Padding and the never-written health cache: stated as zero; their bytes are checked instead.
ZERO_RANGES = {
    "health_cache": (HEALTH_CACHE, 304),
    "_pad0": (PAD0, 3),
    "_padding0": (PADDING0, 56),
}


@pytest.mark.parametrize("name", ACCOUNTS)
def test_every_stated_value_of_the_real_accounts_is_decoded(name: str) -> None:
    data = real_bytes(name)
    account = decode_account(data)
    active_slots = {balance.slot for balance in account.balances}
    checked = 0

    for field, entry in stated(name).items():
        path = field.removeprefix("account.")
        expected = EXPRESSIONS.get(entry.get("as_written", ""), _expected(entry))
        if path.startswith("lending_account.balances["):
            slot = int(path.split("[")[1].split("]")[0])
            member = path.split("].")[1]
            base = 72 + 104 * slot
            if member == "is_active()":
                assert (slot in active_slots) is expected, field
            elif slot not in active_slots:
                # an inactive slot is dropped by the decoder; every field of it is stated as
                # zero / the default key, and its 104 bytes are all zero
                assert data[base : base + 104] == bytes(104), field
            elif member in BALANCE_PADS:
                offset, size = BALANCE_PADS[member]
                assert data[base + offset : base + offset + size] == bytes(size), field
            else:
                assert _balance_field(slot, BALANCE_FIELDS[member])(account) == expected, field
        elif path in ZERO_RANGES:
            offset, size = ZERO_RANGES[path]
            assert data[offset : offset + size] == bytes(size), field
        else:
            assert ACCOUNT_FIELDS[path](account) == expected, field
        checked += 1
    assert checked == len(stated(name))


def test_account_1_balances_as_decoded() -> None:
    # Balances 0 and 1 are stated; 2-6 are decoded, not stated.
    account = decode_account(real_bytes(ACCOUNTS[0]))
    assert [
        (b.slot, b.bank, b.asset_shares > 0, b.liability_shares > 0) for b in account.balances
    ] == [
        (0, "2s37akK2eyBbp8DZgCm7RtsaEz8eJP3Nxd4urLHQv7yB", True, False),
        (1, "CCKtUs6Cgwo4aaQUmBPmyoApH2gUDErxNZCAntD6LYGh", False, True),
        (2, "DMoqjmsuoru986HgfjqrKEvPv8YBufvBGADHUonkadC5", True, False),
        (3, "Bohoc1ikHLD7xKJuzTyiTyCwzaL5N7ggJQu75A8mKYM8", True, False),  # the JitoSOL bank
        (4, "E4td8i8PT2BZkMygzW4MGHCv2KPPs57dvz5W2ZXf9Twu", False, True),
        (5, "HmpMfL8942u22htC4EMiWgLX931g3sacXFR6KjuLgKLV", False, True),  # the USDT bank
        (6, "22DcjMZrMwC5Bpa5AGBsmjc5V9VuQrXG6N9ZtdUNyYGE", True, False),
    ]
    assert account.balances[3].asset_shares == 207_690_819_080_820_796_934_079
    assert account.balances[5].liability_shares == 170_571_604_434_464_693_448_106


def test_accounts_2_and_3_decode_one_and_no_active_balance() -> None:
    assert [b.slot for b in decode_account(real_bytes(ACCOUNTS[1])).balances] == [0]
    assert decode_account(real_bytes(ACCOUNTS[2])).balances == ()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (real_bytes(ACCOUNTS[0])[:-2], "2310 bytes"),
        (with_bytes(real_bytes(ACCOUNTS[0]), 0, bytes(8)), "discriminator"),
        (
            with_bytes(real_bytes(ACCOUNTS[0]), 72 + 40, (-1).to_bytes(16, "little", signed=True)),
            "balance 0 has negative shares",
        ),
    ],
    ids=["size", "discriminator", "negative-shares"],
)
def test_a_damaged_real_account_is_rejected(data: bytes, message: str) -> None:
    with pytest.raises(AccountDecodeError, match=message):
        decode_account(data)


# ------------------------------------------------ lines built from the real accounts
PROGRAM = "MFv2hWf31Z9kbCa1snEPYctwafyhdvnV7FZnsebVacA"
GROUP = "4qp6Fx6tnZkY5Wropq9wUYgtFxXKwE6viZxFHg3rdAG8"
JITOSOL_BANK = real_account(JITOSOL)["pubkey"]
USDT_BANK = real_account(USDT)["pubkey"]
ACCOUNT_KEY = real_account(ACCOUNTS[0])["pubkey"]  # a keypair account, found by discovery
WALLET = stated(ACCOUNTS[0])["account.authority"]["value"]


def _spec(jitosol_decimals: int = 9) -> SolanaChainSpec:
    return SolanaChainSpec(
        chain="t",
        genesis_hash="x" * 32,
        endpoints=EndpointPolicy(urls=("http://127.0.0.1:1",)),
        marginfi=MarginfiVenue(
            program_id=PROGRAM,
            group=GROUP,
            banks=(
                MarginfiBank(JITOSOL_BANK, "JitoSOL", jitosol_decimals),
                MarginfiBank(USDT_BANK, "USDT", 6),
            ),
            discover_accounts=False,
        ),
        discover_token_accounts=False,
        native_balances=False,
    )


def _lines(
    jitosol_bank: RawAccount | None, spec: SolanaChainSpec | None = None
) -> tuple[dict[tuple[str, str], int], list[str]]:
    spec = spec or _spec()
    plan = build_plan(spec, [Address(WALLET)])
    plan.add(ACCOUNT_KEY, Role("marginfi", wallet=WALLET))  # as the adapter's discovery does
    accounts = {
        JITOSOL_BANK: jitosol_bank,
        USDT_BANK: RawAccount(PROGRAM, 0, real_bytes(USDT)),
        ACCOUNT_KEY: RawAccount(PROGRAM, 0, real_bytes(ACCOUNTS[0])),
    }
    lines = build_lines(spec, plan, accounts, block_time=0)
    positions = {(p.asset, p.kind): p.amount_raw for p in lines.positions}
    return positions, [f"{issue.subject}: {issue.message}" for issue in lines.issues]


REAL_JITOSOL = RawAccount(PROGRAM, 0, real_bytes(JITOSOL))
UNKNOWN_BANKS = [
    f"{ACCOUNT_KEY}: MarginFi bank {bank} unknown"
    for bank in (
        "2s37akK2eyBbp8DZgCm7RtsaEz8eJP3Nxd4urLHQv7yB",
        "CCKtUs6Cgwo4aaQUmBPmyoApH2gUDErxNZCAntD6LYGh",
        "DMoqjmsuoru986HgfjqrKEvPv8YBufvBGADHUonkadC5",
        "E4td8i8PT2BZkMygzW4MGHCv2KPPs57dvz5W2ZXf9Twu",
        "22DcjMZrMwC5Bpa5AGBsmjc5V9VuQrXG6N9ZtdUNyYGE",
    )
]


def test_real_account_lines_are_token_amounts_of_the_configured_banks() -> None:
    positions, issues = _lines(REAL_JITOSOL)
    assert positions == {
        # 737,866,013.9097 shares x 1.000561264812955 = 738,280,152.14 base units, rounded down
        ("JitoSOL", "deposit"): 738_280_152,
        # 605,992,072.2893 shares x 1.12089611736063 = 679,254,160.98 base units, rounded up
        ("USDT", "borrow"): -679_254_161,
    }
    assert issues == UNKNOWN_BANKS  # the account's other 5 banks are not configured


@pytest.mark.parametrize(
    ("jitosol_bank", "spec", "reason"),
    [
        (RawAccount(PROGRAM, 0, bytes(BANK_LEN)), None, "discriminator mismatch"),
        (REAL_JITOSOL, _spec(jitosol_decimals=6), "has 9 dp, configured 6"),
        (
            RawAccount(PROGRAM, 0, with_bytes(real_bytes(JITOSOL), 41, bytes(Pubkey.new_unique()))),
            None,
            "belongs to group",
        ),
        (None, None, "account not found"),
        (
            RawAccount(PROGRAM, 0, _jitosol_with(ASSET_WEIGHT_INIT_AT, Decimal("1.5"))),
            None,
            "MarginFi Bank asset_weight_init 1.5 out of range ([0, 1])",
        ),
    ],
    ids=["corrupt", "decimals", "other-group", "missing", "weight-out-of-range"],
)
def test_an_unreadable_bank_skips_only_its_balance(
    jitosol_bank: RawAccount | None, spec: SolanaChainSpec | None, reason: str
) -> None:
    positions, issues = _lines(jitosol_bank, spec)

    assert positions == {("USDT", "borrow"): -679_254_161}
    assert issues[0].startswith(f"{JITOSOL_BANK}: MarginFi bank JitoSOL") and reason in issues[0]
    assert sorted(issues[1:]) == sorted(
        [
            *UNKNOWN_BANKS,
            f"{ACCOUNT_KEY}: MarginFi JitoSOL balance of {WALLET} skipped: bank "
            f"{JITOSOL_BANK} could not be read",
        ]
    )
