"""Alembic environment: one sync psycopg connection, URL from the caller or the environment.

The URL comes from, in order: `config.attributes["url"]` (set by aggregator.store.migrate),
`alembic -x url=...`, `sqlalchemy.url` in the ini, else `resolve_database_url()`
(XMARGIN_DATABASE_URL or the embedded server).

Procrastinate's own objects (applied by 0008 from its packaged SQL) are not in our models:
`include_object` keeps autogenerate from proposing to drop them.
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine, pool

from aggregator.store.database import normalize_database_url, resolve_database_url
from aggregator.store.models import Base
from aggregator.work.schema import include_object

config = context.config

# Only configure logging when run from the alembic CLI with an ini file; programmatic runs
# (tests, `xmargin db upgrade`) keep the caller's logging untouched.
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def _database_url() -> str:
    url = config.attributes.get("url") or context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        url = config.get_main_option("sqlalchemy.url")
    if not url:
        return resolve_database_url()
    return normalize_database_url(str(url))


def run_migrations_offline() -> None:
    context.configure(
        url=_database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        compare_type=True,
        include_object=include_object,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(_database_url(), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                compare_type=True,
                include_object=include_object,
                transaction_per_migration=False,
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
