"""Published margin statuses written: the latest row per user, history on material change,
NOTIFY (`write_statuses`); reading them back is `status_reads`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, BIGINT
from sqlalchemy.ext.asyncio import AsyncSession

from aggregator.alerts.config import WebhookConfig
from aggregator.alerts.outbox import record_alert_events
from aggregator.store import models as m
from aggregator.store.database import driver_connection, dumps_json

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


def venue_statuses_changed(recorded: Any, new: StatusRecord) -> bool:
    """True when a venue account appeared, vanished or changed status since the user's last
    history row (`recorded`: [venue, account, subaccount, status] lists, None without one): a
    venue going liquidatable is news even when the unified status is not."""
    keys = ("venue", "account", "subaccount", "status")
    now = sorted(tuple(str(v.get(k) or "") for k in keys) for v in new.document.get("venues") or [])
    if recorded is None:
        return bool(now)
    return sorted(tuple(str(x or "") for x in v) for v in recorded) != now


def _venue_statuses(venues: Any) -> list[list[str | None]]:
    """[venue, account, subaccount, status] of each venue line of a stored document, as
    `_LAST_RECORDED` reads them from a history row (`->>`: text, JSON spelling for others)."""
    if not isinstance(venues, list):
        return []

    def text_of(value: Any) -> str | None:
        return value if isinstance(value, str) or value is None else json.dumps(value)

    keys = ("venue", "account", "subaccount", "status")
    return [[text_of(v.get(k)) for k in keys] for v in venues if isinstance(v, dict)]


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


def status_record(
    row: m.MarginStatus | m.MarginStatusHistory, recorded_at: datetime
) -> StatusRecord:
    """The record of a stored latest or history row (`recorded_at`: its write time)."""
    history_id = row.id if isinstance(row, m.MarginStatusHistory) else None
    return replace(
        _summary_record(row, recorded_at),
        document=row.document,
        inputs=row.inputs,
        history_id=history_id,
    )


_LAST_RECORDED = text(
    """
    SELECT h.*
    FROM unnest(CAST(:user_ids AS bigint[])) AS wanted(user_id)
    CROSS JOIN LATERAL (
        SELECT user_id, seq, as_of, status, stale, stale_chains, health_factor, equity_usd,
               weighted_collateral_init_usd, weighted_collateral_maint_usd,
               requirement_init_usd, requirement_maint_usd, health_init_usd, health_maint_usd,
               free_collateral_usd, recorded_at,
               (SELECT coalesce(jsonb_agg(jsonb_build_array(
                           v ->> 'venue', v ->> 'account', v ->> 'subaccount', v ->> 'status')),
                        '[]'::jsonb)
                FROM jsonb_array_elements(CASE WHEN jsonb_typeof(x.document -> 'venues') = 'array'
                                               THEN x.document -> 'venues'
                                               ELSE '[]'::jsonb END) AS v) AS venue_statuses
        FROM margin_status_history x
        WHERE x.user_id = wanted.user_id
        ORDER BY x.id DESC
        LIMIT 1
    ) AS h
    """
).bindparams(bindparam("user_ids", type_=ARRAY(BIGINT)))


@dataclass(frozen=True, slots=True)
class WriteCounts:
    """What one publish transaction did: rows written (latest), of which material changes
    (history rows and notifications)."""

    written: int
    changed: int


_STORED = """
    SELECT user_id, seq, status, stale, stale_chains, health_factor, equity_usd,
           weighted_collateral_init_usd, weighted_collateral_maint_usd,
           requirement_init_usd, requirement_maint_usd, health_init_usd, health_maint_usd,
           free_collateral_usd, inputs ->> 'digest' AS digest, inputs ->> 'heads' AS heads,
           as_of, document -> 'venues' AS venues,
           updated_at AS recorded_at, changed_at = updated_at AS recorded
    FROM margin_status WHERE user_id = ANY(:user_ids)
