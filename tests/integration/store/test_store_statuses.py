"""Publishing statuses: one transaction per pass, history on material change, NOTIFY."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal

import psycopg
import pytest
from store_builders import T0, count, rows, status

from aggregator.store.database import Database, libpq_url
from aggregator.store.notifications import StatusChanges
from aggregator.store.repositories import (
    STATUS_CHANNEL,
    StatusRecord,
    add_user,
    get_status,
    publish_statuses,
    status_history,
)


async def _users(db: Database, *names: str) -> list[int]:
    async with db.session() as session:
        return [await add_user(session, name) for name in names]


@pytest.fixture
async def listener(db: Database) -> AsyncIterator[psycopg.AsyncConnection[object]]:
    """A real connection LISTENing on the status channel."""
    conn = await psycopg.AsyncConnection.connect(libpq_url(db.url), autocommit=True)
    await conn.execute(f"LISTEN {STATUS_CHANNEL}")
    try:
        yield conn
    finally:
        await conn.close()


async def _next_payloads(conn: psycopg.AsyncConnection[object], n: int) -> list[str]:
    # The timeout only bounds a broken test; the assertion is on the payloads.
    return [note.payload async for note in conn.notifies(timeout=10, stop_after=n)]


async def test_publish_writes_history_and_notifies_only_on_material_change(
    db: Database, listener: psycopg.AsyncConnection[object]
) -> None:
    alice, bob = await _users(db, "alice", "bob")

    async with db.session() as session:
        assert await publish_statuses(session, [status(alice), status(bob)]) == 2
    assert sorted(await _next_payloads(listener, 2)) == sorted([str(alice), str(bob)])
    assert await count(db, "margin_status_history") == 2

    # Equity +0.5% and health factor -0.4%: under the 1% threshold, no history, no NOTIFY,
    # but the latest row still takes the new numbers.
    later = T0 + timedelta(minutes=1)
    async with db.session() as session:
        small = [
            status(alice, equity="1005", health_factor="2.49", as_of=later),
            status(bob, as_of=later),
        ]
        assert await publish_statuses(session, small) == 0
    latest = await _get(db, alice)
    assert (latest.equity_usd, latest.health_factor, latest.as_of) == (
        Decimal("1005"),
        Decimal("2.49"),
        later,
    )
    assert await count(db, "margin_status_history") == 2

    # Bob's equity moves 2%: a change. The next notification is Bob's, which proves the
    # quiet pass above sent nothing (notifications arrive in commit order).
    async with db.session() as session:
        assert await publish_statuses(session, [status(bob, equity="1020", as_of=later)]) == 1
    assert await _next_payloads(listener, 1) == [str(bob)]

    # Slow drift adds up: 1005 -> 1010 -> 1010.01 are each small steps, but the last is more
    # than 1% above the 1000 recorded in history, so it is a change.
    for equity, changes in (("1010", 0), ("1010.01", 1)):
        async with db.session() as session:
            drifted = [status(alice, equity=equity, as_of=later)]
            assert await publish_statuses(session, drifted) == changes
    assert await _next_payloads(listener, 1) == [str(alice)]
    assert await count(db, "margin_status_history") == 4


@pytest.mark.parametrize(
    "changed",
    [
        {"status": "warning"},
        {"stale_chains": ("solana",)},
        {"health_factor": None},
        {"equity": "0"},
    ],
    ids=["status", "stale", "health-factor-vanishes", "equity-to-zero"],
)
async def test_each_kind_of_material_change_is_recorded(
    db: Database, changed: dict[str, object]
) -> None:
    [alice] = await _users(db, "alice")
    async with db.session() as session:
        await publish_statuses(session, [status(alice)])
    async with db.session() as session:
        assert await publish_statuses(session, [status(alice, **changed)]) == 1  # type: ignore[arg-type]
    assert await count(db, "margin_status_history") == 2


async def test_threshold_is_a_parameter(db: Database) -> None:
    [alice] = await _users(db, "alice")
    async with db.session() as session:
        await publish_statuses(session, [status(alice)])
        # 0.5% equity move is material at a 0.1% threshold.
        moved = [status(alice, equity="1005")]
        assert await publish_statuses(session, moved, relative_threshold=Decimal("0.001")) == 1


async def test_a_rolled_back_publish_leaves_nothing_and_notifies_nobody(
    db: Database, listener: psycopg.AsyncConnection[object]
) -> None:
    alice, bob = await _users(db, "alice", "bob")
    with pytest.raises(RuntimeError, match="crash after the write"):
        async with db.session() as session:
            assert await publish_statuses(session, [status(alice)]) == 1
            raise RuntimeError("crash after the write")
    assert await count(db, "margin_status") == 0
    assert await count(db, "margin_status_history") == 0

    async with db.session() as session:
        await publish_statuses(session, [status(bob)])
    assert await _next_payloads(listener, 1) == [str(bob)]


async def test_one_bad_status_fails_the_whole_pass(db: Database) -> None:
    alice, bob = await _users(db, "alice", "bob")
    with pytest.raises(Exception, match="ck_margin_status_status_known"):
        async with db.session() as session:
            await publish_statuses(session, [status(alice), status(bob, status="fine")])
    assert await count(db, "margin_status") == 0


async def test_a_user_twice_in_one_pass_is_refused(db: Database) -> None:
    [alice] = await _users(db, "alice")
    async with db.session() as session:
        with pytest.raises(ValueError, match="more than once"):
            await publish_statuses(session, [status(alice), status(alice)])


async def test_get_status_and_history_round_trip(db: Database) -> None:
    [alice] = await _users(db, "alice")
    first = status(alice, stale_chains=("solana", "base"), health_factor=None)
    async with db.session() as session:
        assert await get_status(session, alice) is None
        await publish_statuses(session, [first])
    async with db.session() as session:
        await publish_statuses(session, [status(alice, status="warning", equity="123.456789")])
    async with db.session() as session:
        await publish_statuses(session, [status(alice, status="margin_call")])

    latest = await _get(db, alice)
    assert latest.status == "margin_call"
    assert latest.recorded_at is not None
    assert latest.document == {"user_id": alice, "status": "margin_call", "equity_usd": "1000"}
    assert latest.inputs == {"ethereum": {"height": 100, "hash": "0xabc"}}

    async with db.session() as session:
        history = await status_history(session, alice, limit=2)
        everything = await status_history(session, alice)
    assert [h.status for h in history] == ["margin_call", "warning"]
    assert history[1].equity_usd == Decimal("123.456789")
    assert [h.status for h in everything] == ["margin_call", "warning", "healthy"]
    oldest = everything[-1]
    assert (oldest.stale, oldest.stale_chains, oldest.health_factor) == (
        True,
        ("solana", "base"),
        None,
    )
    assert await rows(db, "SELECT count(*) AS n FROM margin_status") == [{"n": 1}]


async def _get(db: Database, user_id: int) -> StatusRecord:
    async with db.session() as session:
        record = await get_status(session, user_id)
    assert record is not None
    return record


async def test_status_changes_yields_user_ids_of_committed_changes(db: Database) -> None:
    alice, bob = await _users(db, "alice", "bob")
    async with StatusChanges(db.url) as listener:
        async with db.session() as session:
            await publish_statuses(session, [status(alice)])
        async with db.session() as session:
            await publish_statuses(session, [status(alice), status(bob, status="warning")])
        changes = listener.changes(max_wait_seconds=10, stop_after=2)
        received = [user_id async for user_id in changes]
    assert received == [alice, bob]  # alice's unchanged second status sent nothing
