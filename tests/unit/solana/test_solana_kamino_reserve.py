"""Kamino Reserve layout and the collateral → liquidity exchange rate.

No real Reserve dump exists in the fixtures (klend and klend-sdk ship none), so the layout is
checked two ways: the field sizes of klend programs/klend/src/state/reserve.rs (commit
0055dbeb262c233a80e970a3181716fe6bacdc41) must sum to utils/consts.rs RESERVE_SIZE = 8616 and
give the offsets the decoder reads; and the decoder is fed bytes written at those offsets by
hand (not through `encode_reserve`). Exchange-rate figures are computed by hand in the comments.
"""

from __future__ import annotations

import struct

import pytest
from solders.pubkey import Pubkey

from chains.base import Address, EndpointPolicy, LineIssue
from chains.solana.decoders import AccountDecodeError
from chains.solana.decoders.kamino import (
    RESERVE_DISCRIMINATOR,
    RESERVE_LEN,
    SF_ONE,
    decode_reserve,
    encode_obligation,
    encode_reserve,
    obligation_address,
)
from chains.solana.lines import RawAccount, build_lines
from chains.solana.plan import build_plan
from chains.solana.spec import KaminoReserve, KaminoVenue, SolanaChainSpec

# (field, size in bytes) in declaration order, from reserve.rs; u128 is 8-aligned on SBF and
# every struct is explicitly padded, so offsets are running sums.
RESERVE_FIELDS = [
    ("discriminator", 8),
    ("version", 8),
    ("last_update", 16),
    ("lending_market", 32),
    ("farm_collateral", 32),
    ("farm_debt", 32),
    ("liquidity.mint_pubkey", 32),
    ("liquidity.supply_vault", 32),
    ("liquidity.fee_vault", 32),
    ("liquidity.available_amount", 8),
    ("liquidity.borrowed_amount_sf", 16),
    ("liquidity.market_price_sf", 16),
    ("liquidity.market_price_last_updated_ts", 8),
    ("liquidity.mint_decimals", 8),
    ("liquidity.deposit_limit_crossed_timestamp", 8),
    ("liquidity.borrow_limit_crossed_timestamp", 8),
    ("liquidity.cumulative_borrow_rate_bsf", 48),
    ("liquidity.accumulated_protocol_fees_sf", 16),
    ("liquidity.accumulated_referrer_fees_sf", 16),
    ("liquidity.pending_referrer_fees_sf", 16),
    ("liquidity.absolute_referral_rate_sf", 16),
    ("liquidity.token_program", 32),
    ("liquidity.padding2", 51 * 8),
    ("liquidity.padding3", 32 * 16),
    ("reserve_liquidity_padding", 150 * 8),
    ("collateral.mint_pubkey", 32),
    ("collateral.mint_total_supply", 8),
    ("collateral.supply_vault", 32),
    ("collateral.padding1", 32 * 16),
    ("collateral.padding2", 32 * 16),
    ("reserve_collateral_padding", 150 * 8),
    ("config + config_padding", 912 + 117 * 8),  # RESERVE_CONFIG_SIZE and its padding
    ("borrowed_amount_outside_elevation_group", 8),
    ("borrowed_amounts_against_this_reserve_in_elevation_groups", 32 * 8),
    ("padding", 207 * 8),
]


def offsets() -> dict[str, int]:
    table, at = {}, 0
    for name, size in RESERVE_FIELDS:
        table[name] = at
        at += size
    table["end"] = at
    return table


def test_field_sizes_sum_to_reserve_size_and_give_the_decoded_offsets() -> None:
    table = offsets()
    assert table["end"] == RESERVE_LEN == 8 + 8616
    assert table["lending_market"] == 32
    assert table["liquidity.mint_pubkey"] == 128
    assert table["liquidity.available_amount"] == 224
    assert table["liquidity.borrowed_amount_sf"] == 232
    assert table["liquidity.mint_decimals"] == 272
    assert table["liquidity.accumulated_protocol_fees_sf"] == 344
    assert table["liquidity.accumulated_referrer_fees_sf"] == 360
    assert table["liquidity.pending_referrer_fees_sf"] == 376
    assert table["collateral.mint_pubkey"] == 2560
    assert table["collateral.mint_total_supply"] == 2592


def test_discriminator_is_the_anchor_hash_of_reserve() -> None:
    import hashlib

    assert RESERVE_DISCRIMINATOR == hashlib.sha256(b"account:Reserve").digest()[:8]


def _u128(value: int) -> bytes:
    return value.to_bytes(16, "little")


