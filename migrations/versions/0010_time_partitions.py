"""Time partitions: observation lines by head, status history by month, with retention.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02

`balances`, `positions` and `venue_reads` become range-partitioned by `chain_head_id`, one
partition per UTC day (`<table>_pYYYYMMDD`), and `margin_status_history` by `recorded_at`, one
per UTC month (`margin_status_history_pYYYYMM`); each has a DEFAULT partition so an insert
never fails. Rotation and retention are `aggregator.store.partitions` (run by pruning); this
migration creates the first partitions with the same SQL (`initial_sql`).

Why the head id and not a new `observed_at` column for the lines: the lines have no time
column, and every read and write of them already names the head. The publish read
(`chain_head_id = ANY(:heads) AND user_id = ANY(:users)`) is then pruned by the planner to the
partitions of the pass's heads (usually one) and uses each one's (head, user) index unchanged
(when the heads are known at planning, as for psycopg's unnamed statements: a generic plan of
`= ANY($1)` is not pruned on PostgreSQL 15 and probes every partition's index, cheap for the
empty and pruned-down ones);
with an `observed_at` key that read carries no predicate on it and would probe every partition,
unless the query grew a time range it does not know. A write routes a snapshot's lines, which
share one head, to one partition, and stores no extra column (8 bytes on every line, the
largest table). For the bounds of future days to be known in advance, head ids carry their day:
day `d` owns ids from `d·10^9` (`HEAD_IDS_PER_DAY`) and rotation moves the `chain_heads`
sequence up to today's floor. Heads already stored keep their ids, in
`<table>_before_YYYYMMDD` (every id below today's floor).

Keys: a partitioned table's primary key must hold its partition key, so the lines' keys become
(user_id, id, chain_head_id) and the history's (user_id, id, recorded_at): still led by
`user_id` (the Citus distribution column), `id` still unique by its identity. Foreign keys
stay: lines → chain_heads ON DELETE CASCADE and → users, history → users (from a partitioned
table to a plain one). `chain_heads`, `poll_runs` and `prices` are not partitioned: one row
per poll (or asset per poll), a fraction of the lines, and `chain_heads` is referenced by
every line.

Why months for the history: a changed user costs ≈ 1.4 kB per pass (0.7 kB of it the history
row); 1M users with 1 % changing per one-minute pass write ≈ 10 GB of history a day, 300 GB a
month. Dropping a partition costs the same at any size, while every publish's "last recorded
status" read (`_LAST_RECORDED`: newest row per user, no time predicate) and each history page
descend one index per partition: 2–4 monthly partitions at 30–90 days' retention instead of
30–90 daily ones. The price is granularity: a month is dropped whole once it is older than the
retention. The lines, by far the largest writes (a row per wallet and asset per poll), are
daily.

Existing rows are copied into the new tables (ids kept, identity sequences continued); views
over the tables are dropped and recreated with their own definitions. The downgrade copies
the rows back into plain tables with the old keys (the head sequence stays where it is: ids
are only ever unique, not dense).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime

import sqlalchemy as sa
from alembic import op

from aggregator.store.partitions import (
    HISTORY_TABLE,
    LINE_TABLES,
    history_partition,
    initial_sql,
    lines_before,
)

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PARTITIONED = {
    **{t: ("chain_head_id", ("user_id", "id", "chain_head_id")) for t in LINE_TABLES},
    HISTORY_TABLE: ("recorded_at", ("user_id", "id", "recorded_at")),
}
_OLD = "_unpartitioned"


def _scalar(sql: str, **params: object) -> object:
    return op.get_bind().execute(sa.text(sql), params).scalar()


def _rows(sql: str, **params: object) -> list[sa.Row[tuple[object, ...]]]:
    return list(op.get_bind().execute(sa.text(sql), params))


def _drop_views() -> list[tuple[str, str]]:
    """Drop the views over the tables this migration rebuilds; their definitions."""
    views = [
        (str(name), str(definition))
        for name, definition in _rows(
            """
            SELECT DISTINCT v.relname, pg_get_viewdef(v.oid)
            FROM pg_depend d
            JOIN pg_rewrite r ON r.oid = d.objid
            JOIN pg_class v ON v.oid = r.ev_class
            WHERE d.refobjid = ANY(CAST(:tables AS regclass[])) AND v.relkind = 'v'
            """,
            tables=list(_PARTITIONED),
        )
    ]
    for name, _ in views:
        op.execute(f"DROP VIEW {name}")
    return views


def _recreate_views(views: list[tuple[str, str]]) -> None:
    for name, definition in views:
        op.execute(f"CREATE VIEW {name} AS {definition}")


def _rebuild(table: str, partition_by: str | None, primary_key: Sequence[str]) -> None:
    """Replace `table` with a copy of itself (columns, defaults, checks, identity, foreign
    keys, indexes, rows), partitioned by `partition_by` or plain, keyed by `primary_key`.
    The partitions must be created between `_rebuild` and `_fill`."""
    old = f"{table}{_OLD}"
    sequence = _scalar("SELECT pg_get_serial_sequence(:t, 'id')", t=table)
    foreign_keys = _rows(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = CAST(:t AS regclass) AND contype = 'f' ORDER BY conname",
        t=table,
    )
    indexes = _rows(
        "SELECT indexname, indexdef FROM pg_indexes "
        "WHERE schemaname = current_schema() AND tablename = :t AND indexname <> :pk",
        t=table,
        pk=f"pk_{table}",
    )
    op.execute(f"ALTER TABLE {table} RENAME TO {old}")
    op.execute(f"ALTER SEQUENCE {sequence} RENAME TO {old}_id_seq")
    op.execute(f"ALTER TABLE {old} RENAME CONSTRAINT pk_{table} TO pk_{old}")
    for name, _ in indexes:
        op.execute(f"ALTER INDEX {name} RENAME TO {str(name)[:50]}{_OLD}")
    partitioned = f" PARTITION BY RANGE ({partition_by})" if partition_by else ""
    op.execute(
        f"CREATE TABLE {table} (LIKE {old} INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
        f"INCLUDING IDENTITY){partitioned}"
    )
    op.execute(
        f"ALTER TABLE {table} ADD CONSTRAINT pk_{table} PRIMARY KEY ({', '.join(primary_key)})"
    )
    for name, definition in foreign_keys:
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}")
    for _, definition in indexes:
        op.execute(str(definition))


def _fill(table: str) -> None:
    """Copy the rows of the table `_rebuild` replaced, continue its id sequence, drop it."""
    old = f"{table}{_OLD}"
    op.execute(f"INSERT INTO {table} OVERRIDING SYSTEM VALUE SELECT * FROM {old}")
    op.execute(
        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), last_value, is_called) "
        f"FROM {old}_id_seq"
    )
    op.execute(f"DROP TABLE {old} CASCADE")


def _months(first: date, last: date) -> list[date]:
    months: list[date] = []
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month):
        months.append(date(year, month, 1))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def upgrade() -> None:
    now = datetime.now(UTC)
    today = now.date()
    views = _drop_views()
    oldest = _scalar(f"SELECT min(recorded_at) FROM {HISTORY_TABLE}")
    for table, (key, primary_key) in _PARTITIONED.items():
        _rebuild(table, key, primary_key)
    for partition in lines_before(today):
        op.execute(partition.create_sql)
    if isinstance(oldest, datetime):
        for month in _months(oldest.astimezone(UTC).date(), today):
            op.execute(history_partition(month).create_sql)
    for statement in initial_sql(now):
        op.execute(statement)
    for table in _PARTITIONED:
        _fill(table)
    _recreate_views(views)


def downgrade() -> None:
    views = _drop_views()
    for table in _PARTITIONED:
        _rebuild(table, None, ("user_id", "id"))
        _fill(table)
    _recreate_views(views)
