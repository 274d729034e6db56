"""(chain, shard) polls: one chain read for the wallets of one shard of users only.

A shard is `user_id % count = index`, the same split as a publish pass (`[service]
publish_shards`), so a refreshed shard is exactly what one publish shard reads. A shard poll is
a chain poll over fewer wallets (`poll._poll_once`: reorg re-check against the chain's recent
heads of every kind, a refused read of a node that is behind, a failed run recorded), with
three differences:

- its advisory lock is the shard's (`poll:<chain>:<i>/<N>`, `work.locks.poll_shard_lock`), so
  shards of one chain are read in parallel by many workers, each shard by one at a time;
- its poll_run and head carry the shard (`shard_index`, `shard_count`), and a publish shard
  reads, per chain, the newer of the whole-chain head and its own shard's head
  (`PassMarket.for_shard`);
- it stores behind a cursor fence: in the transaction that writes the lines, the shard's row
  in `poll_shard_cursors` is advanced to the new height only if it stands lower. A duplicate
  run (a job the reaper retried while the first was still alive, two refreshes racing) that
  read the same block, or a late one that read an older block, is refused and writes nothing.

Adapters that carry unread accounts over between polls (`KeepsLastReads`: Hyperliquid under
its weight budget) are polled whole-chain only: their carried lines are the chain's.
"""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import select

from aggregator.polling.poll import ChainPollResult, _poll_once
from aggregator.store import models as m
from aggregator.store.database import Database
from aggregator.store.locks import held_lock
from aggregator.store.observed.observations import ShardKey
from chains.base import ChainAdapter, KeepsLastReads


def shard_lock(chain: str, shard: ShardKey) -> str:
    """The shard poll's advisory lock (the same string as its queue lock)."""
    return f"poll:{chain}:{shard.index}/{shard.count}"


def shardable(adapter: ChainAdapter) -> bool:
    """Whether the chain can be polled by shard (see the module docstring)."""
    return not isinstance(adapter, KeepsLastReads)


async def shard_owners(database: Database, chain: str, shard: ShardKey) -> dict[str, int]:
    """address → user_id of the linked wallets of `chain` owned by the shard's users.

    May raise: DatabaseUnavailable.
    """
    async with database.session() as session:
        rows = await session.execute(
            select(m.Wallet.address, m.Wallet.user_id)
            .where(m.Wallet.chain == chain, m.Wallet.user_id % shard.count == shard.index)
            .order_by(m.Wallet.address)
        )
        return {address: user_id for address, user_id in rows}


async def poll_shard(
    database: Database, adapter: ChainAdapter, chain: str, index: int, count: int
) -> ChainPollResult:
    """One poll of shard `index` of `count` of `chain` under the shard's advisory lock.
    Never raises for chain failures; a run the fence refuses comes back `fenced`.

    May raise: ValueError (index/count out of range, a chain the adapter does not read, an
    adapter that cannot be polled by shard), DatabaseUnavailable.
    """
    shard = ShardKey(index, count)
    if adapter.chain != chain:
        raise ValueError(f"poll_shard: adapter reads {adapter.chain!r}, not {chain!r}")
    if not shardable(adapter):
        raise ValueError(f"poll_shard: {chain} carries unread accounts over: poll it whole")
    async with held_lock(database, shard_lock(chain, shard)) as taken:
        if not taken:
            return ChainPollResult(chain=chain, ok=True, skipped=True, shard=shard)
        owners = await shard_owners(database, chain, shard)
        first = await _poll_once(database, adapter, owners, shard)
        if not first.orphaned_heads:
            return first
        # A reorg under the stored heads: read again at once (as `poll_chain` does).
        again = await _poll_once(database, adapter, owners, shard)
        return replace(again, orphaned_heads=first.orphaned_heads + again.orphaned_heads)
