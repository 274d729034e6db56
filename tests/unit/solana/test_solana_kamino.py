"""Kamino Obligation decoding on real mainnet accounts (tests/fixtures/solana/real_accounts).

kamino_obligation_mainmarket_keel.json: keel-fi/svm-alm-controller states its lending market,
owner and deposits (test obligation_try_from_works). kamino_obligation_CQNMXyiA.json: marginfi-v2
states only its pubkey and size. Anything else asserted here was decoded by us from the bytes
and says so; the two cross-checks against the decoded reserves tie the obligation and reserve
layouts to each other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from solana_real_accounts import real_account, real_bytes, stated, with_bytes
from solders.pubkey import Pubkey

from chains.solana.decoders import AccountDecodeError
from chains.solana.decoders.kamino import (
    OBLIGATION_LEN,
    SF_ONE,
    KaminoObligation,
    decode_obligation,
    decode_reserve,
    encode_obligation,
)

KEEL = "kamino_obligation_mainmarket_keel.json"
USDC_DEPOSITOR = "kamino_obligation_CQNMXyiA.json"


def _deposit(slot: int) -> Callable[[KaminoObligation], Any]:
    return lambda obligation: next(d for d in obligation.deposits if d.slot == slot)


# stated field → how the decoded obligation gives it
KEEL_FIELDS: dict[str, Callable[[KaminoObligation], Any]] = {
    "lending_market": lambda o: o.lending_market,
    "owner": lambda o: o.owner,
    "deposits[0].deposit_reserve": lambda o: _deposit(0)(o).reserve,
    "deposits[0].deposited_amount": lambda o: _deposit(0)(o).deposited_amount,
}


def test_every_stated_value_of_the_keel_obligation_is_decoded() -> None:
    obligation = decode_obligation(real_bytes(KEEL))
    values = stated(KEEL)

    for field, entry in values.items():
        if field == "deposits[1..8]":
            # "ObligationCollateral::default() (zero reserve pubkey, amount 0)": the decoder drops
            # empty slots, so slot 0 is the only deposit left.
            assert [deposit.slot for deposit in obligation.deposits] == [0]
            continue
        assert KEEL_FIELDS[field](obligation) == entry["value"], field
    assert set(values) == {*KEEL_FIELDS, "deposits[1..8]"}  # none left unchecked


def test_keel_obligation_borrow_and_values_as_decoded() -> None:
    # Decoded, not stated: the source's test reads no borrow. Slot 0 is empty, slot 1 holds the
    # USDC main-market reserve (D6q6wuQS, the pubkey marginfi-v2's fixture states for it).
    obligation = decode_obligation(real_bytes(KEEL))

    assert obligation.tag == 0
    assert obligation.has_debt is True
    assert [(b.slot, b.reserve, b.borrowed_amount_sf) for b in obligation.borrows] == [
        (1, "D6q6wuQSrifJKZYpR1M8R4YawnLDtDsMmWM1NbBmgJ59", 4_633_248_354_245_924_818_937_318_670)
    ]
    # 4,018,702,345.07 USDC base units, rounded up so that the debt is not understated
    assert obligation.borrows[0].borrowed_amount_raw == 4_018_702_346
    assert obligation.deposits[0].market_value_sf == 11_433_167_431_875_039_844_823
    assert obligation.deposited_value_sf == obligation.deposits[0].market_value_sf
    assert obligation.borrowed_assets_market_value_sf == obligation.borrows[0].market_value_sf
    assert int(obligation.deposited_value_usd) == 9_916  # $9,916.69


def test_usdc_obligation_states_only_its_size_and_the_rest_is_decoded() -> None:
    values = stated(USDC_DEPOSITOR)
    data = real_bytes(USDC_DEPOSITOR)
    assert len(data) == values["account.space"]["value"] == OBLIGATION_LEN
    assert real_account(USDC_DEPOSITOR)["pubkey"] == values["pubkey"]["value"]

    obligation = decode_obligation(data)

    # Decoded, not stated:
    assert obligation.lending_market == "7u3HeHxYDLhnCoErrtycNokbQYbWGzLs6JSDqGAv5PfF"
    assert obligation.owner == "HRpCJaTjXMgxsDAHSLHTQigUmezEitySEf6SWWmLsiNY"
    assert [(d.slot, d.reserve, d.deposited_amount) for d in obligation.deposits] == [
        (0, "D6q6wuQSrifJKZYpR1M8R4YawnLDtDsMmWM1NbBmgJ59", 163_105_714_338)
    ]
    assert obligation.borrows == ()
    assert obligation.has_debt is False


@pytest.mark.parametrize(
    ("obligation_file", "reserve_file", "ltv", "threshold"),
    [
        (KEEL, "kamino_reserve_sol_mainmarket_keel.json", 74, 75),
        (USDC_DEPOSITOR, "kamino_reserve_usdc_D6q6wuQS.json", 80, 90),
    ],
)
def test_obligation_borrow_limits_are_its_deposit_value_times_the_reserves_ltv_and_threshold(
    obligation_file: str, reserve_file: str, ltv: int, threshold: int
) -> None:
    """A layout cross-check between two accounts: klend refreshes an obligation's allowed /
    unhealthy borrow value as deposit value x the reserve's LTV / liquidation threshold. Both
    obligations hold one deposit, so the ratios of their decoded values must equal the LTV and
    threshold decoded from their deposit reserve (the keel SOL reserve's pubkey is not stated;
    this is what ties it to d4A2prb…, the keel obligation's deposit)."""
    obligation = decode_obligation(real_bytes(obligation_file))
    reserve = decode_reserve(real_bytes(reserve_file))
    assert (reserve.loan_to_value_pct, reserve.liquidation_threshold_pct) == (ltv, threshold)

    deposited = obligation.deposited_value_sf
    # Equal to 1 part in 10**12: klend multiplies by Fraction::from_percent, and 0.74 is not
    # exact in U68F60 (the actual differences are ~1e-16 relative).
    assert abs(obligation.allowed_borrow_value_sf * 100 - deposited * ltv) < deposited // 10**10
    assert abs(obligation.unhealthy_borrow_value_sf * 100 - deposited * threshold) < (
        deposited // 10**10
    )


def test_the_local_chain_encoder_writes_what_the_real_layout_decodes() -> None:
    real = decode_obligation(real_bytes(KEEL))

    data = encode_obligation(
        lending_market=Pubkey.from_string(real.lending_market),
        owner=Pubkey.from_string(real.owner),
        deposits=tuple(
            (Pubkey.from_string(d.reserve), d.deposited_amount, d.market_value_sf)
            for d in real.deposits
        ),
        borrows=tuple(
            (Pubkey.from_string(b.reserve), b.borrowed_amount_sf, b.market_value_sf)
            for b in real.borrows
        ),
    )
    encoded = decode_obligation(data)

    assert (encoded.lending_market, encoded.owner, encoded.deposits) == (
        real.lending_market,
        real.owner,
        real.deposits,
    )
    assert [(b.reserve, b.borrowed_amount_sf, b.market_value_sf) for b in encoded.borrows] == [
        (b.reserve, b.borrowed_amount_sf, b.market_value_sf) for b in real.borrows
    ]
    assert encoded.deposited_value_sf == real.deposited_value_sf
    assert encoded.borrowed_assets_market_value_sf == real.borrowed_assets_market_value_sf
    assert encoded.has_debt is True


def test_a_fractional_debt_is_rounded_up_to_the_next_base_unit() -> None:
    reserve = Pubkey.new_unique()
    data = encode_obligation(
        lending_market=Pubkey.new_unique(),
        owner=Pubkey.new_unique(),
        borrows=((reserve, 9 * SF_ONE + 1, 0),),  # a hair over 9 base units
    )
    assert decode_obligation(data).borrows[0].borrowed_amount_raw == 10


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda data: data[:-1], "3343 bytes"),
        (lambda data: with_bytes(data, 0, bytes(8)), "discriminator"),
    ],
    ids=["size", "discriminator"],
)
def test_a_damaged_real_obligation_is_rejected(
    mutate: Callable[[bytes], bytes], message: str
) -> None:
    with pytest.raises(AccountDecodeError, match=message):
        decode_obligation(mutate(real_bytes(KEEL)))
