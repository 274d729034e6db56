"""The live stream's hub: one LISTEN connection per process, fanned out to every client.

Publish sends `NOTIFY xmargin_status, '<user_id>'` for each material change (a history row)
and `NOTIFY xmargin_publish` once per pass. The hub turns a batch of status notifications into
one query for the history rows each subscriber has not seen (by `seq`), renders each row once,
and puts it on the queue of every subscriber of that user. Queues are bounded: a subscriber
that falls `queue_size` events behind is dropped (it gets a final `dropped` event), so a slow
client never slows the others. When the LISTEN connection is lost, the hub reconnects with
backoff and replays from each subscriber's last seq, so nothing is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Iterable
from dataclasses import dataclass, field

import psycopg

from aggregator.api.metrics import ApiMetrics
from aggregator.api.reads.status_reader import StatusReader
from aggregator.api.reads.views import render_status
from aggregator.api.responses import dumps
from aggregator.publish.documents import complete
from aggregator.store.database import Database, libpq_url
from aggregator.store.published.status_reads import RecordedDocument, documents_after
from aggregator.store.published.statuses import (
    PUBLISH_CHANNEL,
    STATUS_CHANNEL,
    StatusRecord,
)

log = logging.getLogger("xmargin.api.stream")

CATCH_UP_SLICE = 100  # users per catch-up query


@dataclass(frozen=True, slots=True)
class StatusEvent:
    """One status version of one user, rendered once and shared by every subscriber."""

    user_id: int
    seq: int
    data: bytes


def event_of(record: StatusRecord | RecordedDocument) -> StatusEvent:
    portfolio = (
        record.portfolio if isinstance(record, RecordedDocument) else record.inputs.get("portfolio")
    )
    view = render_status(
        record.document, portfolio, seq=record.seq, published_at=record.recorded_at
    )
    return StatusEvent(record.user_id, record.seq, dumps(view))


@dataclass(eq=False)
class Subscription:
    """One stream client: its users, the last seq it was sent per user, its bounded queue.
    `None` on the queue means: dropped, send the final event and close.

    A subscription is registered before its first events (snapshot or replay) are read, and
    is `ready` once they are: changes notified in between are remembered in `missed` and
    fetched on activation, so none falls in the gap."""

    user_ids: tuple[int, ...]
    queue: asyncio.Queue[StatusEvent | None]
    last_seq: dict[int, int] = field(default_factory=dict)
    ready: bool = False
    missed: set[int] = field(default_factory=set)
    dropped: bool = False

    def offer(self, event: StatusEvent) -> bool:
        """Queue `event` unless this client already has it; False when the client is full."""
        if self.dropped or not self.ready or event.seq <= self.last_seq.get(event.user_id, 0):
            return True
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            return False
        self.last_seq[event.user_id] = event.seq
        return True

    def drop(self) -> None:
        self.dropped = True
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)


class StatusHub:
    """Subscriptions by user and the listener task that feeds them."""

    def __init__(
        self,
        database: Database,
        reader: StatusReader,
        *,
        queue_size: int = 256,
        metrics: ApiMetrics | None = None,
        batch_seconds: float = 0.005,
    ) -> None:
        self.database = database
        self.reader = reader
        self.queue_size = queue_size
        self.metrics = metrics
        self.batch_seconds = batch_seconds
        self.listening = asyncio.Event()
        self._by_user: dict[int, set[Subscription]] = {}
        self._pending: set[int] = set()
        self._flush_task: asyncio.Task[None] | None = None
        self._task: asyncio.Task[None] | None = None

    # --- subscriptions ----------------------------------------------------------------------

    def subscribe(self, user_ids: Iterable[int]) -> Subscription:
        """Register a client before it reads its first events, so no change is missed."""
        users = tuple(dict.fromkeys(user_ids))
        subscription = Subscription(users, asyncio.Queue(maxsize=self.queue_size + 1))
        for user_id in users:
            self._by_user.setdefault(user_id, set()).add(subscription)
        if self.metrics is not None:
            self.metrics.stream_clients.inc()
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        for user_id in subscription.user_ids:
            subscribers = self._by_user.get(user_id)
            if subscribers is not None:
                subscribers.discard(subscription)
                if not subscribers:
                    del self._by_user[user_id]
        if self.metrics is not None:
            self.metrics.stream_clients.dec()

    @property
    def client_count(self) -> int:
        return len({s for subs in self._by_user.values() for s in subs})

    def deliver(self, events: Iterable[StatusEvent]) -> None:
        """Queue each event to its user's subscribers; drop the ones that are full."""
        for event in events:
            for subscription in list(self._by_user.get(event.user_id, ())):
                if not subscription.offer(event):
                    subscription.drop()
                    log.info("stream client dropped: %d events behind", self.queue_size)
                    if self.metrics is not None:
                        self.metrics.stream_dropped.inc()
                elif self.metrics is not None:
                    self.metrics.stream_events.inc()

    async def activate(self, subscription: Subscription, last_seq: dict[int, int]) -> None:
        """Mark a subscription ready at `last_seq` (what its first events reached), then
        fetch what was notified for its users meanwhile."""
        subscription.last_seq.update(last_seq)
        subscription.ready = True
        missed, subscription.missed = subscription.missed, set()
        if missed:
            await self.catch_up(missed)

    async def catch_up(self, user_ids: Iterable[int]) -> None:
        """Fetch and deliver what the ready subscribers of `user_ids` have not seen yet."""
        positions: dict[int, int] = {}
        for user_id in user_ids:
            ready = []
            for subscription in self._by_user.get(user_id, ()):
                if subscription.ready:
                    ready.append(subscription.last_seq.get(user_id, 0))
                else:
                    subscription.missed.add(user_id)
            if ready:
                positions[user_id] = min(ready)
        # In slices: the first clients get their events while later slices are still read.
        users = list(positions)
        for start in range(0, len(users), CATCH_UP_SLICE):
            part = {u: positions[u] for u in users[start : start + CATCH_UP_SLICE]}
            async with self.database.session() as session:
                records = await complete(
                    session, self.reader.config, await documents_after(session, part)
                )
            self.deliver(event_of(record) for record in records)
            await asyncio.sleep(0)  # let the writes go out

    # --- the listener -----------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._listen_forever(), name="xmargin-stream-hub")

    async def stop(self) -> None:
        for task in (self._task, self._flush_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._task = None
        self._flush_task = None
        for subscribers in list(self._by_user.values()):
            for subscription in list(subscribers):
                subscription.drop()

    async def _listen_forever(self) -> None:
        delay = 0.2
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    libpq_url(self.database.url), autocommit=True, connect_timeout=5
                )
            except (psycopg.Error, OSError) as exc:
                log.warning("stream hub: cannot LISTEN (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay * (1 + random.random() / 2))
                delay = min(delay * 2, 5.0)
                continue
            try:
                async with conn:
                    await conn.execute(f"LISTEN {STATUS_CHANNEL}")
                    await conn.execute(f"LISTEN {PUBLISH_CHANNEL}")
                    delay = 0.2
                    self.reader.set_cache_enabled(True)
                    self.listening.set()
                    # What was committed while we were not listening.
                    await self.catch_up(list(self._by_user))
                    async for note in conn.notifies():
                        if note.channel == PUBLISH_CHANNEL:
                            self.reader.invalidate()
                        elif note.payload.isdigit():
                            self._queue_flush(int(note.payload))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # connection lost, server restarted, query failed
                log.warning("stream hub: LISTEN connection lost (%s); reconnecting", exc)
            finally:
                self.listening.clear()
                self.reader.set_cache_enabled(False)
            await asyncio.sleep(delay)

    def _queue_flush(self, user_id: int) -> None:
        if user_id not in self._by_user:
            return
        self._pending.add(user_id)
        if self._flush_task is None or self._flush_task.done():
            self._flush_task = asyncio.create_task(self._flush())

    async def _flush(self) -> None:
        # Notifications of one pass arrive together: gather them into one query.
        await asyncio.sleep(self.batch_seconds)
        failures = 0
        while self._pending:
            users, self._pending = self._pending, set()
            try:
                await self.catch_up(users)
                failures = 0
            except Exception as exc:  # the database is away: try again, then the reconnect
                failures += 1  # replays from every subscriber's last seq anyway
                log.warning("stream hub: catch-up failed (%s)", exc)
                self._pending |= users
                if failures >= 5:
                    return
                await asyncio.sleep(0.5 * failures)
