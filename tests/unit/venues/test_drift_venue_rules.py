"""Drift's venue math (aggregator/venues/drift.py) on the real mainnet USDC and SOL spot markets
and SOL-PERP market (tests/fixtures/solana/real_accounts), through the real read path
(`build_lines`). No Drift User account is among the fixtures: the user is written with the
project's encoder of the real layout; its oracles are PythLazerOracle accounts (the markets'
own oracle source) written by the test. Expected numbers are worked out below from the decoded
parameters."""

from __future__ import annotations

import struct
from decimal import Decimal
from math import isqrt

import pytest
from solana_venue_fixtures import patched, real_data
from solders.pubkey import Pubkey

from aggregator.venues.drift import RULES
from aggregator.venues.model import VenueParameterError
from chains.base import Address, EndpointPolicy, VenueAccount
from chains.solana import venues
from chains.solana.decoders import drift
from chains.solana.lines import RawAccount, build_lines
from chains.solana.plan import build_plan, perp_market_address
from chains.solana.spec import DriftPerpMarket, DriftSpotMarket, DriftVenue, SolanaChainSpec

PROGRAM = "dRiftyHA39MWEi3m9aunc5MzRF1JYuBsbn6VPcn33UH"
WALLET = "4EiYqK5PCfLVyvL3WQRkifkPoVtaRHdTvYTzeLkydtHW"
USDC = real_data("drift_spot_market_usdc_slot405455796.json")
SOL = real_data("drift_spot_market_sol_orders_test.json")
SOL_PERP = real_data("drift_perp_market_sol_slot405286944.json")
USER_SPOT = ((0, 1_000 * 10**9, "deposit"), (1, 2 * 10**9, "borrow"))
USER_PERP = ((0, 10 * 10**9, -1_400 * 10**6, -1_400 * 10**6),)


def spec(spot_accounts: tuple[str, str]) -> SolanaChainSpec:
    return SolanaChainSpec(
        chain="solana",
        genesis_hash="x" * 32,
        endpoints=EndpointPolicy(urls=("http://unused",)),
        native_balances=False,
        drift=DriftVenue(
            program_id=PROGRAM,
            spot_markets=(
                DriftSpotMarket(0, "USDC", 6, spot_accounts[0]),
                DriftSpotMarket(1, "SOL", 9, spot_accounts[1]),
            ),
            perp_markets=(DriftPerpMarket(0, "SOL"),),
        ),
    )


def venue_account(
    usdc: bytes = USDC, sol: bytes = SOL, sol_price: int = 150 * 10**8, with_oracles: bool = True
) -> VenueAccount:
    """The user's venue account as `build_lines` makes it from one read of every account."""
    usdc_state, sol_state = drift.decode_spot_market(USDC), drift.decode_spot_market(SOL)
    perp_state = drift.decode_perp_market(SOL_PERP)
    chain = spec((usdc_state.address, sol_state.address))
    program = Pubkey.from_string(PROGRAM)
    plan = build_plan(chain, [Address(WALLET)], [usdc_state.oracle, sol_state.oracle])
    user = drift.encode_user(authority=Pubkey.from_string(WALLET), sub_account_id=0,
                             spot=USER_SPOT, perp=USER_PERP)  # fmt: skip
    accounts: dict[str, RawAccount | None] = {
        str(drift.user_address(program, Pubkey.from_string(WALLET))): RawAccount(PROGRAM, 1, user),
        usdc_state.address: RawAccount(PROGRAM, 1, usdc),
        sol_state.address: RawAccount(PROGRAM, 1, sol),
        str(perp_market_address(program, 0)): RawAccount(PROGRAM, 1, SOL_PERP),
    }
    if with_oracles:
        # USDC/USD at 1.0002 +- 0.001 and SOL/USD (spot and perp share the oracle), expo -8
        usdc_oracle = venues.encode_pyth_lazer_oracle(100_020_000, -8, 100_000, 1)
        sol_oracle = venues.encode_pyth_lazer_oracle(sol_price, -8, 5_000_000, 1)
        accounts[usdc_state.oracle] = RawAccount(PROGRAM, 1, usdc_oracle)
        accounts[sol_state.oracle] = RawAccount(PROGRAM, 1, sol_oracle)
    assert perp_state.oracle == sol_state.oracle
    lines = build_lines(chain, plan, accounts, block_time=1)
    (account,) = lines.venue_accounts
    return account


