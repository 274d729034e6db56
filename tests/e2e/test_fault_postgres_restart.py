"""The Postgres server restarted under a running daemon: the daemon reconnects and goes on
polling and publishing without a restart of its own.

The server is an embedded pgserver of this test's own (`own_server`, tests/e2e/conftest.py),
restarted with `pg_ctl restart -m fast`; never the shared CI server. Real `xmargin run`, real
anvil.
"""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from aggregator.store import models as m
from aggregator.store.accounts.users import add_user, link_wallet
from aggregator.store.database import Database
from chains.evm.devnet import AnvilNode, deploy_demo_world, mine, seed_wallet
from tests.e2e.conftest import write_config
from tests.e2e.fault_processes import spawn, until

WALLET = "0x000000000000000000000000000000000000E001"


async def test_the_daemon_reconnects_after_a_postgres_restart(
    own_server: tuple[object, str], tmp_path: Path
) -> None:
    from pgserver._commands import pg_ctl

    server, url = own_server
    async with AnvilNode(chain_id=31337) as node:
        deployment = await deploy_demo_world(node.url)
        await seed_wallet(node.url, deployment, WALLET, tokens={"USDC": 6 * 10**6})
        await mine(node.url, 3)
        path = write_config(
            tmp_path, {"local": [node.url]}, service={"publish_interval_seconds": 1}
        )
        path.write_text(
            path.read_text().replace("retries = 0", "retries = 0\npoll_interval_seconds = 1")
        )
        db = Database(url)
        try:
            async with db.session() as session:
                await link_wallet(session, await add_user(session, "lena"), "local", WALLET)

            async def counts() -> tuple[int, datetime | None]:
                async with db.session() as session:
                    polls = await session.scalar(
                        select(func.count()).select_from(m.PollRun).where(m.PollRun.ok)
                    )
                    published = await session.scalar(select(func.max(m.MarginStatus.updated_at)))
                return int(polls or 0), published

            daemon = await spawn("run", "--no-api", config=path, database_url=url, cwd=tmp_path)
            try:

                async def published_once() -> bool:
                    return (await counts())[1] is not None

                await until(published_once, "a first poll and publish")
                await asyncio.to_thread(
                    pg_ctl,
                    ["-w", "-m", "fast", "restart"],
                    pgdata=server.pgdata,  # type: ignore[attr-defined]
                    user=server.system_user,  # type: ignore[attr-defined]
                )
                restarted_at = datetime.now(UTC)
                polls_at_restart = (await counts())[0]

                async def going_on() -> bool:
                    polls, published = await counts()
                    return (
                        polls >= polls_at_restart + 2
                        and published is not None
                        and published > restarted_at
                    )

                await until(going_on, "polls and a publish after the restart")
                assert daemon.process.returncode is None, daemon.text  # never restarted
            finally:
                daemon.process.send_signal(signal.SIGTERM)
                assert await daemon.finish() == 0, daemon.text[-3000:]
        finally:
            await db.dispose()
