"""Shards on worker processes: a pass's shards published in parallel, one process per core.

Each worker process keeps its own config (loaded from the same file and environment), its own
database engine and event loop, and runs `publish_shard` for the shards it is handed: reading
the shard's lines, valuing and writing in the shard's own transaction under its lock, exactly
as in-process. Only the shard's index, the market (as its stored document) and the orphaned
heads travel to it, and its `ShardReport` back. Processes are spawned (no state inherited from
the parent's event loop or connections) once per process lifetime and reused by later passes.
"""

from __future__ import annotations

import asyncio
import atexit
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from aggregator.config import LoadedConfig, load_config
from aggregator.publish.market import PassMarket
from aggregator.publish.passes import ShardReport, publish_shard
from aggregator.store.database import Database

_POOL: tuple[int, ProcessPoolExecutor] | None = None

# In a worker process: its loop, and (config, database) per (config file, database URL).
_LOOP: asyncio.AbstractEventLoop | None = None
_STATE: dict[tuple[str, str], tuple[LoadedConfig, Database]] = {}


def _start_worker() -> None:
    global _LOOP
    _LOOP = asyncio.new_event_loop()


def _publish_in_worker(
    config_path: str,
    database_url: str,
    market: dict[str, Any],
    market_id: int,
    index: int,
    count: int,
    orphaned: set[int],
) -> ShardReport:
    assert _LOOP is not None
    state = _STATE.get((config_path, database_url))
    if state is None:
        state = (load_config(Path(config_path)), Database(database_url, pool_size=1))
        _STATE[(config_path, database_url)] = state
    config, database = state
    return _LOOP.run_until_complete(
        publish_shard(
            database, config, PassMarket.from_document(market), market_id, index, count, orphaned
        )
    )


def shard_pool(workers: int) -> ProcessPoolExecutor:
    """The process pool of `workers` processes (made on first use, kept for later passes)."""
    global _POOL
    if _POOL is not None and _POOL[0] == workers:
        return _POOL[1]
    close_pool()
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
    )
    _POOL = (workers, pool)
    return pool


def close_pool() -> None:
    """Stop the worker processes (they are started again by the next pass that needs them)."""
    global _POOL
    if _POOL is not None:
        pool = _POOL[1]
        _POOL = None
        pool.shutdown(wait=True, cancel_futures=True)


atexit.register(close_pool)


async def publish_shards_in_workers(
    config: LoadedConfig,
    database: Database,
    market: PassMarket,
    market_id: int,
    count: int,
    orphaned: set[int],
) -> list[ShardReport]:
    """Every shard of a pass, on `[service] publish_workers` processes.

    A worker process that dies (killed, out of memory) takes its shard's transaction with it
    (rolled back: nothing half-written) and breaks the pool; the pool is dropped then, so the
    next pass starts fresh processes.
    May raise: DatabaseUnavailable (from a worker), BrokenProcessPool.
    """
    pool = shard_pool(config.service.publish_workers)
    loop = asyncio.get_running_loop()
    document = market.to_document()
    futures = [
        loop.run_in_executor(
            pool,
            _publish_in_worker,
            str(config.path),
            database.url,
            document,
            market_id,
            index,
            count,
            orphaned,
        )
        for index in range(count)
    ]
    try:
        return list(await asyncio.gather(*futures))
    except BrokenProcessPool:
        close_pool()
        raise
