"""A daemon stopped with SIGTERM, or killed with SIGKILL, in the middle of a publish pass:
the data stays consistent (the pass commits whole or not at all: the SIGTERM'd daemon finishes
its pass and exits 0, the killed one leaves an open transaction that Postgres rolls back), and a
new daemon carries
on: no advisory lock is left behind, every user is valued.

Real `xmargin run` processes, real anvil, real Postgres. The window is hit deterministically: a
second connection holds `margin_status_history` in EXCLUSIVE mode (reads pass, writes wait), so
the daemon's publish transaction, having begun writing, waits there; the signal is sent while
it does (seen in `pg_stat_activity`), then the lock is released.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest
import pytest_asyncio
from sqlalchemy import func, select

from aggregator.store import models as m
from aggregator.store.accounts.users import add_user, link_wallet
from aggregator.store.database import Database, libpq_url
from chains.evm.devnet import AnvilNode, deploy_demo_world, mine, seed_wallet
from tests.e2e.conftest import write_config
from tests.e2e.fault_processes import spawn

WALLETS = {
    "jude": "0x000000000000000000000000000000000000D001",
    "kyla": "0x000000000000000000000000000000000000D002",
}

Conn = psycopg.AsyncConnection[tuple[object, ...]]


@pytest_asyncio.fixture(loop_scope="session")
async def anvil_url() -> AsyncIterator[str]:
    async with AnvilNode(chain_id=31337) as node:
        deployment = await deploy_demo_world(node.url)
        for wallet in WALLETS.values():
            await seed_wallet(node.url, deployment, wallet, tokens={"USDC": 4 * 10**6})
        await mine(node.url, 3)
        yield node.url


async def _backends_waiting_mid_transaction(watcher: Conn) -> list[int]:
    cursor = await watcher.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid() AND wait_event_type = 'Lock' AND backend_xid IS NOT NULL"
    )
    return [int(str(pid)) for (pid,) in await cursor.fetchall()]


async def _until(check: object, what: str, within_seconds: float = 30) -> None:
    assert callable(check)
    deadline = time.monotonic() + within_seconds
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def _counts(db: Database) -> tuple[int, int, int]:
    async with db.session() as session:
        statuses = await session.scalar(select(func.count()).select_from(m.MarginStatus))
        history = await session.scalar(select(func.count()).select_from(m.MarginStatusHistory))
        # Statuses valued with the wallets' USDC (the rows store the headline; the holdings
        # are rendered on read).
        with_holdings = await session.scalar(
            select(func.count()).select_from(m.MarginStatus).where(m.MarginStatus.equity_usd > 0)
        )
    return int(statuses or 0), int(history or 0), int(with_holdings or 0)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
async def test_a_daemon_stopped_mid_pass_leaves_whole_passes_and_a_new_daemon_carries_on(
    db: Database,
    database_url: str,
    anvil_url: str,
    tmp_path: Path,
    stop: signal.Signals,
) -> None:
    path = write_config(tmp_path, {"local": [anvil_url]}, service={"publish_interval_seconds": 1})
    path.write_text(
        path.read_text().replace("retries = 0", "retries = 0\npoll_interval_seconds = 1")
    )
    async with db.session() as session:
        for name, wallet in WALLETS.items():
            await link_wallet(session, await add_user(session, name), "local", wallet)

    url = libpq_url(database_url)
    async with (
        await psycopg.AsyncConnection.connect(url) as blocker,
        await psycopg.AsyncConnection.connect(url, autocommit=True) as watcher,
    ):
        await blocker.execute("LOCK TABLE margin_status_history IN EXCLUSIVE MODE")
        daemon = await spawn(
            "run", "--no-api", config=path, database_url=database_url, cwd=tmp_path
        )
        try:
            await daemon.wait_for_line("poll local: block")

            async def publisher_waits() -> bool:
                return bool(await _backends_waiting_mid_transaction(watcher))

            await _until(publisher_waits, "the daemon's publish to wait mid-transaction")
            assert await _counts(db) == (0, 0, 0)
            daemon.process.send_signal(stop)
            if stop == signal.SIGKILL:
                assert await daemon.finish() == -signal.SIGKILL
        finally:
            await blocker.rollback()  # the waiting pass goes on (or finds its client gone)
        if stop == signal.SIGTERM:
            assert await daemon.finish() == 0, daemon.text  # it finished the running pass

        async def publisher_done() -> bool:
            return not await _backends_waiting_mid_transaction(watcher)

        await _until(publisher_done, "the interrupted pass to end")

    statuses, history, _ = await _counts(db)
    if stop == signal.SIGKILL:
        assert (statuses, history) == (0, 0), daemon.text  # the killed pass left nothing
    else:  # SIGTERM lets the running pass finish, and it lands whole
        assert daemon.changed_by_publish() == len(WALLETS), daemon.text
        assert (statuses, history) == (len(WALLETS), len(WALLETS)), daemon.text

    successor = await spawn("run", "--no-api", config=path, database_url=database_url, cwd=tmp_path)
    try:

        async def every_user_valued() -> bool:
            return (await _counts(db))[2] == len(WALLETS)

        await _until(every_user_valued, "the new daemon to publish every user with holdings")
        assert "poll local: skipped" not in successor.text  # no lock was left behind
    finally:
        successor.process.send_signal(signal.SIGTERM)
        assert await successor.finish() == 0, successor.text
    async with db.session() as session:
        seqs = list(
            await session.execute(select(m.MarginStatusHistory.user_id, m.MarginStatusHistory.seq))
        )
    assert len(set(seqs)) == len(seqs)  # no status version written twice
