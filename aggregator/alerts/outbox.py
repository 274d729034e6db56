"""The alert outbox: status transitions become rows in the publish transaction.

An event is written in the same transaction as the status that caused it, so a pass that
commits has its events and a pass that rolls back has none; the deliverer (`deliver.py`) posts
them afterwards until each is acknowledged.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, insert, text
from sqlalchemy.dialects.postgresql import ARRAY, BIGINT, TEXT
from sqlalchemy.ext.asyncio import AsyncSession

from aggregator.alerts.config import TEST_KIND, WebhookConfig
from aggregator.store import models as m

if TYPE_CHECKING:
    from aggregator.store.published.statuses import StatusRecord

ALERTING_STATUSES = ("warning", "margin_call", "liquidatable")
_SEVERITY = {"healthy": 0, "warning": 1, "margin_call": 2, "liquidatable": 3}


def transitions(previous: StatusRecord | None, new: StatusRecord) -> list[str]:
    """The alert kinds `new` produces after `previous` (the last recorded status, None before
    the first): into warning / margin_call / liquidatable, back to healthy from any of them,
    and `stale` when the status goes stale or another chain goes stale.

    May raise: nothing.
    """
    kinds: list[str] = []
    old_status = previous.status if previous is not None else "healthy"
    if new.status != old_status and (new.status in ALERTING_STATUSES or previous is not None):
        kinds.append(new.status)
    old_stale = set(previous.stale_chains) if previous is not None and previous.stale else set()
    if new.stale and (not old_stale or set(new.stale_chains) - old_stale):
        kinds.append("stale")
    return kinds


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _summary(record: StatusRecord, seq: int | None) -> dict[str, Any]:
    return {
        "status": record.status,
        "stale": record.stale,
        "stale_chains": list(record.stale_chains),
        "as_of": _iso(record.as_of),
        "seq": seq,
        "health_factor": _money(record.health_factor),
        "equity_usd": _money(record.equity_usd),
        "health_maint_usd": _money(record.health_maint_usd),
        "requirement_maint_usd": _money(record.requirement_maint_usd),
        "free_collateral_usd": _money(record.free_collateral_usd),
    }


def canonical_body(payload: Mapping[str, Any]) -> bytes:
    """The exact bytes posted (and signed) for an event: sorted keys, no spaces, UTF-8."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _suppressed(
    webhook: WebhookConfig,
    kind: str,
    last: Mapping[tuple[str, int, bool], tuple[str, datetime]],
    user_id: int,
    now: datetime,
) -> bool:
    """Within the webhook's minimum interval after the pair's last sent event of the same
    group (status kinds, or stale), an event is held back, unless it escalates: a status more
    severe than the last one always goes out."""
    if webhook.min_interval_seconds <= 0:
        return False
    found = last.get((webhook.name, user_id, kind == "stale"))
    if found is None:
        return False
    last_kind, created_at = found
    if now - created_at >= timedelta(seconds=webhook.min_interval_seconds):
        return False
    if kind != "stale" and _SEVERITY.get(kind, 0) > _SEVERITY.get(last_kind, 0):
        return False
    return True


_USERS = text(
    """
    SELECT u.id, u.name, s.seq FROM users u LEFT JOIN margin_status s ON s.user_id = u.id
    WHERE u.id = ANY(:user_ids)
    """
).bindparams(bindparam("user_ids", type_=ARRAY(BIGINT)))

_LAST_SENT = text(
    """
    SELECT DISTINCT ON (webhook, user_id, kind = 'stale')
           webhook, user_id, kind = 'stale' AS is_stale, kind, created_at
    FROM alert_events
    WHERE user_id = ANY(:user_ids) AND webhook = ANY(:webhooks) AND state <> 'suppressed'
    ORDER BY webhook, user_id, kind = 'stale', id DESC
    """
).bindparams(bindparam("user_ids", type_=ARRAY(BIGINT)), bindparam("webhooks", type_=ARRAY(TEXT)))


async def record_alert_events(
    session: AsyncSession,
    previous: Mapping[int, StatusRecord],
    changed: Sequence[StatusRecord],
    webhooks: Sequence[WebhookConfig],
) -> int:
    """Write one outbox row per transition of `changed` (compared with `previous`, the last
    recorded status by user id) and matching webhook, inside the session's transaction;
    return how many are pending delivery. Rows held back by a webhook's minimum interval are
    written as `suppressed` (kept for the record, never sent).

    May raise: sqlalchemy errors (the caller's transaction then rolls back with the statuses).
    """
    if not webhooks or not changed:
        return 0
    wanted = {
        r.user_id: kinds for r in changed if (kinds := transitions(previous.get(r.user_id), r))
    }
    if not wanted:
        return 0
    user_ids = sorted(wanted)
    users = {
        row.id: (row.name, row.seq) for row in await session.execute(_USERS, {"user_ids": user_ids})
    }
    now: datetime = (await session.execute(text("SELECT now()"))).scalar_one()
    last: dict[tuple[str, int, bool], tuple[str, datetime]] = {}
    timed = [w.name for w in webhooks if w.min_interval_seconds > 0]
    if timed:
        rows = await session.execute(_LAST_SENT, {"user_ids": user_ids, "webhooks": timed})
        last = {(r.webhook, r.user_id, r.is_stale): (r.kind, r.created_at) for r in rows}

    events: list[dict[str, Any]] = []
    for record in changed:
        if record.user_id not in wanted:
            continue
        kinds = wanted[record.user_id]
        name, seq = users.get(record.user_id, (str(record.user_id), None))
        before = previous.get(record.user_id)
        for kind in kinds:
            for webhook in webhooks:
                if not webhook.wants(kind, name):
                    continue
                event_id = str(uuid.uuid4())
                payload = {
                    "id": event_id,
                    "type": kind,
                    "created_at": _iso(now),
                    "webhook": webhook.name,
                    "user": {"id": record.user_id, "name": name},
                    "previous": None if before is None else _summary(before, before.seq),
                    "status": _summary(record, seq),
                }
                suppressed = _suppressed(webhook, kind, last, record.user_id, now)
                if not suppressed and webhook.min_interval_seconds > 0:
                    last[(webhook.name, record.user_id, kind == "stale")] = (kind, now)
                events.append(
                    {
                        "event_id": event_id,
                        "webhook": webhook.name,
                        "kind": kind,
                        "user_id": record.user_id,
                        "payload": payload,
                        "state": "suppressed" if suppressed else "pending",
                    }
                )
    if events:
        await session.execute(insert(m.table_of(m.AlertEvent)), events)
    return sum(1 for event in events if event["state"] == "pending")


async def enqueue_test_event(session: AsyncSession, webhook: WebhookConfig) -> int:
    """Queue a `test` event for `webhook` (what `xmargin alerts test` sends); its row id."""
    event_id = str(uuid.uuid4())
    payload = {
        "id": event_id,
        "type": TEST_KIND,
        "created_at": _iso(datetime.now(UTC)),
        "webhook": webhook.name,
        "user": None,
        "previous": None,
        "status": None,
    }
    row_id: int = (
        await session.execute(
            insert(m.table_of(m.AlertEvent))
            .values(event_id=event_id, webhook=webhook.name, kind=TEST_KIND, payload=payload)
            .returning(m.table_of(m.AlertEvent).c.id)
        )
    ).scalar_one()
    return row_id