"""
_STORED_LOCKED = text(_STORED + " FOR UPDATE").bindparams(
    bindparam("user_ids", type_=ARRAY(BIGINT))
)
_STORED_UNLOCKED = text(_STORED).bindparams(bindparam("user_ids", type_=ARRAY(BIGINT)))


def _heads_of(stored: Any) -> list[int]:
    """The head ids a stored row was valued from (its `inputs.heads`, read as text)."""
    return [int(head) for head in json.loads(stored.heads).values()] if stored.heads else []


def venues_moved(
    stored: Sequence[Any] | None,
    new: Sequence[Any],
    relative_change: Decimal,
) -> bool:
    """Whether a user's venue lines say something new: another set of venue accounts, another
    status or problem, or a metric moved by more than `relative_change` of the stored one."""
    stored = stored or []
    if len(stored) != len(new):
        return True
    for old, line in zip(stored, new, strict=True):
        for key in ("venue", "account", "subaccount", "status", "problem"):
            if old.get(key) != line.get(key):
                return True
        before, after = old.get("value"), line.get("value")
        if before == after:
            continue
        if before is None or after is None:
            return True
        was, now = Decimal(before), Decimal(after)
        if not was or abs(now - was) > relative_change * abs(was):
            return True
    return False


def superseded(stored: Any, record: StatusRecord, orphaned_heads: set[int]) -> bool:
    """Whether the stored row was valued later than `record` (and from heads still
    canonical): a pass that read its market before a repricing (`publish.reprice`) or before
    a newer pass must not put its older prices back over theirs."""
    if record.as_of >= stored.as_of:
        return False
    return not (orphaned_heads and any(head in orphaned_heads for head in _heads_of(stored)))


def needs_rewrite(
    stored: Any,
    record: StatusRecord,
    relative_change: Decimal,
    orphaned_heads: set[int],
    refresh_after: timedelta | None = None,
) -> bool:
    """Whether `record` must replace the stored row `stored` (a `_STORED` row): its status
    or staleness differ, what its digest covers changed (the pass's: wallets, lines, unpriced
    assets, failing polls, config), a head the stored row was valued from was orphaned, a venue
    line says something new (`venues_moved`), or a headline number moved by more than
    `relative_change` of the stored value, or the stored
    row was valued more than `refresh_after` before this one. Otherwise the stored row still
    says the same."""
    if refresh_after is not None and record.as_of - stored.as_of >= refresh_after:
        return True
    if (
        stored.status != record.status
        or stored.stale != record.stale
        or stored.digest is None
        or stored.digest != record.inputs.get("digest")
    ):
        return True
    if tuple(stored.stale_chains) != record.stale_chains and set(stored.stale_chains) != set(
        record.stale_chains
    ):
        return True
    if orphaned_heads and any(head in orphaned_heads for head in _heads_of(stored)):
        return True
    new_venues = record.document.get("venues") or []
    if (stored.venues or new_venues) and venues_moved(stored.venues, new_venues, relative_change):
        return True
    # Every pass asks this of every user: equal numbers first, and the relative move without
    # a division (|new - old| > r |old| is `_moved`'s test).
    for name in SUMMARY_FIELDS:
        old, new = getattr(stored, name), getattr(record, name)
        if old == new:
            continue
        if old is None or new is None or not old:
            return True
        if abs(new - old) > relative_change * abs(old):
            return True
    return False


def _summary_record(row: Any, recorded_at: datetime | None = None) -> StatusRecord:
    """A status row's summary columns (no document or inputs) as a record."""
    return StatusRecord(
        user_id=row.user_id,
        as_of=row.as_of,
        status=row.status,
        stale=row.stale,
        stale_chains=tuple(row.stale_chains),
        **{name: getattr(row, name) for name in SUMMARY_FIELDS},
        recorded_at=recorded_at if recorded_at is not None else row.recorded_at,
        seq=row.seq,
    )


_STAGE_COLUMNS = (
    "user_id",
    "seq",
    "as_of",
    "status",
    "stale",
    "stale_chains",
    *SUMMARY_FIELDS,
    "document",
    "inputs",
)
_COLUMN_LIST = ", ".join(_STAGE_COLUMNS)
_CREATE_STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS publish_stage "
    "(LIKE margin_status INCLUDING DEFAULTS, material boolean NOT NULL) ON COMMIT DELETE ROWS"
)
_UPSERT_FROM_STAGE = f"""
    INSERT INTO margin_status ({_COLUMN_LIST}, updated_at, changed_at)
    SELECT {_COLUMN_LIST}, now(), CASE WHEN material THEN now() ELSE '-infinity' END
    FROM publish_stage
    ON CONFLICT (user_id) DO UPDATE SET
    {", ".join(f"{c} = EXCLUDED.{c}" for c in _STAGE_COLUMNS if c != "user_id")},
    updated_at = now(),
    changed_at = CASE WHEN EXCLUDED.changed_at = '-infinity' THEN margin_status.changed_at
                      ELSE EXCLUDED.changed_at END
"""
# History rows are copies of the latest rows just written (the same transaction's own rows):
# the documents are parsed once, on the way in.
_HISTORY_FROM_LATEST = text(
    f"""
    INSERT INTO margin_status_history ({_COLUMN_LIST})
    SELECT {_COLUMN_LIST} FROM margin_status
    WHERE user_id = ANY(:user_ids) ORDER BY user_id
    """
).bindparams(bindparam("user_ids", type_=ARRAY(BIGINT)))
_NOT_CHANGED_YET = text(
    "UPDATE margin_status SET changed_at = '-infinity' WHERE user_id = ANY(:user_ids)"
).bindparams(bindparam("user_ids", type_=ARRAY(BIGINT)))


