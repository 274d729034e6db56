"""(chain, shard) polls on a real anvil and database: a shard poll reads only its users'
wallets, a second run at the same block is refused by the cursor fence (written once), a
publish shard values against its own newer shard head, and pruning keeps every shard's
latest head."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from sqlalchemy import func, select

from aggregator.bootstrap import Services, open_services
from aggregator.config import load_config
from aggregator.polling import poll_chain, wallet_owners
from aggregator.polling.shards import poll_shard
from aggregator.publish.passes import publish
from aggregator.store import models as m
from aggregator.store.accounts.users import add_user, link_wallet
from aggregator.store.database import Database
from aggregator.store.observed.pruning import prune_observations
from chains.evm.devnet import AnvilNode, EvmDeployment, deploy_demo_world, mine, seed_wallet
from tests.e2e.conftest import write_config

SHARDS = 4
WALLETS = [f"0x000000000000000000000000000000000000E00{i}" for i in range(1, 5)]


@pytest_asyncio.fixture(loop_scope="session")
async def world() -> AsyncIterator[tuple[str, EvmDeployment]]:
    async with AnvilNode(chain_id=31337) as anvil:
        deployment = await deploy_demo_world(anvil.url)
        for wallet in WALLETS:
            await seed_wallet(anvil.url, deployment, wallet, tokens={"USDC": 10**7})
        await mine(anvil.url, 3)
        yield anvil.url, deployment


@pytest_asyncio.fixture(loop_scope="session")
async def services(
    db: Database, database_url: str, world: tuple[str, EvmDeployment], tmp_path: Path
) -> AsyncIterator[Services]:
    path = write_config(tmp_path, {"a": [world[0]]}, service={"publish_shards": SHARDS})
    async with open_services(load_config(path), database_url=database_url) as opened:
        yield opened


async def _users(db: Database) -> dict[str, int]:
    """wallet → user id, one user per wallet."""
    owners = {}
    async with db.session() as session:
        for n, wallet in enumerate(WALLETS):
            user = await add_user(session, f"user{n}")
            await link_wallet(session, user, "a", wallet)
            owners[wallet] = user
    return owners


async def _count(db: Database, model: type[m.Base], *where: object) -> int:
    async with db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)))  # type: ignore[arg-type]


async def test_a_shard_poll_reads_its_shard_only_and_a_same_block_rerun_is_fenced(
    db: Database, services: Services, world: tuple[str, EvmDeployment]
) -> None:
    owners = await _users(db)
    user = owners[WALLETS[1]]
    index = user % SHARDS
    adapter = services.adapters["a"]
    in_shard = m.ChainHead.shard_index == index

    first = await poll_shard(db, adapter, "a", index, SHARDS)
    again = await poll_shard(db, adapter, "a", index, SHARDS)

    assert first.ok and not first.fenced and first.wallets == 1, first.describe()
    assert again.fenced and again.height == first.height, again.describe()
    assert await _count(db, m.ChainHead, in_shard) == 1
    assert await _count(db, m.PollRun, m.PollRun.shard_index == index) == 1
    async with db.session() as session:
        holders = set(await session.scalars(select(m.Balance.user_id).distinct()))
        cursor = await session.get(m.PollShardCursor, ("a", index, SHARDS))
    assert holders == {user}
    assert cursor is not None and cursor.height == first.height

    await mine(world[0], 1)
    later = await poll_shard(db, adapter, "a", index, SHARDS)
    assert later.ok and not later.fenced and later.height == first.height + 1
    assert await _count(db, m.ChainHead, in_shard) == 2


async def test_a_publish_shard_reads_its_newer_shard_head_and_the_others_the_whole_chain(
    db: Database, services: Services, world: tuple[str, EvmDeployment]
) -> None:
    url, deployment = world
    owners = await _users(db)
    mover, other = owners[WALLETS[0]], owners[WALLETS[2]]
    assert mover % SHARDS != other % SHARDS
    adapter = services.adapters["a"]
    whole = await poll_chain(db, adapter, (await wallet_owners(db))["a"])
    await seed_wallet(url, deployment, WALLETS[0], tokens={"USDC": 5 * 10**6})
    await mine(url, 3)
    shard = await poll_shard(db, adapter, "a", mover % SHARDS, SHARDS)
    assert whole.ok and shard.ok and shard.height is not None and whole.height is not None
    assert shard.height > whole.height

    await publish(db, services.config)

    async with db.session() as session:
        heads = {
            head.shard_index: head.id
            for head in await session.scalars(select(m.ChainHead).order_by(m.ChainHead.id))
        }
        statuses = {row.user_id: row for row in await session.scalars(select(m.MarginStatus))}
        markets = {row.id: row.inputs for row in await session.scalars(select(m.ValuationMarket))}
    moved, stayed = statuses[mover].inputs, statuses[other].inputs
    assert moved["heads"] == {"a": heads[mover % SHARDS]}
    assert stayed["heads"] == {"a": heads[None]}
    # Each status refers to the market whose read point is the head its lines were read at.
    assert markets[moved["market"]]["chains"]["a"]["height"] == shard.height
    assert markets[stayed["market"]]["chains"]["a"]["height"] == whole.height


async def test_pruning_keeps_the_latest_head_of_every_shard_and_of_the_whole_chain(
    db: Database, services: Services, world: tuple[str, EvmDeployment]
) -> None:
    owners = await _users(db)
    adapter = services.adapters["a"]
    shards = sorted({user % SHARDS for user in owners.values()})
    for _ in range(2):
        await poll_chain(db, adapter, (await wallet_owners(db))["a"])
        for index in shards:
            await poll_shard(db, adapter, "a", index, SHARDS)
        await mine(world[0], 1)

    async with db.session() as session:
        newest = {
            (head.shard_index, head.shard_count): head.id
            for head in await session.scalars(select(m.ChainHead).order_by(m.ChainHead.id))
        }
        await prune_observations(session, 1)
    async with db.session() as session:
        kept = {
            (head.shard_index, head.shard_count): head.id
            for head in await session.scalars(select(m.ChainHead))
        }
    assert kept == newest
    assert set(kept) == {(None, None), *((index, SHARDS) for index in shards)}
