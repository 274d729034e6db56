"""A (chain, shard) whose every wallet read fails, on real anvil and Postgres: the failure is
recorded for that shard (a failed `poll_runs` row naming the shard and the error), the shard's
last good lines stay in place, the other shards are polled and written as usual, and the next
poll of the shard, once the endpoint answers, succeeds: nothing lost.

The failure is made by a real HTTP proxy in front of anvil that answers 500 to every request
naming one of that shard's wallets (a `balanceOf` inside the multicall, an `eth_getBalance`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from aiohttp import web
from sqlalchemy import func, select

from aggregator.config import load_config
from aggregator.polling.shards import poll_shard
from aggregator.specs import chain_spec
from aggregator.store import models as m
from aggregator.store.database import Database
from aggregator.store.users import add_user, link_wallet
from chains.evm.devnet import AnvilNode, EvmDeployment, deploy_demo_world, mine, seed_wallet
from chains.registry import build_adapter
from tests.e2e.conftest import write_config
from tests.fault_rpc_proxy import RpcProxy

SHARDS = 4
WALLETS = [f"0x00000000000000000000000000000000000FA1{i:02x}" for i in range(1, 9)]


class WalletFailingProxy(RpcProxy):
    """Answers 500 to any request that names one of `failing` (40 hex digits, any case)."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream)
        self.failing: set[str] = set()
        self.refused = 0

    async def _handle(self, request: web.Request) -> web.Response:
        body = (await request.read()).decode().lower()
        if any(address in body for address in self.failing):
            self.refused += 1
            return web.Response(status=500, text="upstream unavailable for this account")
        return await super()._handle(request)


@pytest_asyncio.fixture(loop_scope="session")
async def world() -> AsyncIterator[tuple[str, EvmDeployment]]:
    async with AnvilNode(chain_id=31337) as anvil:
        yield anvil.url, await deploy_demo_world(anvil.url)


async def _count(db: Database, *where: object) -> int:
    async with db.session() as session:
        query = select(func.count()).select_from(m.Balance).where(*where)  # type: ignore[arg-type]
        return int((await session.execute(query)).scalar_one())


async def test_a_shard_whose_wallets_all_fail_is_recorded_and_the_others_go_on(
    db: Database, world: tuple[str, EvmDeployment], tmp_path: Path
) -> None:
    url, deployment = world
    proxy = await WalletFailingProxy(url).start()
    config = load_config(
        write_config(tmp_path, {"a": [proxy.url]}, service={"publish_shards": SHARDS})
    )
    owners: dict[str, int] = {}
    async with db.session() as session:
        for n, wallet in enumerate(WALLETS):
            owners[wallet] = await add_user(session, f"holder{n}")
            await link_wallet(session, owners[wallet], "a", wallet)
    for wallet in WALLETS:
        await seed_wallet(url, deployment, wallet, tokens={"USDC": 7 * 10**6})
    await mine(url, 3)
    bad = owners[WALLETS[0]] % SHARDS
    bad_users = [u for u in owners.values() if u % SHARDS == bad]
    adapter = build_adapter(chain_spec(config, "a"))
    try:
        for index in range(SHARDS):
            assert (await poll_shard(db, adapter, "a", index, SHARDS)).ok
        good_lines = await _count(db, m.Balance.user_id.in_(bad_users))
        assert good_lines > 0

        proxy.failing = {w[2:].lower() for w, u in owners.items() if u % SHARDS == bad}
        await mine(url, 2)
        results = {index: await poll_shard(db, adapter, "a", index, SHARDS) for index in range(4)}
        assert proxy.refused > 0
        # That shard failed, with its error recorded against it; the others went on.
        assert not results[bad].ok and results[bad].error, results[bad].describe()
        assert all(results[i].ok for i in range(SHARDS) if i != bad)
        async with db.session() as session:
            failed = (
                (
                    await session.execute(
                        select(m.PollRun).where(m.PollRun.ok.is_(False), m.PollRun.chain == "a")
                    )
                )
                .scalars()
                .all()
            )
        assert [(run.shard_index, run.shard_count) for run in failed] == [(bad, SHARDS)]
        assert failed[0].error
        # Nothing lost: the shard's last good lines are still stored, the others read anew.
        assert await _count(db, m.Balance.user_id.in_(bad_users)) == good_lines
        others = [u for u in owners.values() if u % SHARDS != bad]
        assert await _count(db, m.Balance.user_id.in_(others)) == 2 * good_lines * 3

        # The endpoint answers again: the shard's next poll (the next round's) succeeds.
        proxy.failing = set()
        again = await poll_shard(db, adapter, "a", bad, SHARDS)
        assert again.ok, again.describe()
        assert await _count(db, m.Balance.user_id.in_(bad_users)) == 2 * good_lines
    finally:
        await adapter.aclose()
        await proxy.aclose()
