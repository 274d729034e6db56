"""Solana chain identity and skipped slots, on the real local RPC over LiteSVM and real Postgres.

- An endpoint whose `getGenesisHash` is not the configured `genesis_hash` (the local cluster
  configured as mainnet) is refused, naming the endpoint: the poll fails, nothing is stored.
- A slot read at `confirmed` that the finalized chain later skips is orphaned: its head is
  marked in `chain_heads`, counted in `poll_runs` and `v_chain_freshness`, and the newest good
  head is the one publish reads.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from sqlalchemy import select, text

from aggregator.polling import poll_chain
from aggregator.store import models as m
from aggregator.store.accounts.users import add_user, link_wallet
from aggregator.store.database import Database
from aggregator.store.observed.observation_reads import latest_observations
from chains.base import AdapterError, Address
from chains.solana.adapter import SolanaAdapter
from chains.solana.localnet import DEMO_SOLANA, LocalSolana, demo_spec, seed_demo_world
from chains.solana.spec import MAINNET_GENESIS


@pytest.fixture(scope="module")
def chain() -> Iterator[LocalSolana]:
    with LocalSolana() as local:
        seed_demo_world(local)
        local.finalize()
        yield local


async def _alice(db: Database, chain_key: str) -> dict[str, int]:
    async with db.session() as session:
        alice = await add_user(session, "alice")
        await link_wallet(session, alice, chain_key, DEMO_SOLANA.alice)
    return {DEMO_SOLANA.alice: alice}


async def test_an_endpoint_of_another_cluster_is_refused_naming_it(
    db: Database, chain: LocalSolana
) -> None:
    spec = dataclasses.replace(
        demo_spec((chain.url,)), chain="solana_mainnet", genesis_hash=MAINNET_GENESIS
    )
    adapter = SolanaAdapter(spec)
    try:
        with pytest.raises(AdapterError) as refused:
            await adapter.snapshot([Address(DEMO_SOLANA.alice)])
        message = str(refused.value)
        assert chain.url in message and MAINNET_GENESIS in message and "refused" in message
        owners = await _alice(db, "solana_mainnet")
        result = await poll_chain(db, adapter, owners)
    finally:
        await adapter.aclose()
    assert not result.ok and chain.url in (result.error or "")
    async with db.session() as session:
        runs = list(await session.scalars(select(m.PollRun)))
        heads = list(await session.scalars(select(m.ChainHead)))
    assert [(r.ok, chain.url in (r.error or "")) for r in runs] == [(False, True)]
    assert heads == []


async def test_the_right_genesis_is_checked_once_per_endpoint(chain: LocalSolana) -> None:
    adapter = SolanaAdapter(demo_spec((chain.url,)))
    chain.reset_rpc_calls()
    try:
        await adapter.snapshot([Address(DEMO_SOLANA.alice)])
        await adapter.snapshot([Address(DEMO_SOLANA.alice)])
    finally:
        await adapter.aclose()
    assert chain.rpc_calls()["getGenesisHash"] == 1


async def test_a_confirmed_slot_the_finalized_chain_skips_is_orphaned(
    db: Database, chain: LocalSolana
) -> None:
    spec = dataclasses.replace(
        demo_spec((chain.url,)), chain="solana_confirmed", commitment="confirmed"
    )
    owners = await _alice(db, "solana_confirmed")
    adapter = SolanaAdapter(spec)
    try:
        chain.advance_slots(1)
        first = await poll_chain(db, adapter, owners)
        assert first.ok and first.height is not None and first.orphaned_heads == 0
        skipped = first.height
        chain.advance_slots(1)
        second = await poll_chain(db, adapter, owners)  # not final yet: nothing judged
        assert second.ok and second.orphaned_heads == 0 and second.height == skipped + 1

        chain.skip_slot(skipped)  # the confirmed block at `skipped` lost its fork
        chain.finalize()
        third = await poll_chain(db, adapter, owners)
    finally:
        await adapter.aclose()

    assert third.ok and third.orphaned_heads == 1
    async with db.session() as session:
        heads = {h.height: h for h in await session.scalars(select(m.ChainHead))}
        runs = list(await session.scalars(select(m.PollRun).order_by(m.PollRun.id)))
        observed = (await latest_observations(session))["solana_confirmed"]
        freshness = (
            await session.execute(
                text(
                    "SELECT height, orphaned_heads, last_orphaned_at FROM v_chain_freshness "
                    "WHERE chain = 'solana_confirmed'"
                )
            )
        ).one()
    assert heads[skipped].orphaned_at is not None
    assert heads[skipped].orphan_reason == f"slot {skipped} was skipped by the finalized chain"
    assert heads[skipped + 1].orphaned_at is None  # a later slot is judged on its own
    # Two polls, then the one that found the skipped slot, then its immediate re-poll.
    assert [r.orphaned_heads for r in runs] == [0, 0, 1, 0]
    assert runs[2].issues[0]["subject"] == f"block {skipped}"
    assert observed.read_point.height == max(heads) and observed.read_point.height > skipped
    assert freshness.height == observed.read_point.height
    assert freshness.orphaned_heads == 1 and freshness.last_orphaned_at is not None
