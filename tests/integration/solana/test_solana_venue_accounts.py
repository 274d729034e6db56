"""Venue accounts in a polled snapshot of the LiteSVM localnet (no mocks): the demo world's
Drift user, Kamino obligation and MarginFi account come back as `VenueAccount`s read in the same
pass, priced as the venues price them, and each venue's rules measure them.

The demo world is read as seeded: its Drift spot and perp markets name the demo Pyth accounts
as oracles, its MarginFi banks name them as push oracles and its Kamino reserves hold the same
price (chains/solana/localnet/demo.py). When the world moves a price (`set_demo_prices`), every
venue's price follows."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from solders.pubkey import Pubkey

from aggregator.venues import drift as drift_rules
from aggregator.venues import kamino as kamino_rules
from aggregator.venues import marginfi as marginfi_rules
from chains.base import Address, ChainSnapshot, VenueAccount
from chains.solana.adapter import SolanaAdapter
from chains.solana.localnet import (
    DEMO_SOLANA,
    LocalSolana,
    demo_spec,
    seed_demo_world,
    set_demo_prices,
)

ALICE, BOB = Address(DEMO_SOLANA.alice), Address(DEMO_SOLANA.bob)
RULES = {"drift": drift_rules.RULES, "kamino": kamino_rules.RULES, "marginfi": marginfi_rules.RULES}
DEMO_VENUES = {(ALICE, "drift"), (BOB, "kamino"), (BOB, "marginfi")}


@pytest.fixture(scope="module")
def chain() -> Iterator[LocalSolana]:
    with LocalSolana() as local:
        seed_demo_world(local)
        yield local


async def _snapshot(adapter: SolanaAdapter) -> ChainSnapshot:
    return await adapter.snapshot([ALICE, BOB])


def _venues(snapshot: ChainSnapshot) -> dict[tuple[str, str], VenueAccount]:
    assert snapshot.issues == ()
    venues = {(v.account, v.venue): v for v in snapshot.venue_accounts}
    assert set(venues) == DEMO_VENUES
    return venues


def _assert_priced(venues: dict[tuple[str, str], VenueAccount], sol: Decimal) -> None:
    """Every leg of every venue account is priced at the world's price: SOL at `sol`, USDC 1."""
    for account in venues.values():
        assert account.problem is None, account.venue
        assert account.assets, account.venue
        prices = {(a.asset, a.market, a.price) for a in account.assets}
        assert prices == {
            (a.asset, a.market, sol if a.asset == "SOL" else Decimal(1)) for a in account.assets
        }, account.venue


async def test_the_demo_worlds_venue_accounts_are_priced_and_measurable(
    chain: LocalSolana,
) -> None:
    adapter = SolanaAdapter(demo_spec((chain.url,), marginfi=True))
    try:
        chain.reset_rpc_calls()
        snapshot = await _snapshot(adapter)
        first_calls = chain.rpc_calls()["getMultipleAccounts"]
        chain.reset_rpc_calls()
        again = await _snapshot(adapter)
        second_calls = chain.rpc_calls()["getMultipleAccounts"]
    finally:
        await adapter.aclose()

    # The Drift oracles are the feeds (planned already); a MarginFi bank may also price from
    # the push-oracle account of a feed id in oracle_keys[0], unknown until the banks are read:
    # read again in the same pass once, then planned up front.
    assert (first_calls, second_calls) == (2, 1)
    assert again.venue_accounts == snapshot.venue_accounts
    venues = _venues(snapshot)
    assert {(p.account, p.venue) for p in snapshot.positions} == DEMO_VENUES
    _assert_priced(venues, Decimal(150))
    drift = venues[(ALICE, "drift")]
    assert [a.market for a in drift.assets] == ["spot:0", "spot:1", "perp:0"]
    for account in venues.values():
        measure = RULES[account.rules].measure(account, {})
        assert measure.metric is not None and measure.metric.is_finite()
        shocked = RULES[account.rules].measure(account, {"SOL": Decimal(75)})
        # alice's long perp and bob's Kamino SOL collateral lose; bob's MarginFi SOL debt shrinks
        if account.venue == "marginfi":
            assert shocked.margin > measure.margin
        else:
            assert shocked.margin < measure.margin
    assert drift.subaccount == str(
        Pubkey.find_program_address(
            [b"user", bytes(Pubkey.from_string(ALICE)), bytes(2)],
            Pubkey.from_string(DEMO_SOLANA.drift_program),
        )[0]
    )
    assert venues[(BOB, "marginfi")].subaccount == DEMO_SOLANA.marginfi_account_bob


async def test_venue_prices_follow_the_worlds_price_moves(chain: LocalSolana) -> None:
    adapter = SolanaAdapter(demo_spec((chain.url,), marginfi=True))
    try:
        before = _venues(await _snapshot(adapter))
        set_demo_prices(chain, sol_usd_cents=12_025)  # $120.25: exact in binary (481 / 4)
        chain.finalize()
        moved = await _snapshot(adapter)
    finally:
        set_demo_prices(chain)
        chain.finalize()
        await adapter.aclose()

    assert {p.asset: p.price for p in moved.prices} == {
        "SOL": Decimal("120.25"),
        "USDC": Decimal(1),
    }
    after = _venues(moved)
    _assert_priced(after, Decimal("120.25"))
    for key, account in after.items():
        old = RULES[account.rules].measure(before[key], {})
        new = RULES[account.rules].measure(account, {})
        if account.venue == "marginfi":  # bob owes SOL
            assert new.margin > old.margin
        else:  # alice is long SOL-PERP, bob's Kamino collateral is SOL
            assert new.margin < old.margin
