"""Published margin statuses: the latest row per user, history on material change, NOTIFY."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY, BIGINT
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from aggregator.alerts.config import WebhookConfig
from aggregator.alerts.outbox import record_alert_events
from aggregator.store import models as m

STATUS_CHANNEL = "xmargin_status"
"""NOTIFY channel; the payload is the user id as text. Delivered when the publish commits."""

PUBLISH_CHANNEL = "xmargin_publish"
"""NOTIFY channel, once per publish pass that wrote statuses (payload: how many): readers that
cache statuses forget them then."""

DEFAULT_RELATIVE_THRESHOLD = Decimal("0.01")

SUMMARY_FIELDS = (
    "health_factor",
    "equity_usd",
    "weighted_collateral_init_usd",
    "weighted_collateral_maint_usd",
    "requirement_init_usd",
    "requirement_maint_usd",
    "health_init_usd",
    "health_maint_usd",
    "free_collateral_usd",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusRecord:
    """One user's published status: the numbers operators query, and the full document.

    `document` is the API's JSON (money as decimal strings); `inputs` says which block/slot of
    each chain it used (chain → {"height": ..., "hash": ...}). `recorded_at` is set on records
    read back: when the row was written (latest) or appended (history).
    """

    user_id: int
    as_of: datetime
    status: str  # healthy | warning | margin_call | liquidatable
    stale: bool
    stale_chains: tuple[str, ...]
    health_factor: Decimal | None
    equity_usd: Decimal
    weighted_collateral_init_usd: Decimal
    weighted_collateral_maint_usd: Decimal
    requirement_init_usd: Decimal
    requirement_maint_usd: Decimal
    health_init_usd: Decimal
    health_maint_usd: Decimal
    free_collateral_usd: Decimal
    document: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)
    recorded_at: datetime | None = None
    seq: int = 0  # set by publish_statuses; on records read back, the stored version
    history_id: int | None = None  # on records read from the history: the row's id


def _moved(old: Decimal | None, new: Decimal | None, threshold: Decimal) -> bool:
    if old is None or new is None:
        return (old is None) != (new is None)
    if old == new:
        return False
    if old == 0:
        return True
    return abs(new - old) / abs(old) > threshold


def changed_materially(
    old: StatusRecord | None, new: StatusRecord, relative_threshold: Decimal
) -> bool:
    """True when `new` is worth a history row and a notification: first status, another
    status or stale flag or set of stale chains, or health factor / equity moved by more than
    `relative_threshold` of the old value (a health factor appearing or vanishing counts)."""
    if old is None:
        return True
    return (
        old.status != new.status
        or old.stale != new.stale
        or set(old.stale_chains) != set(new.stale_chains)
        or _moved(old.health_factor, new.health_factor, relative_threshold)
        or _moved(old.equity_usd, new.equity_usd, relative_threshold)
    )


def _values(record: StatusRecord, seq: int) -> dict[str, Any]:
    return {
        "user_id": record.user_id,
        "seq": seq,
        "as_of": record.as_of,
        "status": record.status,
        "stale": record.stale,
        "stale_chains": list(record.stale_chains),
        **{name: getattr(record, name) for name in SUMMARY_FIELDS},
        "document": record.document,
        "inputs": record.inputs,
    }


def _record(row: m.MarginStatus | m.MarginStatusHistory, recorded_at: datetime) -> StatusRecord:
    history_id = row.id if isinstance(row, m.MarginStatusHistory) else None
    return StatusRecord(
        user_id=row.user_id,
        as_of=row.as_of,
        status=row.status,
        stale=row.stale,
        stale_chains=tuple(row.stale_chains),
        **{name: getattr(row, name) for name in SUMMARY_FIELDS},
        document=row.document,
        inputs=row.inputs,
        recorded_at=recorded_at,
        seq=row.seq,
        history_id=history_id,
    )


_LAST_RECORDED = text(
    """
    SELECT h.*
    FROM unnest(CAST(:user_ids AS bigint[])) AS wanted(user_id)
    CROSS JOIN LATERAL (
        SELECT * FROM margin_status_history x
        WHERE x.user_id = wanted.user_id
        ORDER BY x.id DESC
        LIMIT 1
    ) AS h
    """
).bindparams(bindparam("user_ids", type_=ARRAY(BIGINT)))


async def publish_statuses(
    session: AsyncSession,
    statuses: Sequence[StatusRecord],
    *,
    relative_threshold: Decimal = DEFAULT_RELATIVE_THRESHOLD,
    webhooks: Sequence[WebhookConfig] = (),
) -> int:
    """Write one publish pass inside the session's transaction; return how many changed.

    Every user's latest row is upserted with its `seq` one above the stored one (1 for a first
    status): the version front ends see as ETag and stream id. Users whose status changed
    materially (see `changed_materially`) since their last history row also get a history row and a
    `NOTIFY xmargin_status, '<user_id>'`, delivered on commit; their alert transitions become
    outbox rows for the matching `webhooks` (`record_alert_events`). Run it in one
    `Database.session()` block so the pass is all or nothing.
    May raise: ValueError (a user twice in one pass), sqlalchemy.exc.IntegrityError (unknown
    user, unknown status).
    """
    if not statuses:
        return 0
    user_ids = [record.user_id for record in statuses]
    if len(set(user_ids)) != len(user_ids):
        raise ValueError("a publish pass lists a user more than once")

    # Row locks so a concurrent publisher cannot interleave between compare and write.
    locked = await session.execute(
        select(m.MarginStatus.user_id, m.MarginStatus.seq)
        .where(m.MarginStatus.user_id.in_(user_ids))
        .with_for_update()
    )
    stored_seq: dict[int, int] = {user_id: seq for user_id, seq in locked.all()}
    seqs = {user_id: stored_seq.get(user_id, 0) + 1 for user_id in user_ids}
    # Compare with the last *recorded* state, not the last published one: slow drift still
    # produces a change once it adds up, so subscribers are never further off than the threshold.
    recorded = await session.scalars(
        select(m.MarginStatusHistory).from_statement(_LAST_RECORDED),
        {"user_ids": user_ids},
    )
    previous = {row.user_id: _record(row, row.recorded_at) for row in recorded}
    changed = [
        record
        for record in statuses
        if changed_materially(previous.get(record.user_id), record, relative_threshold)
    ]
    changed_ids = {record.user_id for record in changed}

    upsert = pg_insert(m.table_of(m.MarginStatus))
    columns = [name for name in _values(statuses[0], 0) if name != "user_id"]
    await session.execute(
        upsert.on_conflict_do_update(
            index_elements=["user_id"],
            set_={**{name: upsert.excluded[name] for name in columns}, "updated_at": func.now()},
        ),
        [_values(record, seqs[record.user_id]) for record in statuses],
    )
    if changed:
        await session.execute(
            update(m.MarginStatus)
            .where(m.MarginStatus.user_id.in_(changed_ids))
            .values(changed_at=func.now())
        )
        await session.execute(
            insert(m.table_of(m.MarginStatusHistory)),
            [_values(record, seqs[record.user_id]) for record in changed],
        )
        await record_alert_events(session, previous, changed, webhooks)
        await session.execute(
            text(
                "SELECT pg_notify(:channel, user_id::text) "
                "FROM unnest(CAST(:user_ids AS bigint[])) AS user_id"
            ).bindparams(bindparam("user_ids", type_=ARRAY(BIGINT))),
            {"channel": STATUS_CHANNEL, "user_ids": sorted(changed_ids)},
        )
    await session.execute(
        text("SELECT pg_notify(:channel, :count)"),
        {"channel": PUBLISH_CHANNEL, "count": str(len(statuses))},
    )
    return len(changed)


async def get_status(session: AsyncSession, user_id: int) -> StatusRecord | None:
    """The latest published status of a user, or None before the first publish."""
    row = await session.get(m.MarginStatus, user_id, populate_existing=True)
    return None if row is None else _record(row, row.updated_at)


async def get_statuses(session: AsyncSession, user_ids: Sequence[int]) -> dict[int, StatusRecord]:
    """The latest published status of each of `user_ids` that has one, by user id."""
    if not user_ids:
        return {}
    rows = await session.scalars(
        select(m.MarginStatus).where(m.MarginStatus.user_id.in_(list(user_ids)))
    )
    return {row.user_id: _record(row, row.updated_at) for row in rows}


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
    return [_record(row, row.recorded_at) for row in rows]


@dataclass(frozen=True, slots=True)
class RecordedDocument:
    """What a stream event needs of a history row: no summary columns, and of the inputs only
    the risk input (for price times)."""

    user_id: int
    seq: int
    recorded_at: datetime
    document: dict[str, Any]
    portfolio: dict[str, Any] | None


_DOCUMENTS_AFTER = text(
    """
    SELECT h.user_id, h.seq, h.recorded_at, h.document, h.inputs -> 'portfolio' AS portfolio
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
        RecordedDocument(row.user_id, row.seq, row.recorded_at, row.document, row.portfolio)
        for row in rows
    ]
