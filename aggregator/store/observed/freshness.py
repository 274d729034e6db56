"""Each chain's newest good read point and its last poll: what `/v1/chains` and `/readyz`
report."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_FRESHNESS = text(
    """
    SELECT f.chain, f.height, f.block_hash, f.block_timestamp, f.failures_since_head,
           p.finished_at, p.ok, p.error, p.duration_ms, p.endpoint, p.height AS poll_height
    FROM v_chain_freshness f
    LEFT JOIN LATERAL (
        SELECT finished_at, ok, error, duration_ms, endpoint, height FROM poll_runs r
        WHERE r.chain = f.chain ORDER BY r.id DESC LIMIT 1
    ) p ON true
    """
)


@dataclass(frozen=True, slots=True)
class ChainFreshness:
    chain: str
    height: int | None
    block_hash: str | None
    block_time: datetime | None
    failures_since_head: int
    last_poll_at: datetime | None
    last_poll_ok: bool | None
    last_poll_error: str | None
    last_poll_duration_ms: int | None
    last_poll_endpoint: str | None
    last_poll_height: int | None


async def chain_freshness(session: AsyncSession) -> dict[str, ChainFreshness]:
    """Per chain key known to the store (configured or ever polled)."""
    rows = await session.execute(_FRESHNESS)
    return {
        row.chain: ChainFreshness(
            chain=row.chain,
            height=row.height,
            block_hash=row.block_hash,
            block_time=row.block_timestamp,
            failures_since_head=int(row.failures_since_head or 0),
            last_poll_at=row.finished_at,
            last_poll_ok=row.ok,
            last_poll_error=row.error,
            last_poll_duration_ms=row.duration_ms,
            last_poll_endpoint=row.endpoint,
            last_poll_height=row.poll_height,
        )
        for row in rows
    }
