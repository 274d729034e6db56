"""Kamino's venue math (aggregator/venues/kamino.py) on a real main-market obligation (a SOL
deposit, a USDC borrow) with the real main-market SOL and USDC reserves, whose own market prices
are the venue prices. Expected numbers are worked out below from the decoded parameters."""

from __future__ import annotations

import struct
from decimal import Decimal

import pytest
from solana_venue_fixtures import patched, real_data

from aggregator.venues.kamino import RULES
from aggregator.venues.model import VenueParameterError
from chains.base import VenueAccount
from chains.solana import venues
from chains.solana.decoders import AccountDecodeError, kamino

OBLIGATION = real_data("kamino_obligation_mainmarket_keel.json")
SOL_RESERVE = real_data("kamino_reserve_sol_mainmarket_keel.json")
USDC_RESERVE = real_data("kamino_reserve_usdc_D6q6wuQS.json")
# The keel SOL reserve's pubkey is not stated (README): the obligation's deposit reserve is
# taken to be it, as that README infers (main-market SOL reserve, same lending market).
SOL_KEY = "d4A2prbA2whesmvHaL88BH6Ewn5N4bTSU2Ze8P6Bc4Q"
USDC_KEY = "D6q6wuQSrifJKZYpR1M8R4YawnLDtDsMmWM1NbBmgJ59"
CONFIGURED = {SOL_KEY: ("SOL", 9), USDC_KEY: ("USDC", 6)}


def read(data: bytes) -> venues.Read[venues.KaminoReserveRead]:
    try:
        return venues.read_kamino_reserve(data)
    except AccountDecodeError as error:
        return f"Kamino reserve: {error}"


def venue_account(sol_reserve: bytes = SOL_RESERVE) -> VenueAccount:
    return venues.kamino_venue_account(
        wallet="4EiYqK5PCfLVyvL3WQRkifkPoVtaRHdTvYTzeLkydtHW",
        obligation_key="obligation",
        obligation=kamino.decode_obligation(OBLIGATION),
        reserve_assets=CONFIGURED,
        reserves={SOL_KEY: read(sol_reserve), USDC_KEY: read(USDC_RESERVE)},
    )


def test_real_obligation_gives_kaminos_ltv_and_liquidation_ltv() -> None:
    obligation = kamino.decode_obligation(OBLIGATION)
    sol, usdc = kamino.decode_reserve(SOL_RESERVE), kamino.decode_reserve(USDC_RESERVE)
    (deposit,), (borrow,) = obligation.deposits, obligation.borrows
    # decoded, not stated: the reserves' own prices (market_price_sf / 2**60)
    sol_price = Decimal(struct.unpack_from("<QQ", SOL_RESERVE, 248)[0]
                        | struct.unpack_from("<QQ", SOL_RESERVE, 248)[1] << 64) / 2**60  # fmt: skip
    usdc_low, usdc_high = struct.unpack_from("<QQ", USDC_RESERVE, 248)
    usdc_price = Decimal(usdc_low | usdc_high << 64) / 2**60
    assert 100 < sol_price < 300 and Decimal("0.99") < usdc_price < Decimal("1.01")

    account = venue_account()
    measure = RULES.measure(account, {})

    assert account.problem is None
    # deposit: collateral tokens through the reserve's exchange rate, at the SOL price
    sol_tokens = sol.collateral_to_liquidity(deposit.deposited_amount)
    deposited = Decimal(sol_tokens) / 10**9 * sol_price
    # debt: borrowed_amount_sf / 2**60 rounded up, at the USDC price x borrow factor 100 %
    debt = Decimal(-(-borrow.borrowed_amount_sf // 2**60)) / 10**6 * usdc_price
    debt *= Decimal(usdc.borrow_factor_pct) / 100
    unhealthy = deposited * Decimal(sol.liquidation_threshold_pct) / 100  # 75 %
    assert measure.collateral == pytest.approx(unhealthy, rel=Decimal("1e-20"))
    assert measure.requirement == pytest.approx(debt, rel=Decimal("1e-20"))
    assert measure.metric == pytest.approx(debt / deposited, rel=Decimal("1e-20"))
    assert measure.extra is not None
    assert Decimal(measure.extra["liquidation_ltv"]) == Decimal("0.75")
    assert not measure.liquidatable
    # the obligation's own figures at its last refresh are carried exactly
    assert Decimal(account.reported["deposited_value"]) * 2**60 == obligation.deposited_value_sf


def test_shocked_prices_move_kamino_ltv_the_right_way() -> None:
    account = venue_account()
    base = RULES.measure(account, {})
    assert base.metric is not None and base.extra is not None

    lower = RULES.measure(account, {"SOL": Decimal(100)})
    crashed = RULES.measure(account, {"SOL": Decimal(10)})

    assert lower.metric is not None and lower.metric > base.metric
    assert crashed.liquidatable
    assert crashed.metric is not None and crashed.metric > Decimal(base.extra["liquidation_ltv"])


def test_out_of_range_reserve_is_a_problem_and_bad_parameters_raise() -> None:
    bad = patched(SOL_RESERVE, 4856 + 17, bytes([101]))  # liquidation threshold 101 %

    account = venue_account(bad)

    assert account.problem is not None and "liquidation_threshold_pct 101" in account.problem
    with pytest.raises(VenueParameterError, match="liquidation_threshold_pct 101"):
        RULES.measure(account, {})

    good = venue_account()
    asset = good.assets[0]
    for params, match in (
        ({**asset.params, "liquidation_threshold": "1.01"}, "liquidation_threshold"),
        ({**asset.params, "loan_to_value": "0.8"}, "loan_to_value"),  # above 0.75
    ):
        changed = type(asset)(asset.asset, asset.amount_raw, asset.decimals, asset.price,
                              params, asset.market)  # fmt: skip
        with pytest.raises(VenueParameterError, match=match):
            RULES.check(VenueAccount(good.account, "kamino", "kamino", (changed,)))
