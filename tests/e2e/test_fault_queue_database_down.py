"""The queue's database down under a running `xmargin worker`: the worker waits, reconnects when
the server is back, and does the work deferred afterwards, without a restart of its own.

The server is an embedded pgserver of this test alone (`own_server`, tests/e2e/conftest.py),
stopped with `pg_ctl stop -m fast` and started again after a few seconds; never the shared CI
server. Real `xmargin worker`, real `xmargin dispatch`, real anvil. The worker runs a periodic
task (the reaper, as by default): then the outage also ends procrastinate's LISTEN connection,
and its side-task monitor stops its own worker, which returns normally once the server is
back; that stop, not asked for by a signal, must not end the process either.
"""

from __future__ import annotations

import asyncio
import re
import signal
from pathlib import Path

from sqlalchemy import func, select

from aggregator.store import models as m
from aggregator.store.accounts.users import add_user, link_wallet
from aggregator.store.database import Database
from chains.evm.devnet import AnvilNode, deploy_demo_world, mine, seed_wallet
from tests.e2e.conftest import write_config
from tests.e2e.fault_processes import spawn, until

WALLET = "0x000000000000000000000000000000000000E002"
WORK = """
[work]
dispatch_cron = ""
reap_cron = "* * * * * */2"
heartbeat_seconds = 0.5
stalled_seconds = 30
"""
DOWN_SECONDS = 4


async def test_a_worker_waits_out_its_database_and_goes_on(
    own_server: tuple[object, str], tmp_path: Path
) -> None:
    from pgserver._commands import pg_ctl

    server, url = own_server

    def ctl(*args: str) -> None:
        pg_ctl(
            ["-w", *args],
            pgdata=server.pgdata,  # type: ignore[attr-defined]
            user=server.system_user,  # type: ignore[attr-defined]
        )

    async with AnvilNode(chain_id=31337) as node:
        deployment = await deploy_demo_world(node.url)
        await seed_wallet(node.url, deployment, WALLET, tokens={"USDC": 6 * 10**6})
        await mine(node.url, 3)
        path = write_config(tmp_path, {"local": [node.url]})
        path.write_text(path.read_text() + WORK)
        db = Database(url)
        try:
            async with db.session() as session:
                await link_wallet(session, await add_user(session, "ines"), "local", WALLET)

            async def polls() -> int:
                async with db.session() as session:
                    count = await session.scalar(
                        select(func.count()).select_from(m.PollRun).where(m.PollRun.ok)
                    )
                return int(count or 0)

            worker = await spawn("worker", config=path, database_url=url, cwd=tmp_path)
            try:
                first = await spawn("dispatch", config=path, database_url=url, cwd=tmp_path)
                assert await first.finish() == 0, first.text

                async def polled(at_least: int) -> bool:
                    return await polls() >= at_least

                await until(lambda: polled(1), "the first round's poll")
                await db.dispose()  # the test's own connections die with the server too

                # The server's own start options (no TCP, its socket directory), for the start.
                pgdata = Path(server.pgdata)  # type: ignore[attr-defined]
                opts = (pgdata / "postmaster.opts").read_text()
                found = re.search(r'"-k" "([^"]+)"', opts)
                assert found, opts
                await asyncio.to_thread(ctl, "-m", "fast", "stop")
                await asyncio.sleep(DOWN_SECONDS)
                assert worker.process.returncode is None, worker.text[-3000:]
                start = ["-o", '-h ""', "-o", f"-k {found.group(1)}"]
                await asyncio.to_thread(ctl, *start, "-l", str(pgdata / "restart.log"), "start")

                before = await polls()
                again = await spawn("dispatch", config=path, database_url=url, cwd=tmp_path)
                assert await again.finish() == 0, again.text
                await until(lambda: polled(before + 1), "a poll deferred after the restart", 60)
                # The same worker process did it: it never exited.
                assert worker.process.returncode is None, worker.text[-3000:]
                # It saw the outage and started procrastinate's worker again.
                assert "queue database unreachable" in worker.text, worker.text[-3000:]
                assert "reconnecting in" in worker.text, worker.text[-3000:]
            finally:
                if worker.process.returncode is None:
                    worker.process.send_signal(signal.SIGTERM)
            assert await worker.finish() == 0, worker.text[-3000:]
        finally:
            await db.dispose()
