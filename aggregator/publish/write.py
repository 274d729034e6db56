"""Step 5 of a pass: a shard's statuses written in its own transaction under its own lock
(history rows, NOTIFY and alert events on material change:
`aggregator.store.published.statuses`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from aggregator.config import LoadedConfig
from aggregator.store.locks import try_advisory_lock
from aggregator.store.published.statuses import StatusRecord, WriteCounts, write_statuses

PUBLISH_LOCK = "publish"


def shard_lock(index: int, count: int) -> str:
    """The advisory lock of one shard. Every process must use the same shard count."""
    return f"{PUBLISH_LOCK}:{index}/{count}"


async def take_shard(session: AsyncSession, index: int, count: int) -> bool:
    """Take the shard's lock for the session's transaction; False when another process holds
    it (it is publishing this shard now)."""
    return await try_advisory_lock(session, shard_lock(index, count))


async def tune_shard_session(session: AsyncSession) -> None:
    """Settings for the shard's transaction only: its sort of the shard's lines fits in
    memory (measured: the default 4 MB spills a 100,000-user pass's shards to disk), and no
    parallel workers for its queries (the pass already runs one shard per core; helpers
    would only compete with the other shards for the same cores)."""
    await session.execute(
        text("SET LOCAL work_mem = '64MB'; SET LOCAL max_parallel_workers_per_gather = 0")
    )


async def write_shard(
    session: AsyncSession,
    config: LoadedConfig,
    records: Sequence[StatusRecord],
    orphaned_heads: set[int],
) -> WriteCounts:
    """Write the shard's statuses that say something new (`needs_rewrite`).

    May raise: DatabaseUnavailable.
    """
    return await write_statuses(
        session,
        records,
        relative_threshold=config.risk.history_material_change,
        webhooks=config.alerts.webhooks,
        republish_change=config.risk.republish_relative_change,
        orphaned_heads=orphaned_heads,
        row_locks=False,  # the shard's advisory lock keeps every other publisher out
        refresh_after=timedelta(seconds=refresh)
        if (refresh := config.service.status_refresh_seconds)
        else None,
    )
