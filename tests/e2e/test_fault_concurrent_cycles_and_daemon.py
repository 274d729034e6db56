"""Two `xmargin cycle` at once and an `xmargin run` daemon beside them: each chain is polled
once in the round, and no user's status is written twice for one change (the advisory locks).

Real processes, two real anvils, real Postgres. To make the three overlap for sure, a local
proxy in front of each node holds the first request it sees (the poll of whichever process took
that chain's lock) until both cycles have exited or a few seconds have passed; the other
processes find the lock taken and skip.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from sqlalchemy import func, select

from aggregator.store import models as m
from aggregator.store.accounts.users import add_user, link_wallet
from aggregator.store.database import Database
from chains.evm.devnet import AnvilNode, deploy_demo_world, mine, seed_wallet
from tests.e2e.conftest import write_config
from tests.e2e.fault_processes import spawn
from tests.fault_rpc_proxy import RpcProxy

WALLETS = {
    "hana": "0x000000000000000000000000000000000000C001",
    "ivan": "0x000000000000000000000000000000000000C002",
}
# Longest the held poll waits for the others: they start together, so this is plenty.
HOLD_SECONDS = 6


@pytest_asyncio.fixture(loop_scope="session")
async def nodes() -> AsyncIterator[list[str]]:
    async with AnvilNode(chain_id=31337) as a, AnvilNode(chain_id=31338) as b:
        for node in (a, b):
            deployment = await deploy_demo_world(node.url)
            for wallet in WALLETS.values():
                await seed_wallet(node.url, deployment, wallet, tokens={"USDC": 10**7})
            await mine(node.url, 3)
        yield [a.url, b.url]


async def test_two_cycles_and_a_daemon_poll_each_chain_once_and_publish_each_change_once(
    db: Database, database_url: str, nodes: list[str], tmp_path: Path
) -> None:
    proxies = [await RpcProxy(url).start() for url in nodes]
    released = asyncio.Event()
    for proxy in proxies:
        proxy.on_request = released.wait
    path = write_config(
        tmp_path,
        {"a": [proxies[0].url], "b": [proxies[1].url]},
        service={"publish_interval_seconds": 3600},
    )
    # One poll job run per chain at start, then not again within the test; and an RPC timeout
    # longer than the hold, so that a held poll (when a cycle took the lock) completes.
    path.write_text(
        path.read_text()
        .replace("retries = 0", "retries = 0\npoll_interval_seconds = 3600")
        .replace("timeout_seconds = 2", f"timeout_seconds = {HOLD_SECONDS * 3}")
    )
    async with db.session() as session:
        for name, wallet in WALLETS.items():
            user_id = await add_user(session, name)
            for chain in ("a", "b"):
                await link_wallet(session, user_id, chain, wallet)

    try:
        daemon = await spawn(
            "run", "--no-api", config=path, database_url=database_url, cwd=tmp_path
        )
        cycles = [
            await spawn("cycle", config=path, database_url=database_url, cwd=tmp_path)
            for _ in range(2)
        ]
        waiting = asyncio.gather(*(c.process.wait() for c in cycles))
        try:
            await asyncio.wait_for(asyncio.shield(waiting), timeout=HOLD_SECONDS)
        except TimeoutError:
            pass  # a cycle holds a chain's poll: the proxy releases it now
        released.set()
        codes = [await c.finish() for c in cycles]
        await daemon.wait_for_line("poll a:")
        await daemon.wait_for_line("poll b:")
        await daemon.wait_for_line("publish:")
        daemon.process.send_signal(signal.SIGTERM)
        assert await daemon.finish() == 0, daemon.text
    finally:
        released.set()
        for proxy in proxies:
            await proxy.aclose()

    assert codes == [0, 0], [c.text for c in cycles]
    everyone = [daemon, *cycles]
    for chain in ("a", "b"):
        skipped = sum(f"poll {chain}: skipped" in p.text for p in everyone)
        polled = sum(f"poll {chain}: block" in p.text for p in everyone)
        assert (polled, skipped) == (1, 2), [p.text for p in everyone]
    async with db.session() as session:
        grouped = await session.execute(
            select(m.PollRun.chain, func.count()).group_by(m.PollRun.chain)
        )
        polls = {chain: count for chain, count in grouped}
        statuses = await session.scalar(select(func.count()).select_from(m.MarginStatus))
        history = list(
            await session.execute(
                select(m.MarginStatusHistory.user_id, m.MarginStatusHistory.seq).order_by(
                    m.MarginStatusHistory.id
                )
            )
        )
    assert polls == {"a": 1, "b": 1}  # one poll_run per chain in the round
    assert statuses == len(WALLETS)
    # Every history row is one change reported by exactly one process's publish pass, and no
    # user has two rows for the same status version.
    assert len(history) == sum(p.changed_by_publish() for p in everyone)
    assert len(set(history)) == len(history)
    assert {user_id for user_id, _ in history} == set(range(1, len(WALLETS) + 1))
