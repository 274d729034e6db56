"""Reorgs on a real anvil read at `latest`, stored in real Postgres.

`evm_snapshot` / `evm_revert` and a different transfer mined at the same heights give the same
block numbers different hashes. The poll re-reads the canonical hash of the stored heads in the
batch of its new pin: a replaced head is orphaned (`chain_heads.orphaned_at`), counted in
`poll_runs.orphaned_heads` and `v_chain_freshness`, the chain is re-polled at once, and no
status is ever valued from the orphaned balances (or, if one was already published, the next
pass replaces it and history records the change). A node that answers a head below the stored
one (reverted without new blocks: a node that is behind) is refused, naming it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import select, text

from aggregator.config import LoadedConfig, load_config
from aggregator.polling import poll_chain
from aggregator.publish import publish
from aggregator.specs import chain_spec
from aggregator.store import models as m
from aggregator.store.accounts.users import add_user, link_wallet
from aggregator.store.database import Database
from aggregator.store.observed.observation_reads import latest_observations
from aggregator.store.published.status_reads import get_status, status_history
from chains.evm.anvil import DevnetRpc
from chains.evm.devnet import AnvilNode, EvmDeployment, deploy_demo_world, mine, seed_wallet
from chains.registry import build_adapter
from tests.e2e.conftest import write_config

WALLET = "0x000000000000000000000000000000000000bEEF"
USDC = 10**6


@pytest_asyncio.fixture(loop_scope="session")
async def node() -> AsyncIterator[tuple[AnvilNode, EvmDeployment]]:
    async with AnvilNode(chain_id=31337) as anvil:
        yield anvil, await deploy_demo_world(anvil.url)


def _latest_config(tmp_path: Path, url: str) -> LoadedConfig:
    path = write_config(tmp_path, {"local": [url]})
    path.write_text(path.read_text().replace('"latest-2"', '"latest"'), encoding="utf-8")
    return load_config(path)


async def _frank(db: Database) -> int:
    async with db.session() as session:
        user_id = await add_user(session, "frank")
        await link_wallet(session, user_id, "local", WALLET)
    return user_id


async def _block_hash(url: str, height: int) -> str:
    async with DevnetRpc(url) as rpc:
        block = await rpc.call("eth_getBlockByNumber", [hex(height), False])
    return str(block["hash"])


async def _usdc_equity(db: Database, user_id: int) -> Decimal:
    async with db.session() as session:
        status = await get_status(session, user_id)
    assert status is not None
    return status.equity_usd


async def _doomed_credit(url: str, deployment: EvmDeployment, usdc: int) -> tuple[str, int, str]:
    """Take an `evm_snapshot`, then mine a credit of `usdc`; returns the snapshot id, the new
    head's height and its hash (the block a revert will replace)."""
    async with DevnetRpc(url) as rpc:
        snapshot_id = str(await rpc.call("evm_snapshot"))
    await seed_wallet(url, deployment, WALLET, tokens={"USDC": usdc})
    height = await mine(url, 1)
    return snapshot_id, height, await _block_hash(url, height)


async def _revert(url: str, deployment: EvmDeployment, snapshot_id: str, usdc: int) -> int:
    async with DevnetRpc(url) as rpc:
        assert await rpc.call("evm_revert", [snapshot_id]) is True
    await seed_wallet(url, deployment, WALLET, tokens={"USDC": usdc})
    return await mine(url, 1)


