"""A (chain, shard) whose every wallet read fails, on real anvil and Postgres: the failure is
recorded for that shard (a failed `poll_runs` row naming the shard and the error), the shard's
last good lines stay in place, the other shards are polled and written as usual, and the next
poll of the shard, once the endpoint answers, succeeds: nothing lost.

Through the queue (a real procrastinate worker in this process), the failed shard's poll is
retried within budget: each failed run defers the next, 5, 10, 20 and 40 s later, and after the
last the shard is left to the next round; a retry once the endpoint answers writes the lines.

The failure is made by a real HTTP proxy in front of anvil that answers 500 to every request
naming one of that shard's wallets (a `balanceOf` inside the multicall, an `eth_getBalance`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from aiohttp import web
from procrastinate import App
from sqlalchemy import func, select

from aggregator.bootstrap import Services
from aggregator.config import load_config
from aggregator.polling.shards import poll_shard
from aggregator.specs import chain_spec
from aggregator.store import models as m
from aggregator.store.accounts.users import add_user, link_wallet
from aggregator.store.database import Database
from aggregator.work.app import build_app
from aggregator.work.locks import POLL_SHARD
from aggregator.work.refresh import defer_shard_poll
from aggregator.work.tasks import POLL_SHARD_RETRIES
from chains.evm.devnet import AnvilNode, EvmDeployment, deploy_demo_world, mine, seed_wallet
from chains.registry import build_adapter
from tests.e2e.conftest import write_config
from tests.fault_rpc_proxy import RpcProxy
from tests.queue_jobs import empty_queue, run_due_jobs

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


async def _shard_jobs(app: App) -> list[tuple[str, int, bool]]:
    """(status, attempt, due now) of every poll_shard job, oldest first."""
    rows = await app.connector.execute_query_all_async(
        "SELECT status::text AS status, args, coalesce(scheduled_at <= now(), true) AS due "
        "FROM procrastinate_jobs WHERE task_name = %(task)s ORDER BY id",
        task=POLL_SHARD,
    )
    return [(row["status"], row["args"].get("attempt", 0), row["due"]) for row in rows]


async def test_a_failed_shard_poll_is_retried_within_budget_through_the_queue(
    db: Database, database_url: str, world: tuple[str, EvmDeployment], tmp_path: Path
) -> None:
    url, deployment = world
    proxy = await WalletFailingProxy(url).start()
    path = write_config(tmp_path, {"a": [proxy.url]}, service={"publish_shards": SHARDS})
    path.write_text(path.read_text() + '\n[work]\ndispatch_cron = ""\nreap_cron = ""\n')
    config = load_config(path)
    owners: dict[str, int] = {}
    async with db.session() as session:
        for n, wallet in enumerate(WALLETS[:2]):
            owners[wallet] = await add_user(session, f"retried{n}")
            await link_wallet(session, owners[wallet], "a", wallet)
    await seed_wallet(url, deployment, WALLETS[0], tokens={"USDC": 7 * 10**6})
    await mine(url, 3)
    user = owners[WALLETS[0]]
    bad = user % SHARDS
    adapter = build_adapter(chain_spec(config, "a"))
    app = build_app(database_url, config, max_connections=3)
    services = Services(config=config, database=db, adapters={"a": adapter})

    async def make_due() -> None:
        await app.connector.execute_query_async(
            "UPDATE procrastinate_jobs SET scheduled_at = now() WHERE status = 'todo'"
        )

    try:
        async with app.open_async():
            await empty_queue(app)
            proxy.failing = {WALLETS[0][2:].lower()}
            assert await defer_shard_poll(app, "a", bad, SHARDS)
            await run_due_jobs(app, services)
            # The run failed (recorded), and deferred its retry: queued, not yet due.
            assert await _shard_jobs(app) == [("succeeded", 0, True), ("todo", 1, False)]
            assert await _count(db, m.Balance.user_id == user) == 0
            # Every retry that fails defers the next, until the budget is spent.
            for attempt in range(1, POLL_SHARD_RETRIES + 1):
                await make_due()
                await run_due_jobs(app, services)
                jobs = await _shard_jobs(app)
                assert [job[0] for job in jobs[: attempt + 1]] == ["succeeded"] * (attempt + 1)
            jobs = await _shard_jobs(app)
            assert [attempt for _, attempt, _ in jobs] == list(range(POLL_SHARD_RETRIES + 1))
            assert all(status == "succeeded" for status, _, _ in jobs)  # none left queued
            async with db.session() as session:
                failed = await session.scalar(
                    select(func.count())
                    .select_from(m.PollRun)
                    .where(m.PollRun.ok.is_(False), m.PollRun.shard_index == bad)
                )
            assert failed == POLL_SHARD_RETRIES + 1  # every attempt recorded

            # A new failure, then the endpoint answers again: the retry writes the lines.
            assert await defer_shard_poll(app, "a", bad, SHARDS)
            await run_due_jobs(app, services)
            proxy.failing = set()
            await make_due()
            await run_due_jobs(app, services)
            assert (await _shard_jobs(app))[-1] == ("succeeded", 1, True)
            assert await _count(db, m.Balance.user_id == user) > 0
    finally:
        await adapter.aclose()
        await proxy.aclose()
