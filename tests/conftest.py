"""Database fixtures shared by the whole suite: every test run gets its own database.

With XMARGIN_TEST_DATABASE_URL (CI: postgresql://postgres@127.0.0.1:5432/test) a fresh, uniquely
named database is created on that server and dropped at the end; without it an embedded
Postgres (pgserver) is started in a temporary directory and deleted afterwards. Either way the
schema comes from Alembic, never from `create_all`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from aggregator.store.database import Database, libpq_url, normalize_database_url
from aggregator.store.migrate import upgrade_to_head
from aggregator.store.models import ALL_TABLES

TEST_DATABASE_URL_ENV = "XMARGIN_TEST_DATABASE_URL"


class _TestServer:
    """A Postgres server on which the run may create and drop its own databases."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = libpq_url(normalize_database_url(admin_url))
        self._created: list[str] = []

    def create_database(self, prefix: str = "xmargin_test") -> str:
        """A new empty database; returns its psycopg SQLAlchemy URL."""
        name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self._created.append(name)
        url = make_url(normalize_database_url(self.admin_url)).set(database=name)
        return url.render_as_string(hide_password=False)

    def drop_database(self, url: str) -> None:
        name = make_url(url).database
        assert name is not None and name in self._created
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._created.remove(name)

    def drop_all(self) -> None:
        for name in list(self._created):
            self.drop_database(f"postgresql://x/{name}")


@pytest.fixture(scope="session")
def _test_server() -> Iterator[_TestServer]:
    configured = os.environ.get(TEST_DATABASE_URL_ENV, "").strip()
    if configured:
        server = _TestServer(configured)
        try:
            yield server
        finally:
            server.drop_all()
        return

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pgserver warns when XDG_RUNTIME_DIR is unset
        import pgserver

    # Not under pytest's basetemp: another pytest session re-locks /tmp/pytest-of-<user> to 0700,
    # and as root pgserver runs Postgres as another user, who must keep reaching the directory.
    parent = Path(tempfile.mkdtemp(prefix="xmargin-test-pg-"))
    embedded = pgserver.get_server(parent / "pgdata", cleanup_mode="delete")
    server = _TestServer(embedded.get_uri())
    try:
        yield server
    finally:
        server.drop_all()
        embedded.cleanup()
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture(scope="session")
def database_url(_test_server: _TestServer) -> str:
    """This run's own database, migrated to head (postgresql+psycopg:// URL)."""
    url = _test_server.create_database()
    upgrade_to_head(url)
    return url


@pytest.fixture
def fresh_database_url(_test_server: _TestServer) -> Iterator[Callable[[], str]]:
    """A factory of empty, unmigrated databases, dropped when the test ends."""
    made: list[str] = []

    def make() -> str:
        url = _test_server.create_database("xmargin_fresh")
        made.append(url)
        return url

    yield make
    for url in made:
        _test_server.drop_database(url)


_TRUNCATE = "TRUNCATE {} RESTART IDENTITY CASCADE".format(", ".join(ALL_TABLES))


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """A `Database` on the run's database, every table emptied first."""
    database = Database(database_url)
    async with database.session() as session:
        await session.execute(text(_TRUNCATE))
    try:
        yield database
    finally:
        await database.dispose()
