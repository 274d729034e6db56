"""Published margin statuses read back: a user's latest status, their history pages, and the
history rows a stream client missed (`documents_after`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, text
from sqlalchemy.dialects.postgresql import ARRAY, BIGINT
from sqlalchemy.ext.asyncio import AsyncSession

from aggregator.store import models as m
from aggregator.store.published.statuses import StatusRecord, status_record


async def get_status(session: AsyncSession, user_id: int) -> StatusRecord | None:
    """The latest published status of a user, or None before the first publish."""
    row = await session.get(m.MarginStatus, user_id, populate_existing=True)
    return None if row is None else status_record(row, row.updated_at)


async def get_statuses(session: AsyncSession, user_ids: Sequence[int]) -> dict[int, StatusRecord]:
    """The latest published status of each of `user_ids` that has one, by user id."""
    if not user_ids:
        return {}
    rows = await session.scalars(
        select(m.MarginStatus).where(m.MarginStatus.user_id.in_(list(user_ids)))
    )
    return {row.user_id: status_record(row, row.updated_at) for row in rows}


async def status_history(
    session: AsyncSession,
    user_id: int,
    limit: int = 100,
    *,
    before_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[StatusRecord]:
    """The user's material status changes, newest first, at most `limit`: rows older than
    `before_id` (a page's cursor: the `history_id` of the last record seen) whose `as_of`
    lies in [`since`, `until`)."""
    query = select(m.MarginStatusHistory).where(m.MarginStatusHistory.user_id == user_id)
    if before_id is not None:
        query = query.where(m.MarginStatusHistory.id < before_id)
    if since is not None:
        query = query.where(m.MarginStatusHistory.as_of >= since)
    if until is not None:
        query = query.where(m.MarginStatusHistory.as_of < until)
    rows = await session.scalars(query.order_by(m.MarginStatusHistory.id.desc()).limit(limit))
    return [status_record(row, row.recorded_at) for row in rows]


@dataclass(frozen=True, slots=True)
class RecordedDocument:
    """What a stream event needs of a history row: no summary columns; the document and its
    inputs (the risk input, for price times, or the references it is rendered from)."""

    user_id: int
    seq: int
    recorded_at: datetime
    document: dict[str, Any]
    inputs: dict[str, Any]

    @property
    def portfolio(self) -> dict[str, Any] | None:
        portfolio = self.inputs.get("portfolio")
        return portfolio if isinstance(portfolio, dict) else None


_DOCUMENTS_AFTER = text(
    """
    SELECT h.user_id, h.seq, h.recorded_at, h.document, h.inputs
    FROM unnest(CAST(:user_ids AS bigint[]), CAST(:seqs AS bigint[])) AS seen(user_id, seq)
    CROSS JOIN LATERAL (
        SELECT user_id, seq, recorded_at, document, inputs FROM margin_status_history x
        WHERE x.user_id = seen.user_id AND x.seq > seen.seq
        ORDER BY x.seq
        LIMIT :per_user
    ) AS h
    ORDER BY h.user_id, h.seq
    """
).bindparams(
    bindparam("user_ids", type_=ARRAY(BIGINT)),
    bindparam("seqs", type_=ARRAY(BIGINT)),
)


async def documents_after(
    session: AsyncSession, seqs: dict[int, int], limit_per_user: int = 1000
) -> list[RecordedDocument]:
    """For each user id → seq in `seqs`, the history rows with a greater seq, oldest first per
    user (at most `limit_per_user` each): what a stream client that saw `seq` missed. Only what
    an event is rendered from is read (one Core query, no ORM objects)."""
    if not seqs:
        return []
    rows = await session.execute(
        _DOCUMENTS_AFTER,
        {
            "user_ids": list(seqs),
            "seqs": [seqs[user_id] for user_id in seqs],
            "per_user": limit_per_user,
        },
    )
    return [
        RecordedDocument(row.user_id, row.seq, row.recorded_at, row.document, row.inputs)
        for row in rows
    ]
