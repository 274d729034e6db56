"""The work queue's tables in our database: procrastinate's own schema, applied by Alembic.

Migration 0008 executes the schema SQL packaged with the pinned procrastinate version
(`PROCRASTINATE_VERSION`) and creates `publish_shard_marks` (our fence, a model like any
other). Procrastinate's objects all start with `procrastinate_` (plus one index,
`idx_procrastinate_…`); they are not in our models, so the models-vs-migrations comparison
leaves them out (`include_object`, used by `migrations/env.py` and the migrations test).

A procrastinate upgrade needs a new migration that applies that version's migration scripts
(`procrastinate.schema.SchemaManager.get_migrations_path()`), never a re-run of the schema.
"""

from __future__ import annotations

from typing import Any

PROCRASTINATE_VERSION = "3.10.0"
QUEUE_PREFIX = "procrastinate_"

# What 0008's downgrade drops (tables first: their triggers and indexes go with them).
QUEUE_TABLES = (
    "procrastinate_events",
    "procrastinate_periodic_defers",
    "procrastinate_jobs",
    "procrastinate_workers",
)


def is_queue_object(name: str | None) -> bool:
    """Whether `name` is one of procrastinate's own tables, indexes, types or functions."""
    return bool(name) and (
        str(name).startswith(QUEUE_PREFIX) or str(name).startswith("idx_" + QUEUE_PREFIX)
    )


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Alembic's `include_object` hook: everything but procrastinate's objects."""
    if type_ in ("index", "unique_constraint", "foreign_key_constraint", "column"):
        table = getattr(getattr(obj, "table", None), "name", None)
        if is_queue_object(table):
            return False
    return not is_queue_object(name)