def _copy_text(value: str) -> str:
    """`value` escaped for COPY's text format."""
    return (
        value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    )


def _copy_json(value: dict[str, Any]) -> bytes:
    """`value` as JSON for COPY's text format (orjson never writes a raw tab or newline:
    only its backslashes need doubling). Money is already text in documents; a Decimal left
    anywhere still goes out as its exact text."""
    try:
        encoded = orjson.dumps(value, default=_json_text)
    except orjson.JSONEncodeError:  # e.g. an integer beyond 64 bits: the standard encoder
        encoded = dumps_json(value).encode()
    return encoded.replace(b"\\", b"\\\\")


def _json_text(value: Any) -> str:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _copy_decimal(value: Decimal | None) -> str:
    return "\\N" if value is None else str(value)


def _copy_array(values: Sequence[str]) -> str:
    return _copy_text("{" + ",".join(json.dumps(v) for v in values) + "}")


def _stage_line(record: StatusRecord, seq: int, material: bool) -> bytes:
    head = "\t".join(
        (
            str(record.user_id),
            str(seq),
            record.as_of.isoformat(),
            record.status,
            "t" if record.stale else "f",
            _copy_array(record.stale_chains),
            *(_copy_decimal(getattr(record, name)) for name in SUMMARY_FIELDS),
        )
    )
    return b"\t".join(
        (
            head.encode(),
            _copy_json(record.document),
            _copy_json(record.inputs),
            b"t" if material else b"f",
        )
    )


async def _stage(
    session: AsyncSession,
    statuses: Sequence[StatusRecord],
    seqs: dict[int, int],
    material: set[int],
) -> None:
    """COPY the rows to write into this transaction's `publish_stage` (a temporary table),
    on the session's own connection: one round trip for a shard of any size."""
    await session.execute(text(_CREATE_STAGE))
    await session.execute(text("TRUNCATE publish_stage"))
    body = b"\n".join(_stage_line(r, seqs[r.user_id], r.user_id in material) for r in statuses)
    driver = await driver_connection(session)
    async with driver.cursor() as cursor:
        copy_sql = f"COPY publish_stage ({_COLUMN_LIST}, material) FROM STDIN"
        async with cursor.copy(copy_sql) as copy:
            await copy.write(body)


async def _insert_new(
    session: AsyncSession, statuses: Sequence[StatusRecord], material: set[int]
) -> None:
    """COPY first statuses straight into `margin_status` (seq 1): only for users no other
    transaction can be writing (the caller's lock covers them), since COPY has no ON CONFLICT.
    `updated_at` and `changed_at` take their default, the transaction's `now()`; a first
    status that is not a material change (its user has history rows) gets `-infinity`, as
    the upsert gives it."""
    body = b"\n".join(_stage_line(r, 1, False).rpartition(b"\t")[0] for r in statuses)
    driver = await driver_connection(session)
    async with driver.cursor() as cursor:
        async with cursor.copy(f"COPY margin_status ({_COLUMN_LIST}) FROM STDIN") as copy:
            await copy.write(body)
    quiet = [r.user_id for r in statuses if r.user_id not in material]
    if quiet:
        await session.execute(_NOT_CHANGED_YET, {"user_ids": quiet})


async def publish_statuses(
    session: AsyncSession,
    statuses: Sequence[StatusRecord],
    *,
    relative_threshold: Decimal = DEFAULT_RELATIVE_THRESHOLD,
    webhooks: Sequence[WebhookConfig] = (),
) -> int:
    """Write every status of `statuses` (see `write_statuses`); return how many changed."""
    counts = await write_statuses(
        session, statuses, relative_threshold=relative_threshold, webhooks=webhooks
    )
    return counts.changed