@pytest.mark.parametrize("published_before_the_reorg", [False, True])
async def test_a_reorged_head_is_orphaned_and_no_status_is_left_on_its_balances(
    db: Database,
    node: tuple[AnvilNode, EvmDeployment],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    published_before_the_reorg: bool,
) -> None:
    anvil, deployment = node
    await seed_wallet(anvil.url, deployment, WALLET, tokens={"USDC": 100 * USDC})
    await mine(anvil.url, 1)
    config = _latest_config(tmp_path, anvil.url)
    user_id = await _frank(db)
    adapter = build_adapter(chain_spec(config, "local"))
    try:
        base = await poll_chain(db, adapter, {WALLET: user_id})
        assert base.ok and base.orphaned_heads == 0
        await publish(db, config)
        assert await _usdc_equity(db, user_id) == Decimal(100)

        snapshot_id, height, replaced = await _doomed_credit(anvil.url, deployment, 900 * USDC)
        doomed = await poll_chain(db, adapter, {WALLET: user_id})
        assert doomed.ok and doomed.height == height
        if published_before_the_reorg:
            await publish(db, config)
            assert await _usdc_equity(db, user_id) == Decimal(1000)

        # The same height again, now holding a different transfer: a different block hash.
        assert await _revert(anvil.url, deployment, snapshot_id, 5 * USDC) == height
        canonical = await _block_hash(anvil.url, height)
        assert canonical != replaced
        with caplog.at_level(logging.WARNING, logger="xmargin.polling"):
            found = await poll_chain(db, adapter, {WALLET: user_id})
        assert found.ok and found.orphaned_heads == 1 and found.height == height
        await publish(db, config)
    finally:
        await adapter.aclose()

    assert await _usdc_equity(db, user_id) == Decimal(105)
    async with db.session() as session:
        history = await status_history(session, user_id, 10)
        heads = list(await session.scalars(select(m.ChainHead).order_by(m.ChainHead.id)))
        runs = list(await session.scalars(select(m.PollRun).order_by(m.PollRun.id)))
        observed = (await latest_observations(session))["local"]
        freshness = (
            await session.execute(
                text(
                    "SELECT height, block_hash, orphaned_heads, last_orphaned_at "
                    "FROM v_chain_freshness WHERE chain = 'local'"
                )
            )
        ).one()
    equities = sorted(h.equity_usd for h in history)
    if published_before_the_reorg:
        # Published from the head that turned out orphaned, then re-published from good data.
        assert equities == [Decimal(100), Decimal(105), Decimal(1000)]
    else:
        assert equities == [Decimal(100), Decimal(105)]  # 1000 was never published
    # The base poll, the doomed one, the one that found the reorg, and its immediate re-poll.
    assert [r.orphaned_heads for r in runs] == [0, 0, 1, 0]
    assert runs[2].issues[0]["subject"] == f"block {height}"
    orphaned = [h for h in heads if h.orphaned_at is not None]
    assert [(h.height, h.hash) for h in orphaned] == [(height, replaced)]
    assert orphaned[0].orphan_reason is not None and canonical in orphaned[0].orphan_reason
    assert [h.hash for h in heads if h.orphaned_at is None][-1] == canonical
    assert heads[-1].parent_hash == await _block_hash(anvil.url, height - 1)
    assert observed.read_point.block_hash == canonical
    assert [b.balance.amount_raw for b in observed.balances if b.balance.asset == "USDC"] == [
        105 * USDC
    ]
    assert (freshness.height, freshness.block_hash) == (height, canonical)
    assert freshness.orphaned_heads == 1 and freshness.last_orphaned_at is not None
    assert any(f"head {height} orphaned" in r.getMessage() for r in caplog.records)


async def test_a_node_behind_the_stored_head_is_refused_and_the_last_good_data_stays(
    db: Database, node: tuple[AnvilNode, EvmDeployment], tmp_path: Path
) -> None:
    anvil, deployment = node
    config = _latest_config(tmp_path, anvil.url)
    user_id = await _frank(db)
    adapter = build_adapter(chain_spec(config, "local"))
    try:
        async with DevnetRpc(anvil.url) as rpc:
            snapshot_id = await rpc.call("evm_snapshot")
        await seed_wallet(anvil.url, deployment, WALLET, tokens={"USDC": 7 * USDC})
        top = await mine(anvil.url, 3)
        assert (await poll_chain(db, adapter, {WALLET: user_id})).ok
        async with DevnetRpc(anvil.url) as rpc:  # the node now answers an older head
            assert await rpc.call("evm_revert", [snapshot_id]) is True
        refused = await poll_chain(db, adapter, {WALLET: user_id})
    finally:
        await adapter.aclose()

    assert not refused.ok and refused.refused
    assert refused.error is not None and anvil.url in refused.error and str(top) in refused.error
    async with db.session() as session:
        runs = list(await session.scalars(select(m.PollRun).order_by(m.PollRun.id)))
        heads = list(await session.scalars(select(m.ChainHead)))
        observed = (await latest_observations(session))["local"]
    assert [(r.ok, r.endpoint) for r in runs] == [(True, anvil.url), (False, anvil.url)]
    assert [h.orphaned_at for h in heads] == [None]  # a node behind orphans nothing
    assert observed.read_point.height == top and observed.failures_since == 1