def test_real_markets_give_drifts_collateral_requirement_and_health() -> None:
    account = venue_account()
    usdc, sol = drift.decode_spot_market(USDC), drift.decode_spot_market(SOL)
    perp = drift.decode_perp_market(SOL_PERP)
    # decoded, not stated: the markets' oracle sources are PythLazer(StableCoin)
    assert (venues.read_drift_spot_market(USDC).oracle_source,
            venues.read_drift_spot_market(SOL).oracle_source,
            venues.read_drift_perp_market(SOL_PERP).oracle_source) == (
        "PythLazerStableCoin", "PythLazer", "PythLazer")  # fmt: skip
    assert (account.venue, account.rules, account.account) == ("drift", "drift", WALLET)
    assert account.problem is None

    # USDC deposit: scaled 1e9 x cumulative deposit interest / 10**(19 - 6), rounded down;
    # the stable-coin price 1.0002 is within min(5 bps, conf 0.001) of 1, so Drift counts 1.
    usdc_raw = 1_000 * 10**9 * usdc.cumulative_deposit_interest // 10**13
    assert usdc.maintenance_asset_weight == 10_000 and usdc.imf_factor == 0
    collateral = Decimal(usdc_raw) / 10**6 * 1 * 1
    # SOL borrow: rounded up; liability weight max(1.1, size premium with imf 1250)
    sol_raw = -(-2 * 10**9 * sol.cumulative_borrow_interest // 10**10)
    weight = sol.maintenance_liability_weight  # 11_000
    premium = weight - weight // 5 + isqrt(sol_raw * 10 + 1) * sol.imf_factor // 10_000_000
    assert premium < weight  # a 2.3 SOL borrow is too small for the premium to bite
    requirement = Decimal(sol_raw) / 10**9 * 150 * Decimal(weight) / 10_000
    # SOL-PERP long 10 at 150: |base| x price x max(maintenance ratio, size premium)
    ratio = perp.margin_ratio_maintenance  # 300
    perp_premium = ratio - ratio // 5 + isqrt(10 * 10**9 * 10 + 1) * perp.imf_factor // 10**7
    requirement += 10 * Decimal(150) * Decimal(max(ratio, perp_premium)) / 10_000
    # unrealized pnl 10 x 150 - 1,400 = +100, weighted by the market's maintenance weight (1e4)
    collateral += (10 * Decimal(150) - 1_400) * 1

    measure = RULES.measure(account, {})

    assert (measure.collateral, measure.requirement) == (collateral, requirement)
    assert measure.metric == 100 * (1 - requirement / collateral)
    assert not measure.liquidatable
    assert measure.extra is not None
    assert measure.extra["health_rounded"] == str(round(measure.metric))


def test_shocked_prices_move_drift_health_the_right_way() -> None:
    account = venue_account()
    base = RULES.measure(account, {})
    assert base.metric is not None

    lower = RULES.measure(account, {"SOL": Decimal(120)})
    crashed = RULES.measure(account, {"SOL": Decimal(1)})

    # the long perp loses more than the SOL debt shrinks: health falls, then liquidation
    assert lower.metric is not None and lower.metric < base.metric
    assert crashed.liquidatable and crashed.metric == 0
    # the venue's own oracle at 120 counts the same as a shock to 120
    assert RULES.measure(venue_account(sol_price=120 * 10**8), {}) == lower


def test_out_of_range_market_is_a_problem_naming_it() -> None:
    bad = patched(SOL, 644, struct.pack("<I", 10_001))  # maintenance asset weight > 1e4

    account = venue_account(sol=bad)

    assert account.problem is not None
    assert "Drift spot market" in account.problem and "out of range" in account.problem
    with pytest.raises(VenueParameterError, match="out of range"):
        RULES.measure(account, {})


def test_a_weight_above_one_or_a_missing_price_raises_naming_it() -> None:
    account = venue_account()
    spot = next(a for a in account.assets if a.market == "spot:1")
    heavy = VenueAccount(
        account.account,
        "drift",
        "drift",
        (type(spot)(spot.asset, spot.amount_raw, spot.decimals, spot.price,
                    {**spot.params, "maintenance_asset_weight": "1.01"}, spot.market),),
    )  # fmt: skip
    with pytest.raises(VenueParameterError, match="maintenance_asset_weight"):
        RULES.check(heavy)

    unpriced = venue_account(with_oracles=False)
    assert {a.market: a.price for a in unpriced.assets} == {
        "spot:0": None, "spot:1": None, "perp:0": None}  # fmt: skip
    with pytest.raises(VenueParameterError, match="no venue price for USDC"):
        RULES.measure(unpriced, {})
    assert RULES.measure(unpriced, {"USDC": Decimal(1), "SOL": Decimal(150)}) == RULES.measure(
        venue_account(), {}
    )