def hand_written_reserve(
    *,
    available: int,
    borrowed_sf: int,
    protocol_sf: int,
    referrer_sf: int,
    pending_sf: int,
    supply: int,
    decimals: int = 6,
    market: Pubkey | None = None,
) -> bytes:
    table = offsets()
    data = bytearray(RESERVE_LEN)
    data[:8] = RESERVE_DISCRIMINATOR
    data[32:64] = bytes(market or Pubkey.new_unique())
    at = table["liquidity.available_amount"]
    data[at : at + 8] = struct.pack("<Q", available)
    at = table["liquidity.borrowed_amount_sf"]
    data[at : at + 16] = _u128(borrowed_sf)
    at = table["liquidity.mint_decimals"]
    data[at : at + 8] = struct.pack("<Q", decimals)
    for name, value in (
        ("liquidity.accumulated_protocol_fees_sf", protocol_sf),
        ("liquidity.accumulated_referrer_fees_sf", referrer_sf),
        ("liquidity.pending_referrer_fees_sf", pending_sf),
    ):
        at = table[name]
        data[at : at + 16] = _u128(value)
    at = table["collateral.mint_total_supply"]
    data[at : at + 8] = struct.pack("<Q", supply)
    return bytes(data)


def test_exchange_rate_is_total_liquidity_over_collateral_supply() -> None:
    # total = 7,000 + 3,500.5 - 0.25 (protocol) - 0.125 (referrer) - 0.125 (pending) = 10,500
    # for 10,000 collateral tokens: 1.05 liquidity units each.
    reserve = decode_reserve(
        hand_written_reserve(
            available=7_000,
            borrowed_sf=3_500 * SF_ONE + SF_ONE // 2,
            protocol_sf=SF_ONE // 4,
            referrer_sf=SF_ONE // 8,
            pending_sf=SF_ONE // 8,
            supply=10_000,
        )
    )

    assert reserve.mint_decimals == 6
    assert reserve.total_liquidity_sf == 10_500 * SF_ONE
    assert reserve.collateral_to_liquidity(10_000) == 10_500
    assert reserve.collateral_to_liquidity(1_234) == 1_295  # 1,295.7 rounded down
    assert reserve.collateral_to_liquidity(0) == 0


def test_fractional_total_liquidity_is_kept_exact_until_the_final_floor() -> None:
    # total = 7,000 + 3,500 - 0.125 = 10,499.875; 8,000 x 10,499.875 / 10,000 = 8,399.9 -> 8,399
    reserve = decode_reserve(
        hand_written_reserve(
            available=7_000,
            borrowed_sf=3_500 * SF_ONE,
            protocol_sf=0,
            referrer_sf=0,
            pending_sf=SF_ONE // 8,
            supply=10_000,
        )
    )
    assert reserve.collateral_to_liquidity(8_000) == 8_399
    assert reserve.collateral_to_liquidity(10_000) == 10_499


def test_an_empty_reserve_exchanges_one_to_one() -> None:
    reserve = decode_reserve(
        hand_written_reserve(
            available=0, borrowed_sf=0, protocol_sf=0, referrer_sf=0, pending_sf=0, supply=0
        )
    )
    assert reserve.collateral_to_liquidity(42) == 42


def test_encoded_reserve_decodes_to_what_was_written() -> None:
    market, mint, collateral = Pubkey.new_unique(), Pubkey.new_unique(), Pubkey.new_unique()
    data = encode_reserve(
        lending_market=market,
        liquidity_mint=mint,
        mint_decimals=9,
        available_amount=1_000 * 10**9,
        borrowed_amount_sf=(260 * 10**9) << 60,
        accumulated_protocol_fees_sf=(10 * 10**9) << 60,
        collateral_mint=collateral,
        collateral_supply=1_000 * 10**9,
    )
    reserve = decode_reserve(data)
    assert (reserve.lending_market, reserve.liquidity_mint, reserve.collateral_mint) == (
        str(market),
        str(mint),
        str(collateral),
    )
    assert reserve.collateral_to_liquidity(16 * 10**9) == 20 * 10**9  # rate 1,250 / 1,000


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (RESERVE_DISCRIMINATOR + bytes(100), "108 bytes"),
        (bytes(RESERVE_LEN), "discriminator"),
        (
            hand_written_reserve(
                available=1,
                borrowed_sf=0,
                protocol_sf=2 * SF_ONE,
                referrer_sf=0,
                pending_sf=0,
                supply=1,
            ),
            "fees exceed",
        ),
    ],
    ids=["size", "discriminator", "fees"],
)
def test_bad_reserve_bytes_are_rejected(data: bytes, message: str) -> None:
    with pytest.raises(AccountDecodeError, match=message):
        decode_reserve(data)


