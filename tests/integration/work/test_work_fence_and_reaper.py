"""The work queue's two guards on a real database: a shard job run twice for one pass writes
once (the fence), and the reaper frees a dead worker's job even when a newer job already
holds its queueing lock (procrastinate #1543)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from procrastinate import App

from aggregator.config import LoadedConfig, load_config
from aggregator.publish.inputs import read_market
from aggregator.store.database import Database
from aggregator.work.app import build_app
from aggregator.work.locks import POLL, poll_lock
from aggregator.work.passes import run_shard
from aggregator.work.reaper import reap_stalled
from tests.queue_jobs import empty_queue

REPO = Path(__file__).resolve().parents[3]


@pytest_asyncio.fixture(loop_scope="session")
async def config() -> LoadedConfig:
    return load_config(REPO / "config" / "devnet.toml")


@pytest_asyncio.fixture(loop_scope="session")
async def app(db: Database, database_url: str, config: LoadedConfig) -> AsyncIterator[App]:
    work = build_app(database_url, config, max_connections=2)
    async with work.open_async():
        await empty_queue(work)
        yield work


async def test_a_shard_run_twice_for_one_pass_writes_once(
    db: Database, config: LoadedConfig
) -> None:
    from datetime import UTC, datetime

    market = (await read_market(db, config, datetime.now(UTC))).to_document()
    first = await run_shard(db, config, "job:1", 0, 2, market, [])
    again = await run_shard(db, config, "job:1", 0, 2, market, [])
    other_pass = await run_shard(db, config, "job:2", 0, 2, market, [])
    assert first.report is not None and first.fenced is None
    assert again.report is None and again.fenced == "already published for this pass"
    assert other_pass.report is not None


async def _job_status(app: App, job_id: int) -> str:
    status = await app.job_manager.get_job_status_async(job_id)
    return status.value


async def _stall(app: App, job_id: int) -> None:
    """The job as a worker killed mid-run leaves it (worker row gone: worker_id NULL)."""
    await app.connector.execute_query_async(
        "UPDATE procrastinate_jobs SET status = 'doing' WHERE id = %(id)s", id=job_id
    )


async def test_the_reaper_retries_a_stalled_job_or_fails_it_for_a_queued_sibling(
    app: App,
) -> None:
    lone = await app.configure_task(
        POLL, lock=poll_lock("x"), queueing_lock=poll_lock("x")
    ).defer_async(chain="x")
    await _stall(app, lone)
    crowded = await app.configure_task(
        POLL, lock=poll_lock("y"), queueing_lock=poll_lock("y")
    ).defer_async(chain="y")
    await _stall(app, crowded)
    sibling = await app.configure_task(
        POLL, lock=poll_lock("y"), queueing_lock=poll_lock("y")
    ).defer_async(chain="y")

    report = await reap_stalled(app, stalled_seconds=2)

    assert report.retried == [lone] and report.failed == [crowded] and not report.errors
    assert await _job_status(app, lone) == "todo"
    assert await _job_status(app, crowded) == "failed"  # its lock is free for the sibling
    assert await _job_status(app, sibling) == "todo"
