"""A price change on the local oracle revalues only the users exposed to it (real anvil, real
Postgres): the ETH feed moves, a poll reads it, `reprice` values and writes the ETH holder and
neither reads nor values the user who holds only USDC, without reading any chain; and a publish
pass that read its market before the move, writing after the repricing, leaves the repriced
row as it is."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest_asyncio
from sqlalchemy import func, select

from aggregator.config import load_config
from aggregator.polling import poll_chain
from aggregator.publish import publish
from aggregator.publish.inputs import read_market
from aggregator.publish.passes import publish_shard
from aggregator.publish.reprice import reprice
from aggregator.specs import chain_spec
from aggregator.store import models as m
from aggregator.store.accounts.users import add_user, link_wallet
from aggregator.store.database import Database
from aggregator.store.published.markets import record_market
from aggregator.store.published.status_reads import get_status
from chains.evm.devnet import AnvilNode, EvmDeployment, deploy_demo_world, mine, seed_wallet
from chains.evm.devnet import set_price as set_feed_answer
from chains.registry import build_adapter
from tests.e2e.conftest import write_config
from tests.reprice_checks import assert_only_the_eth_holder_repriced

ETH_HOLDER = "0x00000000000000000000000000000000000E7401"
USDC_HOLDER = "0x00000000000000000000000000000000000Da401"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def node() -> AsyncIterator[tuple[AnvilNode, EvmDeployment]]:
    async with AnvilNode(chain_id=31337) as anvil:
        yield anvil, await deploy_demo_world(anvil.url)


async def _rows(db: Database, model: type[m.Base]) -> int:
    async with db.session() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def test_a_price_change_on_the_local_oracle_revalues_only_exposed_users(
    db: Database, node: tuple[AnvilNode, EvmDeployment], tmp_path: Path
) -> None:
    anvil, deployment = node
    config = load_config(write_config(tmp_path, {"local": [anvil.url]}))
    async with db.session() as session:
        eth_user = await add_user(session, "eth-holder")
        usdc_user = await add_user(session, "usdc-holder")
        await link_wallet(session, eth_user, "local", ETH_HOLDER)
        await link_wallet(session, usdc_user, "local", USDC_HOLDER)
    await seed_wallet(anvil.url, deployment, ETH_HOLDER, native_wei=2 * 10**18)
    await seed_wallet(anvil.url, deployment, USDC_HOLDER, tokens={"USDC": 5_000 * 10**6})
    owners = {ETH_HOLDER: eth_user, USDC_HOLDER: usdc_user}
    adapter = build_adapter(chain_spec(config, "local"))
    try:
        await set_feed_answer(anvil.url, deployment, "ETH", 3_000_00000000)
        await mine(anvil.url, 3)
        assert (await poll_chain(db, adapter, owners)).ok
        await publish(db, config)
        async with db.session() as session:
            eth_before = await get_status(session, eth_user)
            usdc_before = await get_status(session, usdc_user)
        assert eth_before is not None and usdc_before is not None

        # Nothing moved yet: a repricing values nobody.
        idle = await reprice(db, config)
        assert idle.moved == () and idle.users == 0

        # A publish pass starts here: it reads and stores its market before the move.
        late = await read_market(db, config, datetime.now(UTC))
        async with db.session() as session:
            late_id = await record_market(session, late.digest, late.as_of, late.to_document())

        # The oracle moves ETH by +10%; a poll of the chain reads the new answer.
        await set_feed_answer(anvil.url, deployment, "ETH", 3_300_00000000)
        await mine(anvil.url, 3)
        assert (await poll_chain(db, adapter, owners)).ok
        heads, balances = await _rows(db, m.ChainHead), await _rows(db, m.Balance)

        report = await reprice(db, config)
        async with db.session() as session:
            repriced = await get_status(session, eth_user)
        # The late pass writes its shards only now, with the old ETH price.
        count = config.service.publish_shards
        late_shards = [
            await publish_shard(db, config, late, late_id, index, count, set())
            for index in range(count)
        ]
    finally:
        await adapter.aclose()
        await set_feed_answer(anvil.url, deployment, "ETH", 3000_00000000)

    assert "ETH" in report.moved and "USDC" not in report.moved, report.describe()
    # Only the ETH holder was read and valued, and written.
    assert report.users == 1 and report.written == 1, report.describe()
    # From stored observations: no new head read, no balance stored.
    assert (await _rows(db, m.ChainHead), await _rows(db, m.Balance)) == (heads, balances)
    eth_after, usdc_after = await assert_only_the_eth_holder_repriced(
        db, eth_user, usdc_user, eth_before, usdc_before
    )
    # The USDC holder's row is untouched: same numbers too.
    assert usdc_after.equity_usd == usdc_before.equity_usd
    # The late pass valued the ETH holder at the old price, later than the repricing wrote
    # the new one: it does not put the old price back.
    assert repriced is not None and sum(shard.users for shard in late_shards) == 2
    assert (eth_after.seq, eth_after.as_of) == (repriced.seq, repriced.as_of)
    assert sum(shard.written for shard in late_shards) == 0