# ----------------------------------------------------------------- lines built from a reserve
PROGRAM = "KLend2g3cP87fffoy8q1mQqGKjrxjC8boSyAYavgmjD"
MARKET = Pubkey.new_unique()
SOL_RESERVE, USDC_RESERVE = Pubkey.new_unique(), Pubkey.new_unique()
WALLET = Pubkey.new_unique()
SPEC = SolanaChainSpec(
    chain="t",
    genesis_hash="x" * 32,
    endpoints=EndpointPolicy(urls=("http://127.0.0.1:1",)),
    kamino=KaminoVenue(
        program_id=PROGRAM,
        reserves=(
            KaminoReserve(str(SOL_RESERVE), "SOL", 9),
            KaminoReserve(str(USDC_RESERVE), "USDC", 6),
        ),
        lending_markets=(str(MARKET),),
    ),
    discover_token_accounts=False,
)
OBLIGATION = str(obligation_address(Pubkey.from_string(PROGRAM), WALLET, MARKET))


def _accounts(sol_reserve: RawAccount | None) -> dict[str, RawAccount | None]:
    usdc = encode_reserve(
        lending_market=MARKET,
        liquidity_mint=Pubkey.new_unique(),
        mint_decimals=6,
        available_amount=1_016,
        borrowed_amount_sf=0,
        collateral_mint=Pubkey.new_unique(),
        collateral_supply=1_000,
    )
    obligation = encode_obligation(
        lending_market=MARKET,
        owner=WALLET,
        deposits=((SOL_RESERVE, 16 * 10**9, 0), (USDC_RESERVE, 500 * 10**6, 0)),
        borrows=((SOL_RESERVE, (3 * 10**9) << 60, 0),),
    )
    return {
        str(WALLET): RawAccount("11111111111111111111111111111111", 0, b""),
        str(SOL_RESERVE): sol_reserve,
        str(USDC_RESERVE): RawAccount(PROGRAM, 0, usdc),
        OBLIGATION: RawAccount(PROGRAM, 0, obligation),
    }


def _sol_reserve(decimals: int = 9) -> RawAccount:
    data = encode_reserve(
        lending_market=MARKET,
        liquidity_mint=Pubkey.new_unique(),
        mint_decimals=decimals,
        available_amount=1_250 * 10**9,
        borrowed_amount_sf=0,
        collateral_mint=Pubkey.new_unique(),
        collateral_supply=1_000 * 10**9,
    )
    return RawAccount(PROGRAM, 0, data)


def _kamino(
    accounts: dict[str, RawAccount | None],
) -> tuple[dict[tuple[str, str], int], list[LineIssue]]:
    plan = build_plan(SPEC, [Address(str(WALLET))])
    lines = build_lines(SPEC, plan, accounts, block_time=0)
    positions: dict[tuple[str, str], int] = {
        (p.asset, p.kind): p.amount_raw for p in lines.positions
    }
    return positions, lines.issues


def test_obligation_deposits_are_valued_in_underlying_units() -> None:
    positions, issues = _kamino(_accounts(_sol_reserve()))
    assert positions == {
        ("SOL", "deposit"): 20 * 10**9,  # 16 collateral tokens x 1.25
        ("USDC", "deposit"): 508 * 10**6,  # 500 x 1.016
        ("SOL", "borrow"): -3 * 10**9,
    }
    assert issues == []


@pytest.mark.parametrize(
    ("sol_reserve", "reason"),
    [
        (RawAccount(PROGRAM, 0, bytes(RESERVE_LEN)), "discriminator mismatch"),
        (RawAccount("11111111111111111111111111111111", 0, b""), "owned by 1111"),
        (None, "account not found"),
    ],
    ids=["corrupt", "wrong-owner", "missing"],
)
def test_an_unreadable_reserve_skips_only_its_deposit_line(
    sol_reserve: RawAccount | None, reason: str
) -> None:
    positions, issues = _kamino(_accounts(sol_reserve))

    assert positions == {("USDC", "deposit"): 508 * 10**6, ("SOL", "borrow"): -3 * 10**9}
    by_subject = {issue.subject: issue.message for issue in issues}
    assert set(by_subject) == {str(SOL_RESERVE), OBLIGATION}
    assert reason in by_subject[str(SOL_RESERVE)]
    assert by_subject[str(SOL_RESERVE)].startswith("Kamino reserve SOL")
    assert by_subject[OBLIGATION] == (
        f"Kamino SOL deposit of {WALLET} skipped: reserve {SOL_RESERVE} could not be read"
    )


def test_a_reserve_with_other_decimals_skips_its_deposit_and_borrow() -> None:
    positions, issues = _kamino(_accounts(_sol_reserve(decimals=6)))

    assert positions == {("USDC", "deposit"): 508 * 10**6}
    assert [issue.subject for issue in issues] == [str(SOL_RESERVE), OBLIGATION, OBLIGATION]
    assert "has 6 dp, configured 9" in issues[0].message
