"""Alembic is the only way the schema changes: up to head, back to nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, pool

from aggregator.store.database import libpq_url
from aggregator.store.migrate import (
    current_revision,
    downgrade_to_base,
    head_revision,
    upgrade_to_head,
)
from aggregator.store.models import ALL_TABLES, Base
from aggregator.store.partitions import is_partition_name
from aggregator.work.schema import QUEUE_TABLES, include_object

REPO = Path(__file__).resolve().parents[3]
VIEWS = {
    "v_user_margin",
    "v_user_collateral",
    "v_chain_freshness",
    "v_poll_errors",
    "v_user_venues",
    "v_shard_freshness",
}


def _queue_routines_and_types(url: str) -> set[str]:
    """Procrastinate's functions and types left in the database (tables aside)."""
    with psycopg.connect(libpq_url(url)) as conn:
        rows = conn.execute(
            """
            SELECT proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = 'public' AND proname LIKE 'procrastinate%%'
            UNION ALL
            SELECT typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
            WHERE n.nspname = 'public' AND typname LIKE 'procrastinate%%'
            """
        )
        return {name for (name,) in rows}


def _relations(url: str) -> tuple[set[str], set[str]]:
    with psycopg.connect(libpq_url(url)) as conn:
        tables = {
            name
            for (name,) in conn.execute(
                "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE nspname = 'public' AND relkind IN ('r', 'p') AND NOT relispartition"
            )
        }
        views = {
            name
            for (name,) in conn.execute("SELECT viewname FROM pg_views WHERE schemaname = 'public'")
        }
    return tables, views


def test_upgrade_to_head_then_downgrade_to_base_leaves_nothing(
    fresh_database_url: Callable[[], str],
) -> None:
    url = fresh_database_url()
    assert current_revision(url) is None

    upgrade_to_head(url)
    upgrade_to_head(url)  # a second run is a no-op
    tables, views = _relations(url)
    assert tables == {*ALL_TABLES, *QUEUE_TABLES, "alembic_version"}
    assert views == VIEWS
    routines = _queue_routines_and_types(url)
    assert {"procrastinate_job_status", "procrastinate_defer_jobs_v1"} <= routines
    newest = sorted(p.name for p in (REPO / "migrations" / "versions").glob("[0-9]*.py"))[-1]
    assert current_revision(url) == head_revision() == newest.split("_", 1)[0]

    downgrade_to_base(url)
    tables, views = _relations(url)
    # Only Alembic's own (now empty) bookkeeping table is left.
    assert (tables, views) == ({"alembic_version"}, set())
    assert _queue_routines_and_types(url) == set()  # procrastinate's functions and types too
    assert current_revision(url) is None


def _parents_only(obj: Any, name: str | None, kind: str, reflected: bool, other: Any) -> bool:
    """The queue's objects aside (`include_object`), and partitions: the models describe the
    partitioned parents; their partitions come and go with rotation."""
    table = name if kind == "table" else getattr(getattr(obj, "table", None), "name", "")
    if reflected and is_partition_name(str(table or "")):
        return False
    return bool(include_object(obj, name, kind, reflected, other))


def test_models_and_migrations_agree(database_url: str) -> None:
    engine = create_engine(database_url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "include_object": _parents_only}
            )
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()
