"""The EVM head follower on a real anvil, database and queue: a transfer mined on the chain
refreshes only the shard of the linked wallet it touched; a logs endpoint that refuses large
ranges (a real HTTP proxy in front of anvil) gets halved ranges and the same answer; a gap
left while the follower was not running is back-filled from its cursor; an "activity" round
defers the follower and sweeps each shard once per sweep period."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from aiohttp import web
from procrastinate import App

from aggregator.bootstrap import Services
from aggregator.config import LoadedConfig, load_config
from aggregator.specs import chain_spec
from aggregator.store.accounts.users import add_user, link_wallet
from aggregator.store.database import Database
from aggregator.work.app import build_app
from aggregator.work.dispatch import dispatch_round
from aggregator.work.follow import follow_chain, stored_cursor
from aggregator.work.locks import POLL_SHARD, SWEEP
from chains.evm.devnet import AnvilNode, EvmDeployment, deploy_demo_world, mine, seed_wallet
from chains.registry import build_adapter
from tests.e2e.conftest import write_config
from tests.fault_rpc_proxy import RpcProxy
from tests.queue_jobs import empty_queue, run_due_jobs

SHARDS = 4
WALLETS = [f"0x000000000000000000000000000000000000F00{i}" for i in range(1, 5)]
STRANGER = "0x000000000000000000000000000000000000BEEF"
LOOK_BEHIND = 2  # write_config's finality is latest-2


class RangeLimitedProxy(RpcProxy):
    """Answers `eth_getLogs` over more than `max_blocks` blocks with the JSON-RPC error a
    provider gives; forwards everything else to the node."""

    def __init__(self, upstream: str, max_blocks: int) -> None:
        super().__init__(upstream)
        self.max_blocks = max_blocks
        self.refused = 0
        self.ranges: list[tuple[int, int]] = []

    async def _handle(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        if isinstance(body, dict) and body.get("method") == "eth_getLogs":
            query = body["params"][0]
            first, last = int(query["fromBlock"], 16), int(query["toBlock"], 16)
            if last - first + 1 > self.max_blocks:
                self.refused += 1
                error = {
                    "code": -32005,
                    "message": f"query exceeds max block range {self.max_blocks}",
                }
                return web.json_response({"jsonrpc": "2.0", "id": body["id"], "error": error})
            self.ranges.append((first, last))
        return await super()._handle(request)


@pytest_asyncio.fixture(loop_scope="session")
async def world() -> AsyncIterator[tuple[str, EvmDeployment]]:
    async with AnvilNode(chain_id=31337) as anvil:
        deployment = await deploy_demo_world(anvil.url)
        await mine(anvil.url, 3)
        yield anvil.url, deployment


def _config(tmp_path: Path, url: str, **work: int) -> LoadedConfig:
    path = write_config(tmp_path, {"a": [url]}, service={"publish_shards": SHARDS})
    extra = "".join(f"{key} = {value}\n" for key, value in work.items())
    # No periodic dispatcher or reaper: the tests defer and run the jobs themselves.
    quiet = 'dispatch_cron = ""\nreap_cron = ""\n'
    path.write_text(path.read_text() + '\n[work]\nround_polls = "activity"\n' + quiet + extra)
    return load_config(path)


@pytest_asyncio.fixture(loop_scope="session")
async def app(db: Database, database_url: str, tmp_path: Path) -> AsyncIterator[App]:
    config = _config(tmp_path, "http://127.0.0.1:1")
    work = build_app(database_url, config, max_connections=2)
    async with work.open_async():
        await empty_queue(work)
        yield work


async def _users(db: Database) -> dict[str, int]:
    owners = {}
    async with db.session() as session:
        for n, wallet in enumerate(WALLETS):
            user = await add_user(session, f"user{n}")
            await link_wallet(session, user, "a", wallet)
            owners[wallet] = user
    return owners


async def _job_states(app: App, task: str) -> list[str]:
    rows = await app.connector.execute_query_all_async(
        "SELECT status::text AS status FROM procrastinate_jobs WHERE task_name = %(task)s "
        "ORDER BY id",
        task=task,
    )
    return [row["status"] for row in rows]


async def _shard_jobs(app: App) -> list[tuple[int, int]]:
    """(shard index, shard count) of every queued poll_shard job."""
    rows = await app.connector.execute_query_all_async(
        "SELECT args FROM procrastinate_jobs WHERE task_name = %(task)s ORDER BY id",
        task=POLL_SHARD,
    )
    return [(row["args"]["index"], row["args"]["count"]) for row in rows]


async def test_a_mined_transfer_refreshes_only_the_shard_of_the_wallet_it_touched(
    db: Database, app: App, world: tuple[str, EvmDeployment], tmp_path: Path
) -> None:
    url, deployment = world
    owners = await _users(db)
    config = _config(tmp_path, url)
    start = await follow_chain(app, db, config, "a")
    assert start.error is None and start.first is None  # the first run only sets the cursor

    await seed_wallet(url, deployment, WALLETS[2], tokens={"USDC": 10**6})
    await seed_wallet(url, deployment, STRANGER, tokens={"USDC": 10**6})  # nobody's wallet
    head = await mine(url, LOOK_BEHIND)
    report = await follow_chain(app, db, config, "a")

    assert report.error is None, report.describe()
    assert report.touched == 2  # the wallet and the stranger
    assert report.shards == [owners[WALLETS[2]] % SHARDS]
    assert await _shard_jobs(app) == [(owners[WALLETS[2]] % SHARDS, SHARDS)]
    assert await stored_cursor(db, "a") == head - LOOK_BEHIND


async def test_a_range_the_endpoint_refuses_is_halved_and_retried(
    db: Database, app: App, world: tuple[str, EvmDeployment], tmp_path: Path
) -> None:
    url, deployment = world
    owners = await _users(db)
    proxy = await RangeLimitedProxy(url, max_blocks=4).start()
    try:
        config = _config(tmp_path, proxy.url, follow_max_blocks=16)
        await follow_chain(app, db, config, "a")
        before = await stored_cursor(db, "a")
        await mine(url, 9)
        await seed_wallet(url, deployment, WALLETS[0], tokens={"USDC": 10**6})
        head = await mine(url, 5 + LOOK_BEHIND)
        report = await follow_chain(app, db, config, "a")
    finally:
        await proxy.aclose()

    assert before is not None
    assert report.error is None, report.describe()
    assert proxy.refused >= 2 and report.shrinks == proxy.refused
    assert all(last - first + 1 <= 4 for first, last in proxy.ranges)
    # The ranges read cover the gap exactly once, in order.
    covered = [block for first, last in proxy.ranges for block in range(first, last + 1)]
    assert covered == list(range(before + 1, head - LOOK_BEHIND + 1))
    assert report.shards == [owners[WALLETS[0]] % SHARDS]


async def test_a_gap_is_back_filled_from_the_last_processed_block(
    db: Database, app: App, world: tuple[str, EvmDeployment], tmp_path: Path
) -> None:
    url, deployment = world
    owners = await _users(db)
    config = _config(tmp_path, url, follow_max_blocks=8)
    await follow_chain(app, db, config, "a")
    before = await stored_cursor(db, "a")
    # The follower is down while three wallets move, far apart.
    await seed_wallet(url, deployment, WALLETS[0], tokens={"USDC": 10**6})
    await mine(url, 20)
    await seed_wallet(url, deployment, WALLETS[1], tokens={"USDC": 10**6})
    await mine(url, 20)
    await seed_wallet(url, deployment, WALLETS[3], tokens={"USDC": 10**6})
    head = await mine(url, LOOK_BEHIND)

    report = await follow_chain(app, db, config, "a")

    assert before is not None and report.error is None, report.describe()
    assert (report.first, report.last) == (before + 1, head - LOOK_BEHIND)
    moved = {owners[WALLETS[i]] % SHARDS for i in (0, 1, 3)}
    assert report.shards == sorted(moved)
    assert sorted(await _shard_jobs(app)) == sorted((index, SHARDS) for index in moved)
    assert await stored_cursor(db, "a") == head - LOOK_BEHIND


async def test_an_activity_round_defers_the_follower_and_sweeps_every_shard_once_per_period(
    db: Database, app: App, world: tuple[str, EvmDeployment], tmp_path: Path
) -> None:
    owners = await _users(db)
    config = _config(tmp_path, world[0], sweep_seconds=3600)
    shards = sorted({user % SHARDS for user in owners.values()})

    first = await dispatch_round(app, config, db)
    again = await dispatch_round(app, config, db)
    assert "follow:a" in first.deferred and "sweep:a" in first.deferred
    # Both still wait in the queue: the second round defers neither again.
    assert {"follow:a", "sweep:a"} <= set(again.still_queued)
    assert await _shard_jobs(app) == []  # the sweep job defers the shard polls

    # A real worker runs them: the follower, the sweep, and the polls the sweep deferred.
    adapter = build_adapter(chain_spec(config, "a"))
    try:
        await run_due_jobs(app, Services(config=config, database=db, adapters={"a": adapter}))
    finally:
        await adapter.aclose()
    assert sorted(await _shard_jobs(app)) == [(index, SHARDS) for index in shards]
    assert await _job_states(app, SWEEP) == ["succeeded"]

    # The period has not passed: the next round defers no sweep and no shard poll.
    later = await dispatch_round(app, config, db)
    assert "follow:a" in later.deferred
    assert not any(
        lock.startswith(("poll:a:", "sweep:")) for lock in [*later.deferred, *later.still_queued]
    )
    assert len(await _shard_jobs(app)) == len(shards)
