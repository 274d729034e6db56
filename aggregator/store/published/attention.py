"""Operator reads over published statuses: accounts needing attention, users per status."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, TEXT
from sqlalchemy.ext.asyncio import AsyncSession

# Nearest to liquidation first: the maintenance health factor (weighted collateral over the
# maintenance requirement; liquidation at 1) compares accounts of any size, unlike the USD
# buffer; the buffer breaks ties, then the user id. No health factor (nothing owed) goes last.
_ATTENTION = text(
    """
    SELECT user_id, user_name, status, stale, stale_chains, health_factor, equity_usd,
           health_maint_usd, requirement_maint_usd, free_collateral_usd, as_of,
           EXTRACT(EPOCH FROM age) AS age_seconds
    FROM v_user_margin
    WHERE status = ANY(:statuses)
    ORDER BY health_factor ASC NULLS LAST, health_maint_usd ASC, user_id
    LIMIT :limit
    """
).bindparams(bindparam("statuses", type_=ARRAY(TEXT)))

_COUNTS = text(
    "SELECT status, count(*) AS users, count(*) FILTER (WHERE stale) AS stale "
    "FROM margin_status GROUP BY status"
)


@dataclass(frozen=True, slots=True)
class AttentionRow:
    user_id: int
    user_name: str
    status: str
    stale: bool
    stale_chains: tuple[str, ...]
    health_factor: Decimal | None
    equity_usd: Decimal
    health_maint_usd: Decimal
    requirement_maint_usd: Decimal
    free_collateral_usd: Decimal
    as_of: datetime
    age_seconds: float


async def accounts_needing_attention(
    session: AsyncSession, statuses: Sequence[str], limit: int = 1000
) -> list[AttentionRow]:
    """Users whose latest status is one of `statuses`, nearest to liquidation first (health
    factor ascending, then maintenance health in USD ascending)."""
    rows = await session.execute(_ATTENTION, {"statuses": list(statuses), "limit": limit})
    return [
        AttentionRow(
            user_id=r.user_id,
            user_name=r.user_name,
            status=r.status,
            stale=r.stale,
            stale_chains=tuple(r.stale_chains),
            health_factor=r.health_factor,
            equity_usd=r.equity_usd,
            health_maint_usd=r.health_maint_usd,
            requirement_maint_usd=r.requirement_maint_usd,
            free_collateral_usd=r.free_collateral_usd,
            as_of=r.as_of,
            age_seconds=float(r.age_seconds),
        )
        for r in rows
    ]


async def status_counts(session: AsyncSession) -> tuple[dict[str, int], int]:
    """Users per latest status, and how many of them are stale."""
    rows = (await session.execute(_COUNTS)).all()
    return {r.status: int(r.users) for r in rows}, sum(int(r.stale) for r in rows)
