"""Work queue: procrastinate's schema, and the shard markers of queued publish passes.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02

Executes the schema SQL packaged with procrastinate 3.10.0 (`SchemaManager.get_schema()`:
tables `procrastinate_jobs`, `_workers`, `_periodic_defers`, `_events`, their enums, composite
type, functions and triggers). The installed version is checked first: another version's
schema under this revision would not match what later procrastinate migrations expect.
`publish_shard_marks` is the fence of queued shard jobs (`aggregator.work.fence`).

The downgrade drops every procrastinate object (tables with their triggers and indexes, then
every `procrastinate_*` function and type left in the schema) and the marker table.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import version

import sqlalchemy as sa
from alembic import op

from aggregator.work.schema import PROCRASTINATE_VERSION, QUEUE_TABLES

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DROP_FUNCTIONS_AND_TYPES = r"""
DO $$
DECLARE
    item record;
BEGIN
    FOR item IN
        SELECT p.oid::regprocedure AS signature
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = current_schema() AND p.proname LIKE 'procrastinate\_%'
    LOOP
        EXECUTE 'DROP ROUTINE ' || item.signature || ' CASCADE';
    END LOOP;
    FOR item IN
        SELECT t.typname
        FROM pg_type t
        JOIN pg_namespace n ON n.oid = t.typnamespace
        LEFT JOIN pg_class c ON c.oid = t.typrelid
        WHERE n.nspname = current_schema() AND t.typname LIKE 'procrastinate\_%'
          AND (t.typtype = 'e' OR (t.typtype = 'c' AND c.relkind = 'c'))
    LOOP
        EXECUTE format('DROP TYPE IF EXISTS %I CASCADE', item.typname);
    END LOOP;
END;
$$
"""


def _driver_execute(sql: str) -> None:
    """Run a multi-statement script as is (no bind-parameter parsing) in the migration's
    transaction."""
    connection = op.get_bind().connection.driver_connection
    assert connection is not None
    connection.execute(sql)


def upgrade() -> None:
    installed = version("procrastinate")
    if installed != PROCRASTINATE_VERSION:
        raise RuntimeError(
            f"migration 0008 applies procrastinate {PROCRASTINATE_VERSION}'s schema, but "
            f"{installed} is installed: install procrastinate=={PROCRASTINATE_VERSION}"
        )
    from procrastinate.schema import SchemaManager

    _driver_execute(SchemaManager.get_schema())
    op.create_table(
        "publish_shard_marks",
        sa.Column("pass_key", sa.Text(), nullable=False),
        sa.Column("shard", sa.Integer(), nullable=False),
        sa.Column("shards", sa.Integer(), nullable=False),
        sa.Column("market_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "published_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "shard >= 0 AND shard < shards", name=op.f("ck_publish_shard_marks_shard_in_range")
        ),
        sa.PrimaryKeyConstraint("pass_key", "shard", "shards", name=op.f("pk_publish_shard_marks")),
    )
    op.create_index(
        op.f("ix_publish_shard_marks_published_at"), "publish_shard_marks", ["published_at"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_publish_shard_marks_published_at"), table_name="publish_shard_marks")
    op.drop_table("publish_shard_marks")
    for table in QUEUE_TABLES:
        op.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
    _driver_execute(_DROP_FUNCTIONS_AND_TYPES)
