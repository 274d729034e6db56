"""The fence that lets a shard of a queued pass be written once, however often its job runs.

A shard job can run twice: the reaper retries a job whose worker stopped heart-beating (dead,
or only frozen and still running), or a worker is killed after the shard committed but before
procrastinate marked the job done. Two guards, both inside the shard's own transaction:

1. the shard's advisory lock (`publish:<i>/<N>`, as `publish_shard` takes it) is taken first:
   while another process writes the shard, this run stops (`ShardBusy`);
2. then the pass's marker row (`publish_shard_marks`: pass key, shard, shard count) is
   inserted; if it is already there, an earlier run of this shard for this pass committed, and
   this run stops (`ShardAlreadyPublished`).

The marker commits with the shard's statuses or not at all (a run that dies leaves nothing,
and its retry writes the shard). `FencedDatabase` puts both steps at the start of the session
`publish_shard` opens, so the fenced write is the unchanged `publish_shard`; it relies on
`publish_shard` doing its reads and writes in one session (it takes the shard lock in it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from aggregator.publish.write import take_shard
from aggregator.store import models as m
from aggregator.store.database import Database


class ShardFenced(Exception):
    """The shard is not written by this run."""


class ShardBusy(ShardFenced):
    """Another process holds the shard's advisory lock: it is writing the shard now."""


class ShardAlreadyPublished(ShardFenced):
    """This pass's shard was already written (its marker is committed)."""


async def claim_shard(
    session: AsyncSession, pass_key: str, index: int, count: int, market_id: int
) -> bool:
    """Insert the pass's marker for the shard in the session's transaction; False when it is
    already there."""
    claimed = await session.scalar(
        insert(m.PublishShardMark)
        .values(pass_key=pass_key, shard=index, shards=count, market_id=market_id)
        .on_conflict_do_nothing()
        .returning(m.PublishShardMark.pass_key)
    )
    return claimed is not None


async def prune_shard_marks(session: AsyncSession, older_than: timedelta) -> int:
    """Delete markers older than `older_than` (their jobs are long finished); how many."""
    cutoff = datetime.now(UTC) - older_than
    result = await session.execute(
        delete(m.PublishShardMark)
        .where(m.PublishShardMark.published_at < cutoff)
        .returning(m.PublishShardMark.pass_key)
    )
    return len(result.all())


class FencedDatabase(Database):
    """`database` as one shard of one pass sees it: every session starts by taking the shard's
    lock and claiming its marker, or raises `ShardFenced` before any work. Shares the engine of
    `database` (disposing this one does nothing)."""

    def __init__(
        self, database: Database, pass_key: str, index: int, count: int, market_id: int
    ) -> None:
        # No engine of its own: the wrapped database's is used.
        self.url = database.url
        self.engine = database.engine
        self._inner = database
        self._fence = (pass_key, index, count, market_id)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        pass_key, index, count, market_id = self._fence
        async with self._inner.session() as session:
            if not await take_shard(session, index, count):
                raise ShardBusy(f"shard {index}/{count} is being written by another process")
            if not await claim_shard(session, pass_key, index, count, market_id):
                raise ShardAlreadyPublished(f"shard {index}/{count} of {pass_key} is written")
            yield session

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection]:
        async with self._inner.connection() as conn:
            yield conn

    async def ping(self) -> None:
        await self._inner.ping()

    async def dispose(self) -> None:
        return None
