"""A price move seen by a (chain, shard) poll revalues the exposed users, through the queue
(real anvil, real Postgres, a real procrastinate worker in this process): in the "shards" and
"activity" rounds no whole-chain poll runs, so a `poll_shard` job of a price chain defers the
`reprice` job itself. The ETH feed moves, one shard is polled (not the ETH holder's), and the
worker then runs `reprice`: the ETH holder's status is rewritten with the new price, the USDC
holder's is left as it was."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from procrastinate import App

from aggregator.bootstrap import Services
from aggregator.config import load_config
from aggregator.polling.shards import poll_shard
from aggregator.publish import publish
from aggregator.specs import chain_spec
from aggregator.store.accounts.users import add_user, link_wallet
from aggregator.store.database import Database
from aggregator.store.published.status_reads import get_status
from aggregator.work.app import build_app
from aggregator.work.locks import POLL_SHARD, REPRICE
from aggregator.work.refresh import defer_shard_poll
from chains.evm.devnet import AnvilNode, EvmDeployment, deploy_demo_world, mine, seed_wallet
from chains.evm.devnet import set_price as set_feed_answer
from chains.registry import build_adapter
from tests.e2e.conftest import write_config
from tests.queue_jobs import empty_queue, run_due_jobs
from tests.reprice_checks import assert_only_the_eth_holder_repriced

SHARDS = 2
ETH_HOLDER = "0x00000000000000000000000000000000000E7501"
USDC_HOLDER = "0x00000000000000000000000000000000000Da501"


@pytest_asyncio.fixture(loop_scope="session")
async def node() -> AsyncIterator[tuple[AnvilNode, EvmDeployment]]:
    async with AnvilNode(chain_id=31337) as anvil:
        yield anvil, await deploy_demo_world(anvil.url)


async def _jobs(app: App) -> list[tuple[str, str]]:
    rows = await app.connector.execute_query_all_async(
        "SELECT task_name, status::text AS status FROM procrastinate_jobs ORDER BY id"
    )
    return [(row["task_name"], row["status"]) for row in rows]


async def test_a_shard_poll_that_reads_a_moved_price_defers_a_repricing_of_the_exposed(
    db: Database, database_url: str, node: tuple[AnvilNode, EvmDeployment], tmp_path: Path
) -> None:
    anvil, deployment = node
    path = write_config(tmp_path, {"local": [anvil.url]}, service={"publish_shards": SHARDS})
    # No periodic dispatcher or reaper: the only jobs are the ones this test defers.
    work = '\n[work]\nround_polls = "shards"\ndispatch_cron = ""\nreap_cron = ""\n'
    path.write_text(path.read_text() + work)
    config = load_config(path)
    async with db.session() as session:
        eth_user = await add_user(session, "eth-holder")
        usdc_user = await add_user(session, "usdc-holder")
        if eth_user % SHARDS == usdc_user % SHARDS:  # one user per shard
            usdc_user = await add_user(session, "usdc-holder-2")
        await link_wallet(session, eth_user, "local", ETH_HOLDER)
        await link_wallet(session, usdc_user, "local", USDC_HOLDER)
    await seed_wallet(anvil.url, deployment, ETH_HOLDER, native_wei=2 * 10**18)
    await seed_wallet(anvil.url, deployment, USDC_HOLDER, tokens={"USDC": 5_000 * 10**6})
    adapter = build_adapter(chain_spec(config, "local"))
    app = build_app(database_url, config, max_connections=3)
    try:
        await set_feed_answer(anvil.url, deployment, "ETH", 3_000_00000000)
        await mine(anvil.url, 3)
        for index in range(SHARDS):
            assert (await poll_shard(db, adapter, "local", index, SHARDS)).ok
        await publish(db, config)
        async with db.session() as session:
            eth_before = await get_status(session, eth_user)
            usdc_before = await get_status(session, usdc_user)
        assert eth_before is not None and usdc_before is not None

        await set_feed_answer(anvil.url, deployment, "ETH", 3_300_00000000)
        await mine(anvil.url, 3)
        async with app.open_async():
            await empty_queue(app)
            # The USDC holder's shard: the poll reads the chain's prices, not the ETH
            # holder's balance.
            assert await defer_shard_poll(app, "local", usdc_user % SHARDS, SHARDS)
            services = Services(config=config, database=db, adapters={"local": adapter})
            await run_due_jobs(app, services)
            jobs = await _jobs(app)
    finally:
        await adapter.aclose()
        await set_feed_answer(anvil.url, deployment, "ETH", 3_000_00000000)

    assert jobs == [(POLL_SHARD, "succeeded"), (REPRICE, "succeeded")], jobs
    await assert_only_the_eth_holder_repriced(db, eth_user, usdc_user, eth_before, usdc_before)
