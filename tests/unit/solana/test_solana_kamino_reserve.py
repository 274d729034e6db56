"""Kamino Reserve decoding on real mainnet accounts, its risk parameters, and Kamino lines.

kamino_reserve_sol_mainmarket_keel.json: keel-fi/svm-alm-controller states 11 fields (test
reserve_try_from_works). The USDC (D6q6wuQS, marginfi-v2) and 6gTJfuPH (solana-geyser) reserves
state only pubkey / size / owner. No source states a mainnet reserve's loan_to_value_pct,
liquidation_threshold_pct or mint decimals: those values below are decoded by us from the bytes
with klend's layout (see chains/solana/decoders/kamino.py) and asserted as decoded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from solana_real_accounts import real_account, real_bytes, stated, with_bytes
from solders.pubkey import Pubkey

from chains.base import Address, EndpointPolicy, LineIssue
from chains.solana.decoders import AccountDecodeError
from chains.solana.decoders.kamino import (
    RESERVE_LEN,
    KaminoReserveState,
    decode_reserve,
    encode_reserve,
    obligation_address,
)
from chains.solana.lines import RawAccount, build_lines
from chains.solana.plan import build_plan
from chains.solana.spec import KaminoReserve, KaminoVenue, SolanaChainSpec

SOL = "kamino_reserve_sol_mainmarket_keel.json"
USDC = "kamino_reserve_usdc_D6q6wuQS.json"
GEYSER = "kamino_reserve_6gTJfuPH_geyser.json"
OBLIGATION = "kamino_obligation_mainmarket_keel.json"

# Offsets of the config fields in account data, from klend's field order (state/reserve.rs):
# discriminator 8, version 8, last_update 16, lending_market + 2 farms 96, liquidity 1232,
# reserve_liquidity_padding 1200, collateral 1096, reserve_collateral_padding 1200.
CONFIG = 8 + 8 + 16 + 3 * 32 + 1232 + 1200 + 1096 + 1200
# status u8, asset tier u8, host rate u16, deleveraging bonus u16, ctoken flag u8, 6 reserved,
# 3 fee pcts u8: 16 bytes
LTV_AT = CONFIG + 16
THRESHOLD_AT = CONFIG + 17
BORROW_FACTOR_AT = CONFIG + 152  # after bonuses, deleveraging u64 x 2, fees 24, curve 88


def test_config_offsets_add_up() -> None:
    assert CONFIG == 4856
    # fees (3 x 8) + borrow_rate_curve (11 points x 8) sit between +40 and +152
    assert 40 + 24 + 11 * 8 == 152


# stated field → how the decoded reserve gives it
SOL_FIELDS: dict[str, Callable[[KaminoReserveState], Any]] = {
    "lending_market": lambda r: r.lending_market,
    "farm_collateral": lambda r: r.farm_collateral,
    "liquidity.mint_pubkey": lambda r: r.liquidity_mint,
    "farm_debt": lambda r: r.farm_debt,
    "liquidity.available_amount": lambda r: r.available_amount,
    "liquidity.borrowed_amount_sf": lambda r: r.borrowed_amount_sf,
    "liquidity.accumulated_protocol_fees_sf": lambda r: r.accumulated_protocol_fees_sf,
    "liquidity.accumulated_referrer_fees_sf": lambda r: r.accumulated_referrer_fees_sf,
    "liquidity.pending_referrer_fees_sf": lambda r: r.pending_referrer_fees_sf,
    "collateral.mint_pubkey": lambda r: r.collateral_mint,
    "collateral.mint_total_supply": lambda r: r.collateral_supply,
}


def _as_stated(entry: dict[str, Any]) -> Any:
    return int(entry["value"]) if entry["kind"] in ("u64", "u128") else entry["value"]


def test_every_stated_value_of_the_keel_sol_reserve_is_decoded() -> None:
    reserve = decode_reserve(real_bytes(SOL))
    values = stated(SOL)

    assert set(values) == set(SOL_FIELDS)  # none left unchecked
    for field, entry in values.items():
        assert SOL_FIELDS[field](reserve) == _as_stated(entry), field


@pytest.mark.parametrize("name", [USDC, GEYSER])
def test_reserves_stating_only_their_account_wrapper_match_it(name: str) -> None:
    fixture, values = real_account(name), stated(name)
    assert values["pubkey"]["value"] == fixture["pubkey"]
    if "account.space" in values:
        assert values["account.space"]["value"] == RESERVE_LEN
    if "owner" in values:
        assert values["owner"]["value"] == fixture["program_id"]
    decode_reserve(real_bytes(name))  # decodes, every parameter in range


MAIN_MARKET = "7u3HeHxYDLhnCoErrtycNokbQYbWGzLs6JSDqGAv5PfF"
WSOL_MINT = "So11111111111111111111111111111111111111112"
USDC_MINT = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
# Decoded, not stated (no source states them): (lending market, liquidity mint, mint decimals,
# LTV %, liquidation threshold %, borrow factor %, config.token_info.name).
DECODED = {
    SOL: (MAIN_MARKET, WSOL_MINT, 9, 74, 75, 125, "SOL"),
    USDC: (MAIN_MARKET, USDC_MINT, 6, 80, 90, 100, "USDC"),
    # a SOL reserve of another market that does not take SOL as collateral (LTV 0)
    GEYSER: ("H6rHXmXoCQvq8Ue81MqNh7ow5ysPa1dSozwW3PU1dDH6", WSOL_MINT, 9, 0, 0, 100, "SOL"),
}


@pytest.mark.parametrize("name", list(DECODED), ids=["keel-SOL", "USDC-D6q6wuQS", "geyser-6gTJ"])
def test_risk_parameters_as_decoded_from_the_real_reserves(name: str) -> None:
    reserve = decode_reserve(real_bytes(name))
    print(
        f"{name}: LTV {reserve.loan_to_value_pct} %, liquidation threshold "
        f"{reserve.liquidation_threshold_pct} %, borrow factor {reserve.borrow_factor_pct} %, "
        f"{reserve.mint_decimals} dp"
    )

    assert 0 <= reserve.loan_to_value_pct <= reserve.liquidation_threshold_pct <= 100
    assert reserve.borrow_factor_pct >= 100
    assert (
        reserve.lending_market,
        reserve.liquidity_mint,
        reserve.mint_decimals,
        reserve.loan_to_value_pct,
        reserve.liquidation_threshold_pct,
        reserve.borrow_factor_pct,
        reserve.token_name,
    ) == DECODED[name]


def test_other_sol_reserve_config_as_decoded() -> None:
    reserve = decode_reserve(real_bytes(SOL))
    # Decoded, not stated: status 0 (active), liquidation bonus 2.5-10 %, limits in lamports.
    assert reserve.status == 0
    assert (reserve.min_liquidation_bonus_bps, reserve.max_liquidation_bonus_bps) == (250, 1_000)
    assert (reserve.deposit_limit, reserve.borrow_limit) == (10**16, 9 * 10**15)  # 10M / 9M SOL


def test_real_exchange_rates_are_total_liquidity_over_collateral_supply() -> None:
    sol, usdc = decode_reserve(real_bytes(SOL)), decode_reserve(real_bytes(USDC))
    # (available + borrowed - protocol fees) / collateral supply, floored; decoded, not stated:
    # 1 kSOL = 1.090155627… SOL, 1 kUSDC = 1.162232849… USDC (interest accrued since launch).
    assert sol.collateral_to_liquidity(10**9) == 1_090_155_627
    assert usdc.collateral_to_liquidity(10**9) == 1_162_232_849
    total = (sol.available_amount << 60) + sol.borrowed_amount_sf
    total -= sol.accumulated_protocol_fees_sf
    assert sol.total_liquidity_sf == total
    assert sol.collateral_to_liquidity(32_990_512_301) == (
        32_990_512_301 * total // (sol.collateral_supply << 60)
    )
    assert sol.collateral_to_liquidity(0) == 0


def test_the_local_chain_encoder_writes_what_the_real_layout_decodes() -> None:
    real = decode_reserve(real_bytes(SOL))

    encoded = decode_reserve(
        encode_reserve(
            lending_market=Pubkey.from_string(real.lending_market),
            liquidity_mint=Pubkey.from_string(real.liquidity_mint),
            mint_decimals=real.mint_decimals,
            available_amount=real.available_amount,
            borrowed_amount_sf=real.borrowed_amount_sf,
            collateral_mint=Pubkey.from_string(real.collateral_mint),
            collateral_supply=real.collateral_supply,
            accumulated_protocol_fees_sf=real.accumulated_protocol_fees_sf,
            loan_to_value_pct=real.loan_to_value_pct,
            liquidation_threshold_pct=real.liquidation_threshold_pct,
            borrow_factor_pct=real.borrow_factor_pct,
            min_liquidation_bonus_bps=real.min_liquidation_bonus_bps,
            max_liquidation_bonus_bps=real.max_liquidation_bonus_bps,
            deposit_limit=real.deposit_limit,
            borrow_limit=real.borrow_limit,
            token_name=real.token_name,
        )
    )

    # everything but the farms, which the local chain does not create
    default = str(Pubkey.default())
    assert encoded == KaminoReserveState(
        **{
            field: getattr(real, field)
            for field in KaminoReserveState.__slots__
            if field not in ("farm_collateral", "farm_debt")
        },
        farm_collateral=default,
        farm_debt=default,
    )


def test_the_local_chain_default_reserve_is_in_range() -> None:
    reserve = decode_reserve(
        encode_reserve(
            lending_market=Pubkey.new_unique(),
            liquidity_mint=Pubkey.new_unique(),
            mint_decimals=6,
            available_amount=0,
            borrowed_amount_sf=0,
            collateral_mint=Pubkey.new_unique(),
            collateral_supply=0,
        )
    )
    assert (reserve.loan_to_value_pct, reserve.liquidation_threshold_pct) == (0, 0)
    assert reserve.borrow_factor_pct == 100
    assert reserve.collateral_to_liquidity(42) == 42  # empty reserve: 1:1


def _keel_sol_with(offset: int, value: bytes) -> bytes:
    data = real_bytes(SOL)
    return with_bytes(data, offset, value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_keel_sol_with(THRESHOLD_AT, bytes([101])), "liquidation_threshold_pct 101 out of range"),
        (_keel_sol_with(LTV_AT, bytes([76])), "loan_to_value_pct 76 out of range"),
        (_keel_sol_with(LTV_AT, bytes([100, 100])), "loan_to_value_pct 100 out of range"),
        (
            _keel_sol_with(BORROW_FACTOR_AT, (99).to_bytes(8, "little")),
            "borrow_factor_pct 99 out of range",
        ),
        (real_bytes(SOL)[:-100], "8524 bytes"),
        (_keel_sol_with(0, bytes(8)), "discriminator"),
        (
            _keel_sol_with(344, (10**37).to_bytes(16, "little")),  # accumulated_protocol_fees_sf
            "fees exceed",
        ),
    ],
    ids=[
        "threshold-101",
        "ltv-above-threshold",
        "ltv-100",
        "borrow-factor-99",
        "size",
        "disc",
        "fees",
    ],
)
def test_a_real_reserve_with_a_bad_field_is_rejected_naming_it(data: bytes, message: str) -> None:
    original = decode_reserve(real_bytes(SOL))
    assert real_bytes(SOL)[LTV_AT : THRESHOLD_AT + 1] == bytes(
        [original.loan_to_value_pct, original.liquidation_threshold_pct]
    )  # the offsets written to are the decoded fields
    assert int.from_bytes(real_bytes(SOL)[BORROW_FACTOR_AT : BORROW_FACTOR_AT + 8], "little") == (
        original.borrow_factor_pct
    )

    with pytest.raises(AccountDecodeError, match=message):
        decode_reserve(data)


# ------------------------------------------------ lines built from the real accounts
PROGRAM = "KLend2g3cP87fffoy8q1mQqGKjrxjC8boSyAYavgmjD"
MARKET = MAIN_MARKET
SOL_RESERVE = "d4A2prbA2whesmvHaL88BH6Ewn5N4bTSU2Ze8P6Bc4Q"  # the keel obligation's deposit
USDC_RESERVE = "D6q6wuQSrifJKZYpR1M8R4YawnLDtDsMmWM1NbBmgJ59"
OWNER = "4EiYqK5PCfLVyvL3WQRkifkPoVtaRHdTvYTzeLkydtHW"
# The keel obligation's address is not stated; the plan reads the owner's vanilla PDA, so the
# real bytes are served there.
OBLIGATION_KEY = str(
    obligation_address(
        Pubkey.from_string(PROGRAM), Pubkey.from_string(OWNER), Pubkey.from_string(MARKET)
    )
)


def _spec(sol_decimals: int = 9, usdc_decimals: int = 6) -> SolanaChainSpec:
    return SolanaChainSpec(
        chain="t",
        genesis_hash="x" * 32,
        endpoints=EndpointPolicy(urls=("http://127.0.0.1:1",)),
        kamino=KaminoVenue(
            program_id=PROGRAM,
            reserves=(
                KaminoReserve(SOL_RESERVE, "SOL", sol_decimals),
                KaminoReserve(USDC_RESERVE, "USDC", usdc_decimals),
            ),
            lending_markets=(MARKET,),
        ),
        discover_token_accounts=False,
    )


def _kamino(
    sol_reserve: RawAccount | None, spec: SolanaChainSpec | None = None
) -> tuple[dict[tuple[str, str], int], list[LineIssue]]:
    spec = spec or _spec()
    accounts = {
        OWNER: RawAccount("11111111111111111111111111111111", 0, b""),
        SOL_RESERVE: sol_reserve,
        USDC_RESERVE: RawAccount(PROGRAM, 0, real_bytes(USDC)),
        OBLIGATION_KEY: RawAccount(PROGRAM, 0, real_bytes(OBLIGATION)),
    }
    plan = build_plan(spec, [Address(OWNER)])
    lines = build_lines(spec, plan, accounts, block_time=0)
    positions = {(p.asset, p.kind): p.amount_raw for p in lines.positions}
    return positions, lines.issues


REAL_SOL = RawAccount(PROGRAM, 0, real_bytes(SOL))


def test_real_obligation_lines_are_underlying_amounts() -> None:
    positions, issues = _kamino(REAL_SOL)
    assert positions == {
        # 32,990,512,301 collateral tokens x 1.0901556… = 35.96 SOL
        ("SOL", "deposit"): 35_964_792_646,
        ("USDC", "borrow"): -4_018_702_346,  # 4,018.70 USDC, rounded up
    }
    assert issues == []


@pytest.mark.parametrize(
    ("sol_reserve", "reason"),
    [
        (RawAccount(PROGRAM, 0, bytes(RESERVE_LEN)), "discriminator mismatch"),
        (RawAccount("11111111111111111111111111111111", 0, real_bytes(SOL)), "owned by 1111"),
        (None, "account not found"),
        (
            RawAccount(PROGRAM, 0, _keel_sol_with(THRESHOLD_AT, bytes([101]))),
            "Kamino Reserve liquidation_threshold_pct 101 out of range (at most 100)",
        ),
    ],
    ids=["corrupt", "wrong-owner", "missing", "threshold-out-of-range"],
)
def test_an_unreadable_reserve_skips_only_its_deposit_line(
    sol_reserve: RawAccount | None, reason: str
) -> None:
    positions, issues = _kamino(sol_reserve)

    assert positions == {("USDC", "borrow"): -4_018_702_346}
    by_subject = {issue.subject: issue.message for issue in issues}
    assert set(by_subject) == {SOL_RESERVE, OBLIGATION_KEY}
    assert by_subject[SOL_RESERVE].startswith("Kamino reserve SOL")
    assert reason in by_subject[SOL_RESERVE]
    assert by_subject[OBLIGATION_KEY] == (
        f"Kamino SOL deposit of {OWNER} skipped: reserve {SOL_RESERVE} could not be read"
    )


def test_a_reserve_with_other_decimals_skips_its_lines() -> None:
    positions, issues = _kamino(REAL_SOL, _spec(usdc_decimals=9))

    assert positions == {("SOL", "deposit"): 35_964_792_646}
    assert [issue.subject for issue in issues] == [USDC_RESERVE, OBLIGATION_KEY]
    assert "has 6 dp, configured 9" in issues[0].message
    assert "USDC borrow" in issues[1].message
