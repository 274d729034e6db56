"""Pruning the observation tables: old heads with their lines and poll runs, unused markets,
old prices, and (with a retention) the time partitions' rotation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, text
from sqlalchemy.ext.asyncio import AsyncSession

from aggregator.store import models as m
from aggregator.store.partitions import Retention, Rotation, rotate
from aggregator.store.published.markets import heads_in_use, prune_markets


@dataclass(frozen=True, slots=True)
class PruneResult:
    poll_runs: int
    heads: int
    prices: int
    partitions: Rotation | None = None  # with a retention: what rotation did


_PRUNE_POLL_RUNS = text(
    """
    WITH ranked AS (
        SELECT chain, shard_index, shard_count, poll_run_id,
               row_number() OVER (
                   PARTITION BY chain, shard_count, shard_index ORDER BY id DESC
               ) AS newest_rank
        FROM chain_heads
        WHERE orphaned_at IS NULL
    ), cutoff AS (
        SELECT chain, shard_index, shard_count, poll_run_id FROM ranked WHERE newest_rank = :keep
    )
    DELETE FROM poll_runs pr
    USING cutoff
    WHERE pr.chain = cutoff.chain AND pr.id < cutoff.poll_run_id
      AND pr.shard_index IS NOT DISTINCT FROM cutoff.shard_index
      AND pr.shard_count IS NOT DISTINCT FROM cutoff.shard_count
      AND NOT EXISTS (
          SELECT 1 FROM chain_heads kept
          WHERE kept.poll_run_id = pr.id AND kept.id = ANY(CAST(:in_use AS bigint[]))
      )
    RETURNING pr.ok
    """
)


async def prune_observations(
    session: AsyncSession,
    keep_heads_per_chain: int,
    price_retention: timedelta = timedelta(days=30),
    *,
    retention: Retention | None = None,
    now: datetime | None = None,
) -> PruneResult:
    """Keep the newest `keep_heads_per_chain` heads of each chain that are not orphaned (and
    every newer orphaned one) with their balances and positions, counted apart for the
    whole-chain polls and for each (chain, shard) poll; delete older heads and every
    poll_run (good or failed) before the oldest kept head, except the heads a latest status
    row was valued from (its document is rendered from their lines on read). Markets no status
    refers to go too. Prices outlive their head (volatility needs history) for
    `price_retention`.

    With a `retention`, the time partitions are then rotated (`aggregator.store.partitions`:
    expired ones dropped whole, the next ones created), last, so the parents' ACCESS
    EXCLUSIVE locks that DDL takes are held only until the caller commits. The row deletes
    above still run inside the live partitions (the newest heads, not the oldest days).
    May raise: ValueError (keep_heads_per_chain < 1, naive now).
    """
    if keep_heads_per_chain < 1:
        raise ValueError("keep_heads_per_chain must be at least 1: the latest head is live data")
    # Deleting a poll_run cascades to its head, and from there to balances and positions.
    in_use = sorted(await heads_in_use(session))
    deleted = (
        await session.execute(_PRUNE_POLL_RUNS, {"keep": keep_heads_per_chain, "in_use": in_use})
    ).all()
    await prune_markets(session)
    moment = datetime.now(UTC) if now is None else now
    cutoff = moment - price_retention
    prices = await session.execute(
        delete(m.Price)
        .where(m.Price.chain_head_id.is_(None), m.Price.observed_at < cutoff)
        .returning(m.Price.id)
    )
    pruned_prices = len(prices.all())
    rotation = None if retention is None else await rotate(session, moment, retention)
    return PruneResult(
        poll_runs=len(deleted),
        heads=sum(1 for (ok,) in deleted if ok),
        prices=pruned_prices,
        partitions=rotation,
    )
