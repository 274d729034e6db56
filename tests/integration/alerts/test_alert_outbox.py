"""Status transitions become outbox rows in the publish transaction, one per matching webhook."""

from __future__ import annotations

import pytest
from alert_builders import publish, query, status, users, webhook

from aggregator.store.database import Database
from aggregator.store.published.statuses import publish_statuses

URL = "http://127.0.0.1:9/hook"


async def _events(db: Database) -> list[tuple[str, str, str, str]]:
    rows = await query(
        db,
        "SELECT e.webhook, u.name, e.kind, e.state FROM alert_events e "
        "JOIN users u ON u.id = e.user_id ORDER BY e.id",
    )
    return [(r["webhook"], r["name"], r["kind"], r["state"]) for r in rows]


async def test_transitions_write_one_event_per_matching_webhook(db: Database) -> None:
    alice, bob, carol = await users(db, "alice", "bob", "carol")
    hooks = [
        webhook(URL, "all"),
        webhook(URL, "calls", transitions=["margin_call", "liquidatable"], users=["bob"]),
    ]
    # First statuses: a healthy one is no transition; the others are.
    await publish(
        db,
        [
            status(alice),
            status(bob, "margin_call"),
            status(carol, "warning", stale_chains=("solana",)),
        ],
        hooks,
    )
    assert await _events(db) == [
        ("all", "bob", "margin_call", "pending"),
        ("calls", "bob", "margin_call", "pending"),
        ("all", "carol", "warning", "pending"),
        ("all", "carol", "stale", "pending"),
    ]
    # Bob recovers (healthy: not wanted by `calls`), alice goes liquidatable (not bob: not
    # for `calls`), carol does not change.
    await publish(
        db,
        [
            status(alice, "liquidatable"),
            status(bob),
            status(carol, "warning", stale_chains=("solana",)),
        ],
        hooks,
    )
    assert (await _events(db))[4:] == [
        ("all", "alice", "liquidatable", "pending"),
        ("all", "bob", "healthy", "pending"),
    ]
    # The body names the user, the old and new status, and the status version (seq).
    [event] = await query(db, "SELECT event_id, payload FROM alert_events WHERE kind = 'healthy'")
    payload = event["payload"]
    assert payload["id"] == event["event_id"]
    assert payload["type"] == "healthy"
    assert payload["user"] == {"id": bob, "name": "bob"}
    assert payload["previous"]["status"] == "margin_call"
    assert payload["status"]["status"] == "healthy"
    assert payload["status"]["seq"] == 2
    assert payload["status"]["health_factor"] == "2.5"


async def test_another_stale_chain_is_a_new_stale_event(db: Database) -> None:
    [dave] = await users(db, "dave")
    hooks = [webhook(URL, transitions=["stale"])]
    await publish(db, [status(dave, stale_chains=("base",))], hooks)
    await publish(db, [status(dave, stale_chains=("base", "solana"))], hooks)
    await publish(db, [status(dave, stale_chains=("solana",))], hooks)  # fewer: no event
    assert [kind for _, _, kind, _ in await _events(db)] == ["stale", "stale"]


async def test_a_pass_that_rolls_back_leaves_no_event(db: Database) -> None:
    [erin] = await users(db, "erin")
    with pytest.raises(RuntimeError):
        async with db.session() as session:
            await publish_statuses(session, [status(erin, "margin_call")], webhooks=[webhook(URL)])
            raise RuntimeError("the pass fails after the statuses were written")
    assert await query(db, "SELECT id FROM alert_events") == []
    assert await query(db, "SELECT user_id FROM margin_status") == []


async def test_no_webhooks_no_events(db: Database) -> None:
    [frank] = await users(db, "frank")
    assert await publish(db, [status(frank, "liquidatable")], []) == 1
    assert await query(db, "SELECT id FROM alert_events") == []


async def test_minimum_interval_holds_back_repeats_but_not_escalations(db: Database) -> None:
    [gina] = await users(db, "gina")
    hooks = [webhook(URL, min_interval_seconds=3600)]
    for state in ("warning", "healthy", "margin_call", "warning", "liquidatable"):
        await publish(db, [status(gina, state)], hooks)
    assert [(kind, state) for _, _, kind, state in await _events(db)] == [
        ("warning", "pending"),
        ("healthy", "suppressed"),  # within the hour, not more severe than warning
        ("margin_call", "pending"),  # an escalation always goes out
        ("warning", "suppressed"),
        ("liquidatable", "pending"),
    ]
