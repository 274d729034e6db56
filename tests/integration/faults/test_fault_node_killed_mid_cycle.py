"""An anvil killed in the middle of a cycle, and an RPC slower than its timeout: real anvil
nodes, real Postgres, a real local proxy in front of the node under test.

- Killed: the proxy kills the node behind it when the cycle's poll of that chain arrives. That
  chain's poll fails (naming the endpoint), the other chain is polled and the user published;
  as time passes the dead chain's data ages into `stale`; the node back (same port, its state
  reloaded) → the next cycle clears the flag.
- Slow: the first URL answers only after twice the timeout → the poll fails over to the second
  URL, and takes no longer than timeout × attempts + slack.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest_asyncio
from sqlalchemy import select

from aggregator.bootstrap import cycle_once, open_services
from aggregator.config import load_config
from aggregator.polling import poll_chain, poll_chains, wallet_owners
from aggregator.publish import publish
from aggregator.publish.documents import published_status
from aggregator.specs import chain_spec
from aggregator.store import models as m
from aggregator.store.accounts.users import add_user, link_wallet
from aggregator.store.database import Database
from chains.evm.anvil import DevnetRpc
from chains.evm.devnet import AnvilNode, EvmDeployment, deploy_demo_world, mine, seed_wallet
from chains.registry import build_adapter
from tests.e2e.conftest import write_config
from tests.fault_rpc_proxy import RpcProxy

WALLET = "0x000000000000000000000000000000000000Fa11"
USDC = 10**6


@pytest_asyncio.fixture(loop_scope="session")
async def two_nodes() -> AsyncIterator[tuple[tuple[AnvilNode, EvmDeployment], ...]]:
    async with AnvilNode(chain_id=31337) as a, AnvilNode(chain_id=31338) as b:
        yield (a, await deploy_demo_world(a.url)), (b, await deploy_demo_world(b.url))


async def _frank(db: Database, chains: tuple[str, ...]) -> int:
    async with db.session() as session:
        user_id = await add_user(session, "frank")
        for chain in chains:
            await link_wallet(session, user_id, chain, WALLET)
    return user_id


async def _mine_at(url: str, moment: datetime) -> None:
    """Mine the blocks the next read pins (latest-2) at `moment`."""
    async with DevnetRpc(url) as rpc:
        await rpc.call("evm_setNextBlockTimestamp", [int(moment.timestamp())])
        await rpc.call("anvil_mine", ["0x3", "0x0"])


async def test_a_node_killed_mid_cycle_fails_its_chain_only_ages_into_stale_and_recovers(
    db: Database,
    database_url: str,
    two_nodes: tuple[tuple[AnvilNode, EvmDeployment], ...],
    tmp_path: Path,
) -> None:
    (node_a, world_a), (node_b, world_b) = two_nodes
    await seed_wallet(node_a.url, world_a, WALLET, tokens={"USDC": 100 * USDC})
    await seed_wallet(node_b.url, world_b, WALLET, tokens={"USDC": 50 * USDC})
    for url in (node_a.url, node_b.url):
        await mine(url, 3)  # the reads pin latest-2
    proxy = await RpcProxy(node_b.url).start()
    config = load_config(
        write_config(tmp_path, {"a": [node_a.url], "b": [proxy.url]}, max_staleness_seconds=20)
    )
    user_id = await _frank(db, ("a", "b"))
    saved: list[str] = []

    async def kill_node_b() -> None:
        async with DevnetRpc(node_b.url) as rpc:
            saved.append(await rpc.call("anvil_dumpState"))
        await asyncio.to_thread(node_b.stop)

    try:
        async with open_services(config, database_url=database_url) as services:
            first = await cycle_once(services)
            assert first.all_ok and first.publish.users == 1

            proxy.on_request = kill_node_b  # the next request of chain b's poll kills its node
            killed = await cycle_once(services)
            polls = {p.chain: p for p in killed.polls}
            assert polls["a"].ok and not polls["b"].ok
            assert proxy.url in (polls["b"].error or "")
            assert killed.publish.users == 1 and not killed.publish.skipped
            async with db.session() as session:
                kept = await published_status(session, config, user_id)
            assert kept is not None and kept.stale is False
            assert kept.equity_usd == Decimal(150)  # b's last good data is still used
            assert kept.document["chains"]["eip155:31338"]["last_poll_failed"] is True

            # 40 s later chain a has new blocks, chain b has none: b's data is past 20 s.
            later = datetime.now(UTC) + timedelta(seconds=40)
            await _mine_at(node_a.url, later)
            assert (await poll_chain(services.database, services.adapters["a"], {})).ok
            await publish(services.database, config, as_of=later)
            async with db.session() as session:
                aged = await published_status(session, config, user_id)
            assert aged is not None and aged.stale is True
            assert aged.stale_chains == ("eip155:31338",)

            await node_b.start()  # the node back, on the same port, with its state
            async with DevnetRpc(node_b.url) as rpc:
                assert await rpc.call("anvil_loadState", [saved[0]]) is True
            await _mine_at(node_b.url, later)
            back = await poll_chains(services.database, services.adapters)
            assert all(p.ok for p in back), [p.describe() for p in back]
            await publish(services.database, config, as_of=later + timedelta(seconds=1))
    finally:
        await proxy.aclose()
    async with db.session() as session:
        recovered = await published_status(session, config, user_id)
        failed = list(await session.scalars(select(m.PollRun).where(~m.PollRun.ok)))
    assert recovered is not None and recovered.stale is False and recovered.stale_chains == ()
    assert recovered.equity_usd == Decimal(150)
    assert [(r.chain, r.endpoint is None) for r in failed] == [("b", True)]


async def test_an_rpc_slower_than_its_timeout_fails_over_within_a_bounded_time(
    db: Database,
    two_nodes: tuple[tuple[AnvilNode, EvmDeployment], ...],
    tmp_path: Path,
) -> None:
    (node, world), _ = two_nodes
    await seed_wallet(node.url, world, WALLET, tokens={"USDC": 3 * USDC})
    await mine(node.url, 3)
    timeout_seconds = 1
    slow = await RpcProxy(node.url, delay_seconds=2 * timeout_seconds + 1).start()
    path = write_config(tmp_path, {"a": [slow.url, node.url]})
    path.write_text(
        path.read_text().replace("timeout_seconds = 2", f"timeout_seconds = {timeout_seconds}")
    )
    config = load_config(path)
    user_id = await _frank(db, ("a",))
    adapter = build_adapter(chain_spec(config, "a"))
    started = time.monotonic()
    try:
        result = await poll_chain(db, adapter, (await wallet_owners(db))["a"])
    finally:
        await adapter.aclose()
        await slow.aclose()
    elapsed = time.monotonic() - started

    assert result.ok and result.endpoint == node.url, result.describe()
    assert slow.requests == 1  # retries = 0: one attempt on the slow URL, then failover
    health = adapter.endpoint_health
    assert health[slow.url].failures == 1 and "timed out" in (health[slow.url].last_error or "")
    # Two URLs × one attempt each, each bounded by the timeout, plus slack for the reads.
    attempts = 2
    assert elapsed < timeout_seconds * attempts + 3
    async with db.session() as session:
        run = (await session.scalars(select(m.PollRun))).one()
    assert (run.ok, run.endpoint) == (True, node.url)
    assert run.duration_ms < (timeout_seconds * attempts + 3) * 1000
    assert user_id > 0
