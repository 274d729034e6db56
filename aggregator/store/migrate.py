"""Run Alembic from code: `xmargin db upgrade`, the tests and the demo all come through here."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool

from aggregator.store.database import ensure_reachable, normalize_database_url

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at migrations/ and `url`, leaving logging untouched.

    May raise: DatabaseUrlError.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # attributes, not set_main_option: a URL may hold '%' that ini interpolation would mangle.
    config.attributes["url"] = normalize_database_url(url)
    config.attributes["configure_logger"] = False
    return config


def upgrade_to_head(url: str) -> None:
    """Apply every migration not yet applied to the database at `url`.

    May raise: DatabaseUrlError, DatabaseUnavailable.
    """
    ensure_reachable(url)
    command.upgrade(alembic_config(url), "head")


def downgrade_to_base(url: str) -> None:
    """Undo every migration: drops the views, then every table xmargin created.

    May raise: DatabaseUrlError, DatabaseUnavailable.
    """
    ensure_reachable(url)
    command.downgrade(alembic_config(url), "base")


def current_revision(url: str) -> str | None:
    """The revision the database is at, None when never migrated.

    May raise: DatabaseUrlError, DatabaseUnavailable.
    """
    ensure_reachable(url)
    engine = create_engine(normalize_database_url(url), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def head_revision() -> str | None:
    """The newest revision in migrations/."""
    return ScriptDirectory.from_config(
        alembic_config("postgresql://localhost/none")
    ).get_current_head()
