"""The work queue end to end: two `xmargin worker` processes on one database and one anvil.

Two `xmargin dispatch` in a row defer one round (the second finds it all still queued); the
workers poll the chain once and publish every shard of the pass once. Then a worker is killed
with SIGKILL in the middle of a poll (a proxy in front of the node holds the poll's first
request): the other worker's reaper retries the job, and it is done once, by the survivor.
"""

from __future__ import annotations

import asyncio
import re
import signal
import time
from pathlib import Path

import psycopg
from sqlalchemy import func, select

from aggregator.store import models as m
from aggregator.store.accounts.users import add_user, link_wallet
from aggregator.store.database import Database, libpq_url
from aggregator.work.locks import POLL, PUBLISH_SHARD, REAP, REPRICE
from tests.e2e.conftest import QUEUE_WALLETS, write_config
from tests.e2e.fault_processes import Running, spawn
from tests.fault_rpc_proxy import RpcProxy
from tests.queue_jobs import EMPTY_QUEUE

WALLETS = QUEUE_WALLETS
SHARDS = 4
WORK = """
[work]
dispatch_cron = ""
reap_cron = "* * * * * *"
heartbeat_seconds = 0.5
stalled_seconds = 2
"""


def _query(database_url: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        cursor = conn.execute(sql)  # type: ignore[call-overload]
        return list(cursor) if cursor.description else []


async def _until_idle(database_url: str, within_seconds: float = 30) -> None:
    """Until no job but the reaper's is queued or running."""
    deadline = time.monotonic() + within_seconds
    busy = (
        "SELECT count(*) FROM procrastinate_jobs "
        f"WHERE status IN ('todo', 'doing') AND task_name <> '{REAP}'"
    )
    while _query(database_url, busy)[0][0]:
        if time.monotonic() > deadline:
            raise AssertionError(_query(database_url, "SELECT * FROM procrastinate_jobs"))
        await asyncio.sleep(0.1)


async def _dispatch(path: Path, database_url: str, cwd: Path) -> str:
    done = await spawn("dispatch", config=path, database_url=database_url, cwd=cwd)
    assert await done.finish() == 0, done.text
    return done.text


async def test_workers_do_each_round_once_and_reap_a_killed_workers_job(
    db: Database, database_url: str, queue_node: str, tmp_path: Path
) -> None:
    _query(database_url, EMPTY_QUEUE)
    proxy = await RpcProxy(queue_node).start()
    held = asyncio.Event()
    path = write_config(tmp_path, {"a": [proxy.url]}, service={"publish_shards": SHARDS})
    path.write_text(path.read_text().replace("timeout_seconds = 2", "timeout_seconds = 20") + WORK)
    async with db.session() as session:
        for name, wallet in WALLETS.items():
            await link_wallet(session, await add_user(session, name), "a", wallet)

    workers: list[Running] = []
    try:
        # One round, dispatched twice before any worker runs: the second defers nothing.
        first = await _dispatch(path, database_url, tmp_path)
        second = await _dispatch(path, database_url, tmp_path)
        assert "poll:a deferred" in first and "publish deferred" in first, first
        assert "deferred (job" not in second and "poll:a still queued" in second, second
        assert _query(database_url, "SELECT count(*) FROM procrastinate_jobs")[0][0] == 3

        workers = [
            await spawn(
                "worker", "--concurrency", "2", config=path, database_url=database_url, cwd=tmp_path
            )
            for _ in range(2)
        ]
        await _until_idle(database_url)
        async with db.session() as session:
            polls = await session.scalar(select(func.count()).select_from(m.PollRun))
            marks = list(
                await session.execute(select(m.PublishShardMark.pass_key, m.PublishShardMark.shard))
            )
            history = list(
                await session.execute(
                    select(m.MarginStatusHistory.user_id, m.MarginStatusHistory.seq)
                )
            )
        assert polls == 1
        assert sorted(shard for _, shard in marks) == list(range(SHARDS))
        assert len({key for key, _ in marks}) == 1  # one pass
        assert len(set(history)) == len(history)  # no status version written twice
        statuses = _query(
            database_url,
            f"SELECT task_name, status, count(*) FROM procrastinate_jobs "
            f"WHERE task_name <> '{REAP}' GROUP BY 1, 2",
        )
        counts = {(t, s): n for t, s, n in statuses}
        assert counts[(PUBLISH_SHARD, "succeeded")] == SHARDS
        # The poll of the chain that prices the assets deferred a repricing, which ran.
        assert counts.get((REPRICE, "succeeded"), 0) >= 1, counts

        # A poll held at the node; its worker is killed; the other one's reaper retries it.
        proxy.on_request = held.wait
        third = await _dispatch(path, database_url, tmp_path)
        assert "poll:a deferred" in third, third
        job_id = int(re.search(r"poll:a deferred \(job (\d+)\)", third).group(1))  # type: ignore[union-attr]
        deadline = time.monotonic() + 20
        while not (holder := [w for w in workers if f"poll a: started (job {job_id} " in w.text]):
            assert time.monotonic() < deadline, [w.text for w in workers]
            await asyncio.sleep(0.05)
        victim = holder[0]
        survivor = next(w for w in workers if w is not victim)
        victim.process.send_signal(signal.SIGKILL)
        await victim.finish()
        held.set()  # the dead worker's request is answered to nobody
        await survivor.wait_for_line(f"job {job_id} ({POLL}) of a dead worker retried", 20)
        await survivor.wait_for_line(f"(job {job_id})", 20)
        await _until_idle(database_url)
        job = _query(
            database_url, f"SELECT status, attempts FROM procrastinate_jobs WHERE id = {job_id}"
        )
        async with db.session() as session:
            polls = await session.scalar(select(func.count()).select_from(m.PollRun))
            passes = await session.scalar(
                select(func.count(func.distinct(m.PublishShardMark.pass_key)))
            )
            shard_rows = await session.scalar(select(func.count()).select_from(m.PublishShardMark))
        assert job == [("succeeded", 2)]  # the killed attempt (counted by the retry), then one run
        assert polls == 2  # round one's poll and the retried one: the killed poll wrote nothing
        assert (
            sum(f"(job {job_id})" in line and "poll a: block" in line for line in survivor.lines)
            == 1
        )
        assert (passes, shard_rows) == (2, 2 * SHARDS)

        survivor.process.send_signal(signal.SIGTERM)
        assert await survivor.finish() == 0, survivor.text[-3000:]
    finally:
        held.set()
        for w in workers:
            if w.process.returncode is None:
                w.process.kill()
                await w.process.wait()
        await proxy.aclose()
