"""The deliverer against real receivers on loopback: signed POSTs, retries with backoff,
every attempt recorded, timeouts, and no event posted twice at once."""

from __future__ import annotations

import asyncio
import random
import time

from alert_builders import ENV, SECRET, publish, query, settings, status, users, webhook

from aggregator.alerts.deliver import Deliverer, retry_delay
from aggregator.ops.metrics import DaemonMetrics
from aggregator.store.database import Database
from tests.alert_receiver import Receiver


async def _deliver_until_settled(deliverer: Deliverer, expected: int, within: float) -> None:
    deadline = time.monotonic() + within
    delivered = 0
    while time.monotonic() < deadline:
        delivered += (await deliverer.deliver_due()).delivered
        if delivered >= expected:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"only {delivered} of {expected} events delivered in {within} s")


def _sample(metrics: DaemonMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


async def test_failing_receiver_gets_every_event_signed_after_retries(db: Database) -> None:
    ids = await users(db, "ann", "ben", "cat")
    async with Receiver(SECRET.encode(), fail_first=2) as receiver:
        hook = webhook(receiver.url)
        await publish(db, [status(i, "margin_call") for i in ids], [hook])
        metrics = DaemonMetrics()
        deliverer = Deliverer(db, settings(hook), observer=metrics, env=ENV)
        try:
            await _deliver_until_settled(deliverer, 3, within=15)
        finally:
            await deliverer.aclose()

    events = await query(db, "SELECT id, event_id, state, attempts FROM alert_events ORDER BY id")
    assert [(e["state"], e["attempts"]) for e in events] == [("delivered", 3)] * 3
    # Three POSTs per event (500, 500, 200), each signed, keyed by the event id, numbered.
    assert receiver.per_key() == {e["event_id"]: 3 for e in events}
    assert all(r.signed for r in receiver.requests)
    assert all(r.event["id"] == r.key for r in receiver.requests)
    assert sorted(r.attempt for r in receiver.requests) == [1, 1, 1, 2, 2, 2, 3, 3, 3]
    attempts = await query(
        db, "SELECT alert_event_id, attempt, status_code, error FROM alert_attempts ORDER BY id"
    )
    for event in events:
        mine = [a for a in attempts if a["alert_event_id"] == event["id"]]
        assert [(a["attempt"], a["status_code"], a["error"]) for a in mine] == [
            (1, 500, "HTTP 500"),
            (2, 500, "HTTP 500"),
            (3, 200, None),
        ]
    assert (
        _sample(metrics, "xmargin_alert_deliveries_total", webhook="ops", outcome="delivered") == 3
    )
    assert _sample(metrics, "xmargin_alert_deliveries_total", webhook="ops", outcome="failed") == 6
    assert _sample(metrics, "xmargin_alerts_pending") == 0


async def test_hanging_receiver_is_cut_off_and_the_other_webhook_unaffected(db: Database) -> None:
    [dan] = await users(db, "dan")
    async with (
        Receiver(SECRET.encode(), mode="hang") as stuck,
        Receiver(SECRET.encode()) as fine,
    ):
        hooks = [webhook(stuck.url, "stuck"), webhook(fine.url, "fine")]
        await publish(db, [status(dan, "liquidatable")], hooks)
        deliverer = Deliverer(db, settings(*hooks, timeout=0.5, backoff_base=60), env=ENV)
        started = time.monotonic()
        try:
            report = await deliverer.deliver_due()
        finally:
            await deliverer.aclose()
        took = time.monotonic() - started
    assert took < 3, f"one delivery run took {took:.1f} s with a 0.5 s timeout"
    assert (report.delivered, report.failed, report.pending) == (1, 1, 1)
    rows = await query(
        db,
        "SELECT e.webhook, e.state, e.state = 'pending' AND e.next_attempt_at > now() AS later, "
        "a.status_code, a.error "
        "FROM alert_events e JOIN alert_attempts a ON a.alert_event_id = e.id ORDER BY e.webhook",
    )
    assert rows == [
        {
            "webhook": "fine",
            "state": "delivered",
            "later": False,
            "status_code": 200,
            "error": None,
        },
        {
            "webhook": "stuck",
            "state": "pending",
            "later": True,
            "status_code": None,
            "error": "timed out after 0.5 s",
        },
    ]


async def test_receiver_answering_500_forever_keeps_the_event(db: Database) -> None:
    [eve] = await users(db, "eve")
    async with Receiver(SECRET.encode(), mode="fail") as receiver:
        hook = webhook(receiver.url)
        await publish(db, [status(eve, "warning")], [hook])
        deliverer = Deliverer(db, settings(hook), env=ENV)
        try:
            deadline = time.monotonic() + 10
            while len(receiver.requests) < 4 and time.monotonic() < deadline:
                await deliverer.deliver_due()
                await asyncio.sleep(0.05)
        finally:
            await deliverer.aclose()
    assert len(receiver.requests) == 4
    [event] = await query(db, "SELECT state, attempts, last_error, delivered_at FROM alert_events")
    assert event == {
        "state": "pending",
        "attempts": 4,
        "last_error": "HTTP 500",
        "delivered_at": None,
    }
    codes = await query(db, "SELECT status_code FROM alert_attempts ORDER BY id")
    assert [c["status_code"] for c in codes] == [500, 500, 500, 500]


async def test_two_deliverers_never_post_the_same_event_at_once(db: Database) -> None:
    ids = await users(db, *(f"user{i}" for i in range(20)))
    async with Receiver(SECRET.encode(), delay_seconds=0.1) as receiver:
        hook = webhook(receiver.url)
        await publish(db, [status(i, "margin_call") for i in ids], [hook])
        first = Deliverer(db, settings(hook), env=ENV)
        other_db = Database(db.url)
        second = Deliverer(other_db, settings(hook).model_copy(update={"batch_size": 7}), env=ENV)
        try:
            for _ in range(3):
                await asyncio.gather(first.deliver_due(), second.deliver_due())
        finally:
            await first.aclose()
            await second.aclose()
            await other_db.dispose()
    assert len(receiver.per_key()) == 20
    assert set(receiver.per_key().values()) == {1}
    [row] = await query(db, "SELECT count(*) AS n FROM alert_attempts")
    assert row["n"] == 20


async def test_missing_secret_posts_nothing_and_keeps_the_event(db: Database) -> None:
    [fay] = await users(db, "fay")
    async with Receiver(SECRET.encode()) as receiver:
        hook = webhook(receiver.url)
        await publish(db, [status(fay, "margin_call")], [hook])
        deliverer = Deliverer(db, settings(hook), env={})
        try:
            report = await deliverer.deliver_due()
        finally:
            await deliverer.aclose()
    assert receiver.requests == []
    assert report.failed == 1
    [event] = await query(db, "SELECT state, last_error FROM alert_events")
    assert event == {
        "state": "pending",
        "last_error": "signing secret: $XMARGIN_TEST_HOOK_SECRET is not set",
    }


def test_retry_delays_double_with_jitter_up_to_the_cap() -> None:
    rng = random.Random(7)
    for attempt in range(1, 15):
        ceiling = min(900.0, 2.0 * 2 ** (attempt - 1))
        delays = [retry_delay(attempt, 2.0, 900.0, rng) for _ in range(200)]
        assert ceiling / 2 <= min(delays) and max(delays) <= ceiling
        assert max(delays) - min(delays) > ceiling / 4  # jittered, not fixed
