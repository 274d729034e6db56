"""The deliverer: posts due outbox events as signed webhooks, records every attempt, retries
with exponential backoff and jitter until a receiver acknowledges (2xx). Nothing is dropped.

Claiming: one short transaction takes due pending rows with `FOR UPDATE SKIP LOCKED`, counts
the attempt and pushes `next_attempt_at` out by a lease (`claim_lease_seconds`, longer than a
POST can take), so two deliverers (a daemon and a cron `xmargin cycle`, or two daemons) never
post the same event at once. The POSTs run outside any transaction, each bounded by
`timeout_seconds`; a second transaction records the outcomes. A process that dies in between
leaves its claims to expire with the lease: those events are posted again (at least once;
receivers dedupe on the `Idempotency-Key`, the event id).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx
from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, BIGINT, TEXT

from aggregator.alerts.config import AlertSettings, WebhookConfig
from aggregator.alerts.outbox import canonical_body
from aggregator.alerts.signing import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, signature_header
from aggregator.store.database import Database

log = logging.getLogger("xmargin.alerts")

PARALLEL_POSTS = 16


class DeliveryObserver(Protocol):
    """Where delivery figures go (the daemon's metrics)."""

    def record_delivery(self, webhook: str, delivered: bool, seconds: float) -> None: ...

    def record_alert_backlog(self, pending: int, oldest_pending_seconds: float | None) -> None: ...


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    row_id: int
    event_id: str
    webhook: str
    kind: str
    user_id: int | None
    attempt: int
    started_at: datetime
    duration_ms: int
    status_code: int | None
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.error is None and self.status_code is not None and 200 <= self.status_code < 300

    def describe(self) -> str:
        what = f"HTTP {self.status_code}" if self.status_code is not None else self.error
        verdict = "delivered" if self.delivered else f"failed ({self.error or what})"
        return (
            f"alert {self.kind} {self.event_id} to {self.webhook}: {verdict}, "
            f"attempt {self.attempt}, {self.duration_ms} ms"
        )


@dataclass(frozen=True)
class DeliveryReport:
    outcomes: tuple[DeliveryOutcome, ...] = ()
    pending: int = 0
    oldest_pending_seconds: float | None = None

    @property
    def delivered(self) -> int:
        return sum(1 for o in self.outcomes if o.delivered)

    @property
    def failed(self) -> int:
        return sum(1 for o in self.outcomes if not o.delivered)

    def describe(self) -> str:
        return (
            f"alerts: {self.delivered} delivered, {self.failed} failed (retried later), "
            f"{self.pending} pending"
        )


def retry_delay(attempt: int, base_seconds: float, max_seconds: float, rng: random.Random) -> float:
    """Seconds before retry after failed attempt number `attempt` (1 = the first POST):
    `base * 2**(attempt-1)` capped at `max_seconds`, then "equal jitter" (half fixed, half
    uniform) so receivers that come back are not hit by every deliverer at once."""
    ceiling = min(max_seconds, base_seconds * 2.0 ** min(attempt - 1, 60))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


_CLAIM = text(
    """
    UPDATE alert_events e
    SET attempts = e.attempts + 1,
        next_attempt_at = now() + make_interval(secs => :lease)
    FROM (
        SELECT id FROM alert_events
        WHERE state = 'pending' AND next_attempt_at <= now() AND webhook = ANY(:webhooks)
          AND (CAST(:only_ids AS bigint[]) IS NULL OR id = ANY(CAST(:only_ids AS bigint[])))
        ORDER BY next_attempt_at, id
        LIMIT :batch
        FOR UPDATE SKIP LOCKED
    ) due
    WHERE e.id = due.id
    RETURNING e.id, e.event_id, e.webhook, e.kind, e.user_id, e.payload, e.attempts
    """
).bindparams(bindparam("webhooks", type_=ARRAY(TEXT)), bindparam("only_ids", type_=ARRAY(BIGINT)))

_DELIVERED = text(
    "UPDATE alert_events SET state = 'delivered', delivered_at = now(), last_error = NULL "
    "WHERE id = :id AND state = 'pending'"
)
_RETRY = text(
    "UPDATE alert_events SET next_attempt_at = now() + make_interval(secs => :delay), "
    "last_error = :error WHERE id = :id AND state = 'pending'"
)
_ATTEMPT = text(
    "INSERT INTO alert_attempts (alert_event_id, attempt, started_at, duration_ms, status_code, "
    "error) VALUES (:id, :attempt, :started_at, :duration_ms, :status_code, :error)"
)
_BACKLOG = text(
    "SELECT count(*), EXTRACT(EPOCH FROM now() - min(created_at)) FROM alert_events "
    "WHERE state = 'pending'"
)


class Deliverer:
    """Posts due events of the configured webhooks; one long-lived HTTP client."""

    def __init__(
        self,
        database: Database,
        settings: AlertSettings,
        *,
        observer: DeliveryObserver | None = None,
        env: Mapping[str, str] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.database = database
        self.settings = settings
        self.observer = observer
        self._env = env
        self._rng = rng or random.Random()
        self._webhooks = {w.name: w for w in settings.webhooks}
        # No redirects: a receiver answering 3xx is a failure to fix, not a place to go.
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.timeout_seconds), follow_redirects=False
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def deliver_due(self, *, only_ids: Sequence[int] | None = None) -> DeliveryReport:
        """Claim up to `batch_size` due events (or only those of `only_ids`), post them
        concurrently, record every attempt; the backlog afterwards.

        May raise: DatabaseUnavailable / sqlalchemy errors (claimed events are retried once
        their lease ends).
        """
        if not self._webhooks:
            return DeliveryReport()
        lease = self.settings.claim_lease_seconds
        async with self.database.session() as session:
            claimed = (
                await session.execute(
                    _CLAIM,
                    {
                        "lease": lease,
                        "webhooks": sorted(self._webhooks),
                        "only_ids": list(only_ids) if only_ids is not None else None,
                        "batch": self.settings.batch_size,
                    },
                )
            ).all()
        gate = asyncio.Semaphore(PARALLEL_POSTS)

        async def post(row: Any) -> DeliveryOutcome:
            async with gate:
                return await self._post(row)

        outcomes = tuple(await asyncio.gather(*(post(row) for row in claimed)))
        async with self.database.session() as session:
            for outcome in outcomes:
                await session.execute(
                    _ATTEMPT,
                    {
                        "id": outcome.row_id,
                        "attempt": outcome.attempt,
                        "started_at": outcome.started_at,
                        "duration_ms": outcome.duration_ms,
                        "status_code": outcome.status_code,
                        "error": outcome.error,
                    },
                )
                if outcome.delivered:
                    await session.execute(_DELIVERED, {"id": outcome.row_id})
                else:
                    delay = retry_delay(
                        outcome.attempt,
                        self.settings.backoff_base_seconds,
                        self.settings.backoff_max_seconds,
                        self._rng,
                    )
                    await session.execute(
                        _RETRY, {"id": outcome.row_id, "delay": delay, "error": outcome.error}
                    )
            pending, oldest = (await session.execute(_BACKLOG)).one()
        for outcome in outcomes:
            self._report(outcome)
        oldest_seconds = None if oldest is None else float(oldest)
        if self.observer is not None:
            self.observer.record_alert_backlog(int(pending), oldest_seconds)
        return DeliveryReport(outcomes, int(pending), oldest_seconds)

    def _report(self, outcome: DeliveryOutcome) -> None:
        fields = {
            "webhook": outcome.webhook,
            "event_id": outcome.event_id,
            "user_id": outcome.user_id,
            "attempt": outcome.attempt,
            "status_code": outcome.status_code,
            "duration_ms": outcome.duration_ms,
        }
        if outcome.delivered:
            log.info(outcome.describe(), extra=fields)
        else:
            log.warning(outcome.describe(), extra=fields)
        if self.observer is not None:
            self.observer.record_delivery(
                outcome.webhook, outcome.delivered, outcome.duration_ms / 1000
            )

    async def _post(self, row: Any) -> DeliveryOutcome:
        webhook: WebhookConfig = self._webhooks[row.webhook]
        started_at = datetime.now(UTC)
        t0 = time.perf_counter()
        status_code: int | None = None
        error: str | None = None
        secret = webhook.secret(self._env)
        if secret is None:
            error = f"signing secret: ${webhook.secret_env} is not set"
        else:
            body = canonical_body(row.payload)
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "xmargin-alerts/1",
                IDEMPOTENCY_HEADER: row.event_id,
                SIGNATURE_HEADER: signature_header(secret, int(time.time()), body),
                "X-Xmargin-Event": row.kind,
                "X-Xmargin-Event-Id": row.event_id,
                "X-Xmargin-Delivery-Attempt": str(row.attempts),
            }
            try:
                # httpx times each read separately; this bounds the whole exchange.
                async with asyncio.timeout(self.settings.timeout_seconds):
                    response = await self._client.post(webhook.url, content=body, headers=headers)
                status_code = response.status_code
                if not 200 <= status_code < 300:
                    error = f"HTTP {status_code}"
            except TimeoutError:
                error = f"timed out after {self.settings.timeout_seconds:g} s"
            except httpx.HTTPError as exc:
                # The URL may carry a token (Slack-style hooks): never echo it.
                detail = str(exc).replace(webhook.url, f"<webhook {webhook.name}>")
                error = f"{type(exc).__name__}: {detail or 'no detail'}"
        return DeliveryOutcome(
            row_id=row.id,
            event_id=row.event_id,
            webhook=webhook.name,
            kind=row.kind,
            user_id=row.user_id,
            attempt=row.attempts,
            started_at=started_at,
            duration_ms=max(0, round((time.perf_counter() - t0) * 1000)),
            status_code=status_code,
            error=error,
        )
