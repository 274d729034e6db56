"""(chain, shard) polls on the queue end to end: two `xmargin worker` processes on one database
and one anvil, `[work] round_polls = "shards"`.

A dispatched round defers one `poll_shard` per shard with a wallet; the two workers poll every
shard exactly once. Then a worker is killed with SIGKILL in the middle of a shard poll (a proxy
in front of the node holds that poll's first request): the survivor's reaper retries the job,
and that shard is polled once more, by the survivor, the killed run having written nothing.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

from sqlalchemy import func, select

from aggregator.store import models as m
from aggregator.store.accounts.users import add_user, link_wallet
from aggregator.store.database import Database
from aggregator.work.locks import POLL_SHARD
from chains.evm.devnet import mine
from tests.e2e.conftest import write_config
from tests.e2e.fault_processes import Running, spawn
from tests.e2e.test_work_queue import WALLETS, WORK, _dispatch, _query, _until_idle
from tests.fault_rpc_proxy import RpcProxy
from tests.queue_jobs import EMPTY_QUEUE

SHARDS = 4


async def _polls_per_shard(db: Database) -> tuple[dict[int, int], dict[int, int]]:
    """shard → good heads, shard → poll runs (ok or failed)."""
    async with db.session() as session:
        heads = dict(
            (
                await session.execute(
                    select(m.ChainHead.shard_index, func.count()).group_by(m.ChainHead.shard_index)
                )
            ).all()
        )
        runs = dict(
            (
                await session.execute(
                    select(m.PollRun.shard_index, func.count()).group_by(m.PollRun.shard_index)
                )
            ).all()
        )
    return heads, runs


async def test_two_workers_poll_every_shard_once_and_redo_a_killed_workers_shard_once(
    db: Database,
    database_url: str,
    queue_node: str,
    tmp_path: Path,
) -> None:
    _query(database_url, EMPTY_QUEUE)
    proxy = await RpcProxy(queue_node).start()
    held = asyncio.Event()
    path = write_config(tmp_path, {"a": [proxy.url]}, service={"publish_shards": SHARDS})
    work = WORK + 'round_polls = "shards"\n'
    path.write_text(path.read_text().replace("timeout_seconds = 2", "timeout_seconds = 20") + work)
    async with db.session() as session:
        users = [await add_user(session, name) for name in WALLETS]
        for user, wallet in zip(users, WALLETS.values(), strict=True):
            await link_wallet(session, user, "a", wallet)
    shards = sorted({user % SHARDS for user in users})
    assert len(shards) == SHARDS

    workers: list[Running] = []
    try:
        first = await _dispatch(path, database_url, tmp_path)
        for index in shards:
            assert f"poll:a:{index}/{SHARDS} deferred" in first, first
        workers = [
            await spawn(
                "worker", "--concurrency", "2", config=path, database_url=database_url, cwd=tmp_path
            )
            for _ in range(2)
        ]
        await _until_idle(database_url)
        heads, runs = await _polls_per_shard(db)
        assert heads == dict.fromkeys(shards, 1)
        assert runs == dict.fromkeys(shards, 1)

        # The next round, at a new block; its first request to the node is held.
        await mine(queue_node, 1)
        proxy.on_request = held.wait
        await _dispatch(path, database_url, tmp_path)
        deadline = time.monotonic() + 20
        doing = "SELECT id, args FROM procrastinate_jobs WHERE status = 'doing' AND task_name = "
        while True:
            assert time.monotonic() < deadline, [w.text for w in workers]
            stuck = _query(database_url, doing + f"'{POLL_SHARD}'")
            finished = _query(
                database_url,
                f"SELECT count(*) FROM procrastinate_jobs WHERE task_name = '{POLL_SHARD}' "
                "AND status = 'succeeded'",
            )[0][0]
            if len(stuck) == 1 and finished == 2 * SHARDS - 1:
                break
            await asyncio.sleep(0.05)
        ((job_id, args),) = stuck
        victim = next(w for w in workers if f"(job {job_id} on " in w.text)
        survivor = next(w for w in workers if w is not victim)
        victim.process.send_signal(signal.SIGKILL)
        await victim.finish()
        held.set()  # the dead worker's request is answered to nobody
        await survivor.wait_for_line(f"job {job_id} ({POLL_SHARD}) of a dead worker retried", 20)
        await survivor.wait_for_line(f"(job {job_id})", 20)
        await _until_idle(database_url)

        job = _query(
            database_url, f"SELECT status, attempts FROM procrastinate_jobs WHERE id = {job_id}"
        )
        heads, runs = await _polls_per_shard(db)
        assert job == [("succeeded", 2)]
        # Every shard twice (two rounds); the killed shard's second poll is the survivor's.
        assert heads == dict.fromkeys(shards, 2)
        assert runs == dict.fromkeys(shards, 2)
        written = [line for line in survivor.lines if f"(job {job_id})" in line and "block" in line]
        assert len(written) == 1 and f"shard {args['index']}/{SHARDS}" in written[0], written

        survivor.process.send_signal(signal.SIGTERM)
        assert await survivor.finish() == 0, survivor.text[-3000:]
    finally:
        held.set()
        for w in workers:
            if w.process.returncode is None:
                w.process.kill()
                await w.process.wait()
        await proxy.aclose()