async def write_statuses(
    session: AsyncSession,
    statuses: Sequence[StatusRecord],
    *,
    relative_threshold: Decimal = DEFAULT_RELATIVE_THRESHOLD,
    webhooks: Sequence[WebhookConfig] = (),
    republish_change: Decimal | None = None,
    orphaned_heads: set[int] | None = None,
    refresh_after: timedelta | None = None,
    row_locks: bool = True,
) -> WriteCounts:
    """Write statuses inside the session's transaction.

    With `republish_change` None every status is written; otherwise only those that
    `needs_rewrite` and are not `superseded` by a later valuation (and users with no row
    yet), `refresh_after` bounding how long an
    unchanged row stays. The stored rows are read `FOR UPDATE` so a concurrent publisher
    cannot interleave between compare and write; `row_locks=False` when the caller's lock
    already excludes one (a publish shard's advisory lock): locking every row of a shard
    writes to each of them even when nothing changes (and lets first statuses be COPYed in
    directly, with no upsert). A written user's latest row is upserted with
    its `seq` one above the stored one (1 for a first status): the version front ends see as
    ETag and stream id. Written users whose status changed materially (see
    `changed_materially`) since their last history row also get a history row and a
    `NOTIFY xmargin_status, '<user_id>'`, delivered on commit; their alert transitions become
    outbox rows for the matching `webhooks` (`record_alert_events`). Run it in one
    `Database.session()` block so the pass is all or nothing.
    May raise: ValueError (a user twice in one pass), sqlalchemy.exc.IntegrityError (unknown
    user, unknown status).
    """
    if not statuses:
        return WriteCounts(0, 0)
    user_ids = [record.user_id for record in statuses]
    if len(set(user_ids)) != len(user_ids):
        raise ValueError("a publish pass lists a user more than once")

    query = _STORED_LOCKED if row_locks else _STORED_UNLOCKED
    stored = {row.user_id: row for row in await session.execute(query, {"user_ids": user_ids})}
    if republish_change is not None:
        orphaned = orphaned_heads or set()
        statuses = [
            record
            for record in statuses
            if record.user_id not in stored
            or (
                not superseded(stored[record.user_id], record, orphaned)
                and needs_rewrite(
                    stored[record.user_id], record, republish_change, orphaned, refresh_after
                )
            )
        ]
        if not statuses:
            return WriteCounts(0, 0)
        user_ids = [record.user_id for record in statuses]
    seqs = {user_id: (stored[user_id].seq if user_id in stored else 0) + 1 for user_id in user_ids}
    # Compare with the last *recorded* state, not the last published one: slow drift still
    # produces a change once it adds up, so subscribers are never further off than the threshold.
    # A stored row written as a material change (`recorded`) is that state: its history row is
    # a copy of it. Only the others need their last history row read.
    latest = [stored[u] for u in user_ids if u in stored and stored[u].recorded]
    unread = [u for u in user_ids if u not in stored or not stored[u].recorded]
    rows = (await session.execute(_LAST_RECORDED, {"user_ids": unread})).all() if unread else []
    previous = {row.user_id: _summary_record(row) for row in rows}
    venues_then = {row.user_id: row.venue_statuses for row in rows}
    for row in latest:
        previous[row.user_id] = _summary_record(row)
        venues_then[row.user_id] = _venue_statuses(row.venues)
    changed = [
        record
        for record in statuses
        if changed_materially(previous.get(record.user_id), record, relative_threshold)
        or venue_statuses_changed(venues_then.get(record.user_id), record)
    ]
    changed_ids = {record.user_id for record in changed}

    # Users with no row yet, under the caller's lock: COPY them in directly (a first pass
    # writes every user so); the others through the stage and an upsert.
    fresh = [] if row_locks else [record for record in statuses if record.user_id not in stored]
    known = [record for record in statuses if record.user_id in stored] if fresh else statuses
    if known:
        await _stage(session, known, seqs, changed_ids)
        await session.execute(text(_UPSERT_FROM_STAGE))
    if fresh:
        await _insert_new(session, fresh, changed_ids)
    if changed:
        await session.execute(_HISTORY_FROM_LATEST, {"user_ids": sorted(changed_ids)})
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
    return WriteCounts(len(statuses), len(changed))
