"""Time partitions (migration 0010, `aggregator.store.partitions`) on a real Postgres: the
migration keeps every row both ways, rows land in their period's partition, rotation is
idempotent, and retention drops whole partitions but never one still in use."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest
from alembic import command
from sqlalchemy import text
from store_builders import ALICE_EVM, BOB_EVM, eth, snapshot, status, usdc

from aggregator.store.database import Database, libpq_url
from aggregator.store.migrate import alembic_config, upgrade_to_head
from aggregator.store.observed.observations import record_snapshot
from aggregator.store.observed.pruning import prune_observations
from aggregator.store.partitions import (
    HISTORY_TABLE,
    LINE_TABLES,
    PARTITIONED_TABLES,
    Retention,
    drop_expired,
    ensure_partitions,
    head_floor,
    history_partition,
    line_partitions,
    partitions_of,
)
from aggregator.store.published.statuses import write_statuses

KEEP = Retention(observations=timedelta(days=7), history=timedelta(days=90))


def _sql(url: str, statement: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        cursor = conn.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


@pytest.fixture
async def fresh_db(fresh_database_url: Callable[[], str]) -> AsyncIterator[Database]:
    """A database of its own, migrated to head: these tests create and drop partitions."""
    url = fresh_database_url()
    upgrade_to_head(url)
    database = Database(url)
    try:
        yield database
    finally:
        await database.dispose()


async def _past_days(db: Database, since: datetime, days: int) -> None:
    """Partitions of `days` past days from `since`, as a database rotated daily for weeks has.
    The migration's partition of every id below its day's floor (empty here) covers their
    ranges, so it goes first."""
    async with db.session() as session:
        for names in (await partitions_of(session)).values():
            for name in names:
                if "_before_" in name:
                    await session.execute(text(f"DROP TABLE {name}"))
        await ensure_partitions(session, since, ahead_days=days - 1)


async def _users(db: Database, *names: str) -> list[int]:
    async with db.session() as session:
        result = await session.execute(
            text("INSERT INTO users (name) SELECT unnest(CAST(:n AS text[])) RETURNING id"),
            {"n": list(names)},
        )
        return [int(i) for (i,) in result]


async def _head_at(
    db: Database,
    head_id: int,
    observed_at: datetime,
    user_id: int,
    shard: tuple[int, int] | None = None,
) -> None:
    """A good poll of `ethereum` (of `shard` = (index, count), else the whole chain) stored
    with an explicit head id (a past day's range) and one line in each line table."""
    async with db.session() as session:
        run = await session.scalar(
            text(
                "INSERT INTO poll_runs (chain, started_at, finished_at, duration_ms, ok) "
                "VALUES ('ethereum', :t, :t, 1, true) RETURNING id"
            ),
            {"t": observed_at},
        )
        await session.execute(
            text(
                "INSERT INTO chain_heads (id, poll_run_id, chain, height, hash, block_timestamp,"
                " finality, observed_at, shard_index, shard_count) VALUES (:id, :run,"
                " 'ethereum', :id, 'h' || :id, :t, 'finalized', :t, :i, :n)"
            ),
            {
                "id": head_id,
                "run": run,
                "t": observed_at,
                "i": None if shard is None else shard[0],
                "n": None if shard is None else shard[1],
            },
        )
        line = {"u": user_id, "h": head_id}
        await session.execute(
            text(
                "INSERT INTO balances (user_id, chain_head_id, chain, account, asset, amount_raw,"
                " decimals) VALUES (:u, :h, 'ethereum', 'a', 'ETH', 1, 18)"
            ),
            line,
        )
        await session.execute(
            text(
                "INSERT INTO positions (user_id, chain_head_id, chain, account, venue, asset,"
                " kind, amount_raw, decimals) VALUES (:u, :h, 'ethereum', 'a', 'aave', 'ETH',"
                " 'deposit', 1, 18)"
            ),
            line,
        )
        await session.execute(
            text(
                "INSERT INTO venue_reads (user_id, chain_head_id, chain, account, venue, rules,"
                " document) VALUES (:u, :h, 'ethereum', 'a', 'aave', 'aave', '{}')"
            ),
            line,
        )


async def _partition_of(db: Database, table: str, where: str, **params: Any) -> list[str]:
    async with db.session() as session:
        result = await session.execute(
            text(f"SELECT DISTINCT tableoid::regclass::text FROM {table} WHERE {where}"), params
        )
        return sorted(str(name) for (name,) in result)


async def _history_row(db: Database, user_id: int, recorded_at: datetime) -> int:
    async with db.session() as session:
        new_id = await session.scalar(
            text(
                f"INSERT INTO {HISTORY_TABLE} (user_id, recorded_at, as_of, status, stale,"
                " equity_usd, weighted_collateral_init_usd, weighted_collateral_maint_usd,"
                " requirement_init_usd, requirement_maint_usd, health_init_usd,"
                " health_maint_usd, free_collateral_usd, document, inputs, seq)"
                " VALUES (:u, :t, :t, 'healthy', false, 1, 1, 1, 1, 1, 1, 1, 1, '{}', '{}', 1)"
                " RETURNING id"
            ),
            {"u": user_id, "t": recorded_at},
        )
    assert new_id is not None
    return int(new_id)


def test_upgrade_partitions_existing_rows_and_downgrade_restores_them(
    fresh_database_url: Callable[[], str],
) -> None:
    url = fresh_database_url()
    config = alembic_config(url)
    command.upgrade(config, "0009")
    seed = [
        "INSERT INTO users (name) VALUES ('alice'), ('bob')",
        "INSERT INTO poll_runs (chain, started_at, finished_at, duration_ms, ok)"
        " VALUES ('ethereum', now(), now(), 1, true)",
        "INSERT INTO chain_heads (poll_run_id, chain, height, hash, block_timestamp, finality,"
        " observed_at) VALUES (1, 'ethereum', 7, '0x7', now(), 'finalized', now())",
        "INSERT INTO balances (user_id, chain_head_id, chain, account, asset, amount_raw,"
        " decimals) VALUES (1, 1, 'ethereum', 'a', 'ETH', 5, 18), (2, 1, 'ethereum', 'b',"
        " 'USDC', 7, 6)",
        "INSERT INTO positions (user_id, chain_head_id, chain, account, venue, asset, kind,"
        " amount_raw, decimals) VALUES (1, 1, 'ethereum', 'a', 'aave', 'ETH', 'deposit', 3, 18)",
        "INSERT INTO venue_reads (user_id, chain_head_id, chain, account, venue, rules,"
        " document) VALUES (1, 1, 'ethereum', 'a', 'aave', 'aave', '{\"k\": 1}')",
        f"INSERT INTO {HISTORY_TABLE} (user_id, recorded_at, as_of, status, stale, equity_usd,"
        " weighted_collateral_init_usd, weighted_collateral_maint_usd, requirement_init_usd,"
        " requirement_maint_usd, health_init_usd, health_maint_usd, free_collateral_usd,"
        " document, inputs) VALUES"
        " (1, now() - interval '75 days', now(), 'healthy', false, 1, 1, 1, 1, 1, 1, 1, 1,"
        " '{}', '{}'),"
        " (2, now(), now(), 'warning', false, 2, 1, 1, 1, 1, 1, 1, 1, '{}', '{}')",
    ]
    for statement in seed:
        _sql(url, statement)
    snapshot_sql = {
        "balances": "SELECT id, user_id, chain_head_id, asset, amount_raw FROM balances",
        "positions": "SELECT id, user_id, chain_head_id, kind, amount_raw FROM positions",
        "venue_reads": "SELECT id, user_id, chain_head_id, document::text FROM venue_reads",
        HISTORY_TABLE: f"SELECT id, user_id, recorded_at, status FROM {HISTORY_TABLE}",
    }
    before = {t: sorted(_sql(url, q)) for t, q in snapshot_sql.items()}

    upgrade_to_head(url)
    assert {t: sorted(_sql(url, q)) for t, q in snapshot_sql.items()} == before
    kinds = dict(
        _sql(
            url,
            "SELECT relname, relkind::text FROM pg_class WHERE relname = ANY(%s)",
            list(PARTITIONED_TABLES),
        )
    )
    assert kinds == dict.fromkeys(PARTITIONED_TABLES, "p")
    today = datetime.now(UTC).date()
    # Existing lines are in the partition of every id below today's floor.
    assert _sql(url, "SELECT DISTINCT tableoid::regclass::text FROM balances") == [
        (f"balances_before_{today:%Y%m%d}",)
    ]
    months = sorted(
        r[0] for r in _sql(url, f"SELECT tableoid::regclass::text FROM {HISTORY_TABLE}")
    )
    old = (datetime.now(UTC) - timedelta(days=75)).date()
    assert months == sorted({history_partition(old).name, history_partition(today).name})
    # Identity sequences continue after the copied ids; views over the tables still work.
    new_id = _sql(
        url,
        "INSERT INTO balances (user_id, chain_head_id, chain, account, asset, amount_raw,"
        " decimals) VALUES (1, 1, 'ethereum', 'a', 'WETH', 1, 18) RETURNING id",
    )[0][0]
    assert new_id == 3
    assert _sql(url, "SELECT count(*) FROM v_user_collateral") == [(4,)]
    _sql(url, "DELETE FROM balances WHERE id = 3")

    command.downgrade(config, "0009")
    assert {t: sorted(_sql(url, q)) for t, q in snapshot_sql.items()} == before
    kinds = dict(
        _sql(
            url,
            "SELECT relname, relkind::text FROM pg_class WHERE relname = ANY(%s)",
            list(PARTITIONED_TABLES),
        )
    )
    assert kinds == dict.fromkeys(PARTITIONED_TABLES, "r")
    assert _sql(url, "SELECT count(*) FROM pg_inherits") == [(0,)]
    assert _sql(url, "SELECT count(*) FROM v_user_collateral") == [(3,)]


async def test_partitions_exist_after_upgrade(fresh_db: Database) -> None:
    today = datetime.now(UTC).date()
    async with fresh_db.session() as session:
        found = await partitions_of(session)
    for table in LINE_TABLES:
        days = {f"{table}_p{today + timedelta(days=n):%Y%m%d}" for n in range(4)}
        assert days | {f"{table}_default", f"{table}_before_{today:%Y%m%d}"} == found[table]
    this_month = history_partition(today)
    next_month = history_partition(date(today.year + today.month // 12, today.month % 12 + 1, 1))
    assert found[HISTORY_TABLE] == {this_month.name, next_month.name, f"{HISTORY_TABLE}_default"}


async def test_new_heads_take_todays_ids_and_their_lines_land_in_todays_partition(
    fresh_db: Database,
) -> None:
    alice, bob = await _users(fresh_db, "alice", "bob")
    await record_snapshot(
        fresh_db,
        snapshot(100, balances=(usdc(ALICE_EVM, 5), eth(BOB_EVM, 7))),
        {ALICE_EVM: alice, BOB_EVM: bob},
        datetime.now(UTC),
        10,
    )
    today = datetime.now(UTC).date()
    async with fresh_db.session() as session:
        head_id = int(await session.scalar(text("SELECT id FROM chain_heads")) or 0)
    assert head_floor(today) <= head_id < head_floor(today + timedelta(days=1))
    assert await _partition_of(fresh_db, "balances", "true") == [f"balances_p{today:%Y%m%d}"]


async def test_rows_of_a_future_period_land_in_its_partition(fresh_db: Database) -> None:
    (alice,) = await _users(fresh_db, "alice")
    later = datetime.now(UTC) + timedelta(days=40)
    async with fresh_db.session() as session:
        await ensure_partitions(session, later)
    day = later.date()
    await _head_at(fresh_db, head_floor(day) + 5, later, alice)
    for table in LINE_TABLES:
        assert await _partition_of(fresh_db, table, "true") == [f"{table}_p{day:%Y%m%d}"]
    await _history_row(fresh_db, alice, later)
    assert await _partition_of(fresh_db, HISTORY_TABLE, "true") == [history_partition(day).name]


async def test_rows_beyond_the_partitions_go_to_default_and_move_out_when_rotation_catches_up(
    fresh_db: Database,
) -> None:
    (alice,) = await _users(fresh_db, "alice")
    far = datetime.now(UTC) + timedelta(days=200)
    await _head_at(fresh_db, head_floor(far.date()) + 1, far, alice)
    history_id = await _history_row(fresh_db, alice, far)
    assert await _partition_of(fresh_db, "balances", "true") == ["balances_default"]
    assert await _partition_of(fresh_db, HISTORY_TABLE, "true") == [f"{HISTORY_TABLE}_default"]

    async with fresh_db.session() as session:
        rotation = await ensure_partitions(session, far)
    assert rotation.moved_from_default == 4  # three lines and one history row
    for table in LINE_TABLES:
        assert await _partition_of(fresh_db, table, "true") == [f"{table}_p{far.date():%Y%m%d}"]
    assert await _partition_of(fresh_db, HISTORY_TABLE, "id = :i", i=history_id) == [
        history_partition(far.date()).name
    ]


async def test_ensure_partitions_is_idempotent(fresh_db: Database) -> None:
    later = datetime.now(UTC) + timedelta(days=10)
    async with fresh_db.session() as session:
        first = await ensure_partitions(session, later)
        after_first = await partitions_of(session)
    async with fresh_db.session() as session:
        second = await ensure_partitions(session, later)
        after_second = await partitions_of(session)
    assert first.created  # days 10..13 of the lines at least
    assert {p.name for p in line_partitions(later.date())} <= set(first.created)
    assert second.created == ()
    assert after_second == after_first


async def test_drop_expired_drops_an_old_day_and_keeps_one_with_a_head_in_use(
    fresh_db: Database,
) -> None:
    (alice,) = await _users(fresh_db, "alice")
    now = datetime.now(UTC)
    old, in_use = now - timedelta(days=20), now - timedelta(days=19)
    await _past_days(fresh_db, old, 2)
    old_head, used_head = head_floor(old.date()) + 1, head_floor(in_use.date()) + 1
    await _head_at(fresh_db, old_head, old, alice)
    await _head_at(fresh_db, used_head, in_use, alice)
    await _head_at(fresh_db, head_floor(now.date()) + 1, now, alice)  # the chain's newest
    async with fresh_db.session() as session:
        await write_statuses(
            session, [replace(status(alice), inputs={"heads": {"ethereum": used_head}})]
        )

    async with fresh_db.session() as session:
        rotation = await drop_expired(session, now, KEEP)
        found = await partitions_of(session)
    old_names = {p.name for p in line_partitions(old.date())}
    used_names = {p.name for p in line_partitions(in_use.date())}
    assert old_names <= set(rotation.dropped)
    assert old_names.isdisjoint(set().union(*found.values()))
    assert used_names <= set().union(*found.values())
    assert f"p{in_use.date():%Y%m%d}" in rotation.held
    async with fresh_db.session() as session:
        heads = sorted(int(i) for (i,) in await session.execute(text("SELECT id FROM chain_heads")))
        lines = await session.scalar(
            text("SELECT count(*) FROM balances WHERE chain_head_id = :h"), {"h": used_head}
        )
    assert heads == [used_head, head_floor(now.date()) + 1]
    assert lines == 1


async def test_drop_expired_keeps_the_day_of_a_chains_newest_head(fresh_db: Database) -> None:
    (alice,) = await _users(fresh_db, "alice")
    now = datetime.now(UTC)
    quiet = now - timedelta(days=30)  # the chain's last good read, long ago
    await _past_days(fresh_db, quiet, 1)
    await _head_at(fresh_db, head_floor(quiet.date()) + 1, quiet, alice)
    async with fresh_db.session() as session:
        rotation = await drop_expired(session, now, KEEP)
    assert rotation.held == (f"p{quiet.date():%Y%m%d}",)
    assert await _partition_of(fresh_db, "balances", "true") == [f"balances_p{quiet.date():%Y%m%d}"]


async def test_drop_expired_keeps_the_day_of_a_shards_newest_head(fresh_db: Database) -> None:
    (alice,) = await _users(fresh_db, "alice")
    now = datetime.now(UTC)
    quiet = now - timedelta(days=30)  # shard 0 of 2 was last read then; shard 1 today
    await _past_days(fresh_db, quiet, 1)
    await _head_at(fresh_db, head_floor(quiet.date()) + 1, quiet, alice, shard=(0, 2))
    await _head_at(fresh_db, head_floor(now.date()) + 1, now, alice, shard=(1, 2))
    async with fresh_db.session() as session:
        rotation = await drop_expired(session, now, KEEP)
    assert rotation.held == (f"p{quiet.date():%Y%m%d}",)
    assert rotation.dropped == ()
    assert await _partition_of(fresh_db, "balances", "true") == sorted(
        [f"balances_p{quiet.date():%Y%m%d}", f"balances_p{now.date():%Y%m%d}"]
    )


async def test_drop_expired_drops_an_old_month_and_carries_each_users_newest_row_forward(
    fresh_db: Database,
) -> None:
    alice, bob = await _users(fresh_db, "alice", "bob")
    now = datetime.now(UTC)
    long_ago = now - timedelta(days=200)
    await _past_days(fresh_db, long_ago, 1)
    async with fresh_db.session() as session:
        await write_statuses(session, [status(alice), status(bob)])  # latest rows (+ history)
        await session.execute(text(f"DELETE FROM {HISTORY_TABLE}"))
    alice_only = await _history_row(fresh_db, alice, long_ago)  # alice's newest
    await _history_row(fresh_db, bob, long_ago)  # bob has a newer one below
    bob_newer = await _history_row(fresh_db, bob, now)

    async with fresh_db.session() as session:
        rotation = await drop_expired(session, now, KEEP)
    assert history_partition(long_ago.date()).name in rotation.dropped
    assert rotation.carried_forward == 1
    kept = await _partition_of(fresh_db, HISTORY_TABLE, "true")
    assert kept == [history_partition(now.date()).name]
    async with fresh_db.session() as session:
        rows = sorted(
            (int(u), int(i))
            for u, i in await session.execute(text(f"SELECT user_id, id FROM {HISTORY_TABLE}"))
        )
    assert rows == sorted([(alice, alice_only), (bob, bob_newer)])


async def test_prune_observations_rotates_the_partitions(fresh_db: Database) -> None:
    later = datetime.now(UTC) + timedelta(days=30)
    async with fresh_db.session() as session:
        result = await prune_observations(session, 100, retention=KEEP, now=later)
        found = await partitions_of(session)
    assert result.partitions is not None
    assert f"balances_p{later.date():%Y%m%d}" in result.partitions.created
    # Every day before `later` minus the retention is gone: the migration's days included.
    today = datetime.now(UTC).date()
    assert f"balances_p{today:%Y%m%d}" in result.partitions.dropped
    assert f"balances_p{later.date():%Y%m%d}" in found["balances"]
