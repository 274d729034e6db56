"""Stored observations read back: each chain's latest good head with its lines and prices
(`latest_observations`), a chain's recent heads (for the reorg re-check), price history, and
which heads are still stored or were orphaned."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import cast

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession

from aggregator.store import models as m
from aggregator.store.database import Database
from aggregator.store.observed.observations import (
    ChainObservations,
    OwnedBalance,
    OwnedPosition,
    StoredHead,
    require_aware,
)
from chains.base import (
    Address,
    Finality,
    LineIssue,
    Position,
    PositionKind,
    PriceObservation,
    ReadPoint,
    TokenBalance,
)


async def recent_heads(db: Database, chain: str, limit: int = 16) -> list[StoredHead]:
    """The newest `limit` heads of `chain` that are not orphaned, newest first."""
    async with db.session() as session:
        rows = await session.execute(
            select(m.ChainHead.id, m.ChainHead.height, m.ChainHead.hash, m.ChainHead.finality)
            .where(m.ChainHead.chain == chain, m.ChainHead.orphaned_at.is_(None))
            .order_by(m.ChainHead.id.desc())
            .limit(limit)
        )
        return [StoredHead(*row) for row in rows]


def _shard_of(row: m.ChainHead | m.PollRun) -> tuple[int, int] | None:
    if row.shard_index is None or row.shard_count is None:
        return None
    return (row.shard_index, row.shard_count)


async def latest_observations(
    session: AsyncSession, *, lines: bool = True
) -> dict[str, ChainObservations]:
    """Per chain with at least one good poll: its latest head that is not orphaned, with
    balances, positions and prices, plus the failed polls after it. Chains never read
    successfully (or whose every head was orphaned) are absent. `lines=False` leaves the
    balances and positions out (a sharded publish reads them per shard: `lines_at_heads`).

    With shard polls (`polling.shards`): a chain's entry is its newest whole-chain head, or,
    when it has none, its newest shard head (then `shard_index` says whose lines it holds);
    `shards` lists the newest live head of every (chain, shard) poll (without lines). Prices
    are chain-wide: every entry's are those of the chain's newest head of any kind. Failed
    polls count against the head of the same chain and shard.
    """
    newest = list(
        await session.scalars(
            select(m.ChainHead)
            .where(m.ChainHead.orphaned_at.is_(None))
            .ext(distinct_on(m.ChainHead.chain, m.ChainHead.shard_count, m.ChainHead.shard_index))
            .order_by(
                m.ChainHead.chain,
                m.ChainHead.shard_count,
                m.ChainHead.shard_index,
                m.ChainHead.id.desc(),
            )
        )
    )
    if not newest:
        return {}
    by_chain: dict[str, list[m.ChainHead]] = {}
    for head in newest:
        by_chain.setdefault(head.chain, []).append(head)
    tops: dict[str, m.ChainHead] = {}
    priced: dict[str, m.ChainHead] = {}
    for chain, heads in by_chain.items():
        whole = [h for h in heads if _shard_of(h) is None]
        tops[chain] = whole[0] if whole else max(heads, key=lambda h: h.id)
        priced[chain] = max(heads, key=lambda h: h.id)
    top_ids = [head.id for head in tops.values()]

    balances: dict[int, list[OwnedBalance]] = {}
    positions: dict[int, list[OwnedPosition]] = {}
    if lines:
        for row in await session.scalars(
            select(m.Balance).where(m.Balance.chain_head_id.in_(top_ids)).order_by(m.Balance.id)
        ):
            balances.setdefault(row.chain_head_id, []).append(_owned_balance(row))
        for position_row in await session.scalars(
            select(m.Position).where(m.Position.chain_head_id.in_(top_ids)).order_by(m.Position.id)
        ):
            positions.setdefault(position_row.chain_head_id, []).append(
                _owned_position(position_row)
            )
    prices: dict[int, list[PriceObservation]] = {}
    for price_row in await session.scalars(
        select(m.Price)
        .where(m.Price.chain_head_id.in_([h.id for h in priced.values()]))
        .order_by(m.Price.id)
    ):
        assert price_row.chain_head_id is not None
        prices.setdefault(price_row.chain_head_id, []).append(_price(price_row))

    same_shard = m.PollRun.shard_index.is_not_distinct_from(
        m.ChainHead.shard_index
    ) & m.PollRun.shard_count.is_not_distinct_from(m.ChainHead.shard_count)
    failures = {
        (chain, shard_index, shard_count): (finished_at, error, count)
        for chain, shard_index, shard_count, finished_at, error, count in await session.execute(
            select(
                m.PollRun.chain,
                m.PollRun.shard_index,
                m.PollRun.shard_count,
                m.PollRun.finished_at,
                m.PollRun.error,
                func.count().over(
                    partition_by=(m.PollRun.chain, m.PollRun.shard_count, m.PollRun.shard_index)
                ),
            )
            .join(
                m.ChainHead,
                (m.ChainHead.chain == m.PollRun.chain)
                & same_shard
                & (m.ChainHead.id.in_([h.id for h in newest]))
                & (m.PollRun.id > m.ChainHead.poll_run_id),
            )
            .where(~m.PollRun.ok)
            .ext(distinct_on(m.PollRun.chain, m.PollRun.shard_count, m.PollRun.shard_index))
            .order_by(
                m.PollRun.chain, m.PollRun.shard_count, m.PollRun.shard_index, m.PollRun.id.desc()
            )
        )
    }

    def observed(head: m.ChainHead, chain_prices: list[PriceObservation]) -> ChainObservations:
        failed_at, error, count = failures.get(
            (head.chain, head.shard_index, head.shard_count), (None, None, 0)
        )
        return ChainObservations(
            chain=head.chain,
            head_id=head.id,
            poll_run_id=head.poll_run_id,
            read_point=ReadPoint(
                height=head.height,
                block_hash=head.hash,
                timestamp=int(head.block_timestamp.timestamp()),
                finality=cast(Finality, head.finality),
            ),
            observed_at=head.observed_at,
            balances=tuple(balances.get(head.id, ())),
            positions=tuple(positions.get(head.id, ())),
            prices=tuple(chain_prices),
            last_failure_at=failed_at,
            last_failure_error=error,
            failures_since=count,
            shard_index=head.shard_index,
            shard_count=head.shard_count,
        )

    result: dict[str, ChainObservations] = {}
    for chain, top in tops.items():
        chain_prices = prices.get(priced[chain].id, [])
        shard_heads = tuple(
            observed(head, chain_prices) for head in by_chain[chain] if _shard_of(head) is not None
        )
        result[chain] = replace(observed(top, chain_prices), shards=shard_heads)
    return result


def _owned_balance(row: m.Balance) -> OwnedBalance:
    return OwnedBalance(
        user_id=row.user_id,
        balance=TokenBalance(
            account=Address(row.account),
            asset=row.asset,
            amount_raw=int(row.amount_raw),
            decimals=row.decimals,
            token_address=row.token_address,
            holder=row.holder,
        ),
    )


def _owned_position(row: m.Position) -> OwnedPosition:
    return OwnedPosition(
        user_id=row.user_id,
        position=Position(
            account=Address(row.account),
            venue=row.venue,
            asset=row.asset,
            kind=cast(PositionKind, row.kind),
            amount_raw=int(row.amount_raw),
            decimals=row.decimals,
            entry_price=row.entry_price,
            market=row.market,
        ),
    )


def _price(row: m.Price) -> PriceObservation:
    return PriceObservation(
        asset=row.asset,
        source=row.source,
        price=row.price,
        conf=row.conf,
        publish_time=int(row.publish_time.timestamp()),
        valid=row.valid,
        invalid_reason=row.invalid_reason,
    )


async def price_history(
    session: AsyncSession, asset: str, since: datetime, *, source: str | None = None
) -> list[tuple[datetime, Decimal]]:
    """Valid prices of `asset` published at or after `since`, oldest first, one per publish
    time (the same oracle update read by several polls counts once). `source` narrows to one
    feed.
    May raise: ValueError (naive since).
    """
    require_aware(since, "since")
    statement = (
        select(m.Price.publish_time, m.Price.price)
        .where(m.Price.asset == asset, m.Price.valid, m.Price.publish_time >= since)
        .ext(distinct_on(m.Price.publish_time))
        .order_by(m.Price.publish_time, m.Price.id.desc())
    )
    if source is not None:
        statement = statement.where(m.Price.source == source)
    return [(moment, price) for moment, price in await session.execute(statement)]


async def existing_heads(session: AsyncSession, head_ids: Sequence[int]) -> set[int]:
    """Those of `head_ids` still stored (pruning deletes old heads with their lines)."""
    if not head_ids:
        return set()
    rows = await session.scalars(select(m.ChainHead.id).where(m.ChainHead.id.in_(list(head_ids))))
    return set(rows)


async def orphaned_head_ids(session: AsyncSession) -> set[int]:
    """Every stored head a reorg replaced."""
    rows = await session.scalars(select(m.ChainHead.id).where(m.ChainHead.orphaned_at.is_not(None)))
    return set(rows)


def issues_of(rows: Sequence[Mapping[str, str]]) -> tuple[LineIssue, ...]:
    """The poll_run `issues` JSON back as LineIssues."""
    return tuple(LineIssue(subject=row["subject"], message=row["message"]) for row in rows)
