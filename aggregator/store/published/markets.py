"""Valuation markets: the shared inputs of a publish pass, stored once and referred to by id."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from aggregator.store import models as m


async def record_market(
    session: AsyncSession, digest: str, as_of: datetime, inputs: dict[str, Any]
) -> int:
    """The id of the market with `digest`, stored now if it is new (every shard of a pass,
    in its own transaction, finds the same row)."""
    statement = (
        insert(m.ValuationMarket)
        .values(digest=digest, as_of=as_of, inputs=inputs)
        .on_conflict_do_nothing(index_elements=[m.ValuationMarket.digest])
        .returning(m.ValuationMarket.id)
    )
    new_id = await session.scalar(statement)
    if new_id is not None:
        return int(new_id)
    found = await session.scalar(
        select(m.ValuationMarket.id).where(m.ValuationMarket.digest == digest)
    )
    assert found is not None  # the conflict was with this very row
    return int(found)


async def get_markets(session: AsyncSession, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The stored inputs of each market in `ids` that exists."""
    if not ids:
        return {}
    rows = await session.execute(
        select(m.ValuationMarket.id, m.ValuationMarket.inputs).where(
            m.ValuationMarket.id.in_(list(ids))
        )
    )
    return {market_id: inputs for market_id, inputs in rows}


_REFERENCED = text(
    """
    SELECT DISTINCT (inputs ->> 'market')::bigint FROM margin_status
    WHERE inputs ? 'market'
    UNION
    SELECT DISTINCT (inputs ->> 'market')::bigint FROM margin_status_history
    WHERE inputs ? 'market'
    """
)

_REFERENCED_HEADS = text(
    """
    SELECT DISTINCT value::bigint
    FROM margin_status, jsonb_each_text(inputs -> 'heads')
    WHERE inputs ? 'heads'
    """
)


async def heads_in_use(session: AsyncSession) -> set[int]:
    """Heads a latest status row was valued from: their lines render its document on read."""
    return {int(head_id) for (head_id,) in await session.execute(_REFERENCED_HEADS)}


async def prune_markets(session: AsyncSession) -> int:
    """Delete markets no status row (latest or history) refers to; how many."""
    referenced = [int(i) for (i,) in await session.execute(_REFERENCED) if i is not None]
    statement = delete(m.ValuationMarket)
    if referenced:
        statement = statement.where(m.ValuationMarket.id.not_in(referenced))
    result = await session.execute(statement.returning(m.ValuationMarket.id))
    return len(result.all())
