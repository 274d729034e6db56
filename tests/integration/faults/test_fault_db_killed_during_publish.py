"""The publisher's database connection killed (`pg_terminate_backend`) while its transaction is
open: nothing half-written, and the next pass succeeds on the same `Database`.

The window is hit deterministically: a second connection holds `margin_status_history` in
EXCLUSIVE mode (reads pass, writes wait), so the publish transaction, having begun writing
statuses, waits on that lock; the test finds that backend in `pg_stat_activity` and terminates
it. Real anvil, real Postgres, nothing mocked.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest
import pytest_asyncio

from aggregator.config import load_config
from aggregator.polling import poll_chains
from aggregator.publish import publish
from aggregator.specs import chain_spec
from aggregator.store.accounts.users import add_user, link_wallet
from aggregator.store.database import Database, libpq_url
from chains.evm.devnet import AnvilNode, deploy_demo_world, mine, seed_wallet
from chains.registry import build_adapter
from tests.e2e.conftest import write_config

WALLETS = {
    "frank": "0x000000000000000000000000000000000000F001",
    "gina": "0x000000000000000000000000000000000000F002",
}


@pytest_asyncio.fixture(loop_scope="session")
async def anvil_url() -> AsyncIterator[str]:
    async with AnvilNode(chain_id=31337) as node:
        deployment = await deploy_demo_world(node.url)
        for index, wallet in enumerate(WALLETS.values(), start=1):
            await seed_wallet(node.url, deployment, wallet, tokens={"USDC": index * 10**8})
        await mine(node.url, 3)
        yield node.url


async def _counts(conn: psycopg.AsyncConnection[tuple[int, ...]]) -> tuple[int, int]:
    cursor = await conn.execute(
        "SELECT (SELECT count(*) FROM margin_status), (SELECT count(*) FROM margin_status_history)"
    )
    row = await cursor.fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


async def _waiting_publisher(conn: psycopg.AsyncConnection[tuple[int, ...]]) -> int:
    """The pid of the backend waiting on the history lock (polled with a deadline)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        cursor = await conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND wait_event_type = 'Lock' "
            "AND backend_xid IS NOT NULL"
        )
        row = await cursor.fetchone()
        if row is not None:
            return int(row[0])
        await asyncio.sleep(0.05)
    raise AssertionError("the publish never waited on the history lock")


async def test_a_publisher_killed_mid_transaction_writes_nothing_and_the_next_pass_succeeds(
    db: Database, database_url: str, anvil_url: str, tmp_path: Path
) -> None:
    config = load_config(write_config(tmp_path, {"local": [anvil_url]}))
    async with db.session() as session:
        for name, wallet in WALLETS.items():
            await link_wallet(session, await add_user(session, name), "local", wallet)
    adapter = build_adapter(chain_spec(config, "local"))
    try:
        assert all(p.ok for p in await poll_chains(db, {"local": adapter}))
    finally:
        await adapter.aclose()

    url = libpq_url(database_url)
    async with (
        await psycopg.AsyncConnection.connect(url) as blocker,
        await psycopg.AsyncConnection.connect(url, autocommit=True) as watcher,
    ):
        await blocker.execute("LOCK TABLE margin_status_history IN EXCLUSIVE MODE")
        pass_task = asyncio.create_task(publish(db, config))
        victim = await _waiting_publisher(watcher)
        cursor = await watcher.execute("SELECT pg_terminate_backend(%s)", [victim])
        assert (await cursor.fetchone()) == (True,)
        with pytest.raises(Exception) as killed:
            await pass_task
        assert "terminat" in str(killed.value).lower() or "closed" in str(killed.value).lower()
        assert await _counts(watcher) == (0, 0)  # nothing of the killed pass is visible
        await blocker.rollback()

        report = await publish(db, config)
        assert (report.users, report.changed, report.skipped) == (2, 2, False)
        assert await _counts(watcher) == (2, 2)
