"""Bad Solana accounts end up as issues in `poll_runs`, and nothing else is lost.

Real LiteSVM chain (the demo world), the real Solana adapter, the real test Postgres: the
Pyth SOL/USD account gets a wrong owner, alice's Drift User a wrong discriminator, the Kamino SOL
reserve a wrong size, alice receives a token of a mint nobody configured, and a wallet linked
with a non-base58 address is polled with the others. The poll stays ok; every bad account is
named in the poll_run's issues; every good line is stored.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from solders.pubkey import Pubkey
from sqlalchemy import select

from aggregator.polling import poll_chain
from aggregator.store import models as m
from aggregator.store.accounts.users import add_user, link_wallet
from aggregator.store.database import Database
from aggregator.store.observed.observation_reads import latest_observations
from chains.solana.adapter import SolanaAdapter
from chains.solana.decoders import drift, kamino
from chains.solana.localnet import DEMO_SOLANA, LocalSolana, demo_spec, seed_demo_world
from chains.solana.spec import SPL_TOKEN_PROGRAM

CHAIN = "solana_bad_accounts"
NOT_BASE58 = "0OIl-not-a-solana-address"
WRONG_OWNER = "BPFLoaderUpgradeab1e11111111111111111111111"
DRIFT_USER = str(
    drift.user_address(
        Pubkey.from_string(DEMO_SOLANA.drift_program), Pubkey.from_string(DEMO_SOLANA.alice), 0
    )
)
BOB_OBLIGATION = str(
    kamino.obligation_address(
        Pubkey.from_string(DEMO_SOLANA.kamino_program),
        Pubkey.from_string(DEMO_SOLANA.bob),
        Pubkey.from_string(DEMO_SOLANA.kamino_lending_market),
    )
)


@pytest.fixture(scope="module")
def chain() -> Iterator[tuple[LocalSolana, str]]:
    """The demo world with four kinds of bad account; yields the chain and the unknown-mint
    token account."""
    with LocalSolana() as local:
        seed_demo_world(local)
        demo = DEMO_SOLANA
        # Pyth SOL/USD: correct bytes, owned by a program that is not a Pyth receiver.
        sol_usd = local.ledger.svm.get_account(Pubkey.from_string(demo.pyth_sol_usd))
        assert sol_usd is not None
        local.set_raw_account(demo.pyth_sol_usd, bytes(sol_usd.data), WRONG_OWNER)
        # alice's Drift User: right size and owner, wrong discriminator.
        user = local.ledger.svm.get_account(Pubkey.from_string(DRIFT_USER))
        assert user is not None
        local.set_raw_account(DRIFT_USER, b"\x00" * 8 + bytes(user.data)[8:], demo.drift_program)
        # Kamino SOL reserve: right discriminator and owner, 100 bytes short.
        reserve = local.ledger.svm.get_account(Pubkey.from_string(demo.kamino_reserve_sol))
        assert reserve is not None
        local.set_raw_account(
            demo.kamino_reserve_sol, bytes(reserve.data)[:-100], demo.kamino_program
        )
        # A token of a mint the spec does not know, in alice's associated account.
        ghost = local.create_mint(6, SPL_TOKEN_PROGRAM, seed="bad-accounts:ghost-mint")
        ghost_account = local.mint_to(demo.alice, ghost, 7 * 10**6)
        local.finalize()
        yield local, str(ghost_account)


async def _link(db: Database) -> dict[str, int]:
    async with db.session() as session:
        alice = await add_user(session, "alice")
        bob = await add_user(session, "bob")
        carol = await add_user(session, "carol")
        await link_wallet(session, alice, CHAIN, DEMO_SOLANA.alice)
        await link_wallet(session, bob, CHAIN, DEMO_SOLANA.bob)
        await link_wallet(session, carol, CHAIN, NOT_BASE58)  # stored as given
    return {DEMO_SOLANA.alice: alice, DEMO_SOLANA.bob: bob, NOT_BASE58: carol}


async def test_bad_accounts_are_recorded_in_the_poll_run_and_good_lines_stored(
    db: Database, chain: tuple[LocalSolana, str]
) -> None:
    local, ghost_account = chain
    owners = await _link(db)
    adapter = SolanaAdapter(demo_spec((local.url,), chain=CHAIN))
    try:
        result = await poll_chain(db, adapter, owners)
    finally:
        await adapter.aclose()

    assert (result.ok, result.skipped, result.error) == (True, False, None)
    demo = DEMO_SOLANA
    async with db.session() as session:
        runs = list(await session.scalars(select(m.PollRun)))
        observations = (await latest_observations(session))[CHAIN]
    assert len(runs) == 1 and runs[0].ok and runs[0].error is None
    issues = {issue["subject"]: issue["message"] for issue in runs[0].issues}
    assert set(issues) == {
        NOT_BASE58,
        demo.pyth_sol_usd,
        DRIFT_USER,
        demo.kamino_reserve_sol,
        ghost_account,
        BOB_OBLIGATION,
    }, issues
    assert result.issues == len(issues)
    assert issues[NOT_BASE58] == f"wallet {NOT_BASE58!r} is not a base58 Solana address"
    assert issues[demo.pyth_sol_usd] == (
        f"Pyth price of SOL: owner {WRONG_OWNER} is not a Pyth receiver program"
    )
    assert issues[DRIFT_USER] == (
        f"Drift user of {demo.alice}: not a Drift User account (discriminator mismatch)"
    )
    assert issues[demo.kamino_reserve_sol] == (
        "Kamino reserve SOL: Kamino Reserve is 8524 bytes, expected 8624"
    )
    assert issues[ghost_account].startswith(f"token account of {demo.alice} holds mint ")
    assert issues[BOB_OBLIGATION] == (
        f"Kamino SOL deposit of {demo.bob} skipped: reserve {demo.kamino_reserve_sol} "
        "could not be read"
    )

    balances = {
        (owned.user_id, owned.balance.asset): owned.balance.amount_raw
        for owned in observations.balances
    }
    alice, bob = owners[demo.alice], owners[demo.bob]
    assert balances == {
        (alice, "SOL"): 10 * 10**9,
        (alice, "USDC"): 25_000 * 10**6,
        (alice, "PYUSD"): 1_000 * 10**6,
        (bob, "SOL"): 50 * 10**9,
        (bob, "USDC"): 500 * 10**6,
        (bob, "PYUSD"): 0,
    }
    positions = {
        (owned.user_id, owned.position.venue, owned.position.asset, owned.position.kind): (
            owned.position.amount_raw
        )
        for owned in observations.positions
    }
    # alice's Drift lines and bob's Kamino deposit are gone; bob's Kamino debt is kept.
    assert positions == {(bob, "kamino", "USDC", "borrow"): -1_000 * 10**6}

    prices = {price.asset: price for price in observations.prices}
    assert prices["SOL"].valid is False
    assert prices["SOL"].invalid_reason == f"owner {WRONG_OWNER} is not a Pyth receiver program"
    assert (prices["USDC"].valid, prices["USDC"].price) == (True, Decimal(1))
