"""MarginFi's venue math (aggregator/venues/marginfi.py) on the real mainnet account sample 1
(its JitoSOL deposit and USDT debt: the two of its banks that are among the fixtures) with the
real JitoSOL and USDT banks, and venue pricing through the real BONK bank's push oracle. Expected
numbers are worked out below from the decoded weights and share values."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest
from solana_venue_fixtures import patched, real_data

from aggregator.venues.marginfi import RULES
from aggregator.venues.model import VenueParameterError
from chains.base import VenueAccount
from chains.solana import venues
from chains.solana.decoders import AccountDecodeError, marginfi, pyth
from chains.solana.lines import RawAccount
from chains.solana.spec import PYTH_RECEIVER_PROGRAM

ACCOUNT = real_data("marginfi_account_sample1_EN1WSBJm.json")
JITOSOL = "Bohoc1ikHLD7xKJuzTyiTyCwzaL5N7ggJQu75A8mKYM8"
USDT = "HmpMfL8942u22htC4EMiWgLX931g3sacXFR6KjuLgKLV"
BANKS = {JITOSOL: real_data("marginfi_bank_jitosol_Bohoc1ik.json"),
         USDT: real_data("marginfi_bank_usdt_sample3.json")}  # fmt: skip
PRICES = {"JitoSOL": Decimal(170), "USDT": Decimal(1)}


def bank_read(data: bytes) -> venues.Read[marginfi.MarginfiBankState]:
    try:
        return marginfi.decode_bank(data)
    except AccountDecodeError as error:
        return f"MarginFi bank: {error}"


def venue_account(banks: dict[str, bytes] = BANKS) -> VenueAccount:
    state = marginfi.decode_account(ACCOUNT)
    known = tuple(b for b in state.balances if b.bank in banks)
    return venues.marginfi_venue_account(
        wallet=state.authority,
        account_key="EN1WSBJmZR1NVdYvPbpwzPnRk7JhbNncS1kNEXqvK7ND",
        account=dataclasses.replace(state, balances=known),
        bank_assets={JITOSOL: ("JitoSOL", 9), USDT: ("USDT", 6)},
        banks={key: bank_read(data) for key, data in banks.items()},
        oracles={},
    )


def test_real_account_and_banks_give_marginfis_maintenance_health() -> None:
    state = marginfi.decode_account(ACCOUNT)
    jito, usdt = marginfi.decode_bank(BANKS[JITOSOL]), marginfi.decode_bank(BANKS[USDT])
    shares = {b.bank: b for b in state.balances}
    account = venue_account()
    # both banks use the deprecated legacy Pyth oracle: no venue price, prices are given
    assert [a.price for a in account.assets] == [None, None]
    with pytest.raises(VenueParameterError, match="no venue price for JitoSOL"):
        RULES.measure(account, {})

    measure = RULES.measure(account, PRICES)

    # deposit = shares x share value (I80F48 bits >> 96, rounded down), debt rounded up
    deposit = shares[JITOSOL].asset_shares * jito.asset_share_value >> 96
    debt = -(-(shares[USDT].liability_shares * usdt.liability_share_value) >> 96)
    assets = Decimal(deposit) / 10**9 * 170 * jito.asset_weight_maint  # ~0.8
    liabilities = Decimal(debt) / 10**6 * 1 * usdt.liability_weight_maint  # ~1.1
    assert (measure.collateral, measure.requirement) == (assets, liabilities)
    assert measure.metric == (assets - liabilities) / assets
    assert measure.liquidatable == (assets < liabilities)


def test_shocked_prices_move_marginfi_health_the_right_way() -> None:
    account = venue_account()
    base = RULES.measure(account, PRICES)
    lower = RULES.measure(account, {**PRICES, "JitoSOL": Decimal(100)})
    assert base.metric is not None and lower.metric is not None
    assert lower.metric < base.metric
    assert RULES.measure(account, {**PRICES, "JitoSOL": Decimal(1)}).liquidatable


def test_push_oracle_bank_prices_from_its_feeds_shard_0_account_with_the_conf_band() -> None:
    bonk_bank = real_data("marginfi_bank_bonk_DeyH7QxW.json")
    bank = marginfi.decode_bank(bonk_bank)
    assert bank.oracle_setup == "pyth_push_oracle"  # decoded, not stated
    feed_id = bytes(venues.Pubkey.from_string(bank.oracle_keys[0]))
    oracle_key = venues.marginfi_push_oracle_address(bank.oracle_keys[0])
    update = pyth.encode_price_update_v2(
        write_authority=venues.Pubkey.default(), feed_id=feed_id, price=2_000, conf=10,
        exponent=-8, publish_time=1, posted_slot=1)  # fmt: skip
    oracle = venues.read_oracle(RawAccount(PYTH_RECEIVER_PROGRAM, 1, update))
    assert venues.marginfi_oracle_keys([bank]) == [bank.oracle_keys[0], oracle_key]

    price, interval, why = venues.marginfi_price(bank, {oracle_key: oracle})

    # 2000e-8 USD, interval 2.12 x 10e-8 (below the 5 % cap of 100e-8)
    assert (price, interval, why) == (
        Decimal("0.00002000"),
        Decimal("2.12") * Decimal("1E-7"),
        None,
    )
    other_feed = dataclasses.replace(oracle, feed_id="0x" + "00" * 32)
    assert venues.marginfi_price(bank, {oracle_key: other_feed})[0] is None


def test_out_of_range_bank_is_a_problem_and_bad_weights_raise() -> None:
    # liability_weight_maint below 1 (I80F48 0.5 at config +48)
    bad = patched(BANKS[USDT], 296 + 48, (1 << 47).to_bytes(16, "little", signed=True))

    account = venue_account({**BANKS, USDT: bad})

    assert account.problem is not None and "liability_weight_maint" in account.problem
    with pytest.raises(VenueParameterError, match="liability_weight_maint"):
        RULES.measure(account, PRICES)

    good = venue_account()
    asset = good.assets[0]
    for key, value in (("asset_weight_maint", "1.5"), ("liability_weight_maint", "0.9")):
        changed = dataclasses.replace(asset, params={**asset.params, key: value})
        with pytest.raises(VenueParameterError, match=key):
            RULES.check(VenueAccount(good.account, "marginfi", "marginfi", (changed,)))
