"""Where the database is, and the one async engine that talks to it.

`resolve_database_url` picks `XMARGIN_DATABASE_URL` or starts (or reuses) an embedded Postgres
under `.xmargin/` so the demo needs no set-up. `Database` owns the engine; nothing is created at
import time: the composition root builds one and passes it down.
"""

from __future__ import annotations

import atexit
import json
import os
import warnings
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import event, text
from sqlalchemy.engine import URL, ExceptionContext, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from aggregator.errors import XmarginError

DATABASE_URL_ENV = "XMARGIN_DATABASE_URL"
EMBEDDED_DATABASE = "xmargin"
_DRIVER = "postgresql+psycopg"
_POSTGRES_SCHEMES = ("postgres", "postgresql")


class DatabaseUnavailable(XmarginError):
    """The database server cannot be reached; the message names the URL, password masked."""


class DatabaseUrlError(XmarginError):
    """A database URL that is not a PostgreSQL URL."""


def normalize_database_url(url: str) -> str:
    """Return `url` spelled for SQLAlchemy's psycopg 3 dialect (`postgresql+psycopg://`).

    `postgres://`, `postgresql://` and any `postgresql+<driver>://` become psycopg: the same URL
    then serves the async engine and Alembic's sync connection.
    May raise: DatabaseUrlError (not a PostgreSQL URL).
    """
    try:
        parsed = make_url(url.strip())
    except ArgumentError:
        raise DatabaseUrlError(f"not a database URL: {mask_password(url)!r}") from None
    backend = parsed.drivername.split("+", 1)[0]
    if backend not in _POSTGRES_SCHEMES:
        raise DatabaseUrlError(
            f"only PostgreSQL is supported, got {backend}:// in {mask_password(url)!r}"
        )
    return parsed.set(drivername=_DRIVER).render_as_string(hide_password=False)


def mask_password(url: str | URL) -> str:
    """The URL with its password replaced by `***`, for messages and logs."""
    try:
        parsed = url if isinstance(url, URL) else make_url(url)
    except ArgumentError:
        return "<unparseable URL>"
    return parsed.render_as_string(hide_password=True)


def libpq_url(url: str) -> str:
    """The same database as a plain `postgresql://` URL that psycopg and psql accept."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def resolve_database_url(
    env: Mapping[str, str] = os.environ, data_dir: Path = Path(".xmargin")
) -> str:
    """The database to use: `XMARGIN_DATABASE_URL` when set, else the embedded server.

    The embedded server (pgserver, Unix socket only) lives in `data_dir/pgdata`; it is started
    when not running and left running for the next command (started once, reused after).
    May raise: DatabaseUrlError, DatabaseUnavailable (the embedded server failed to start).
    """
    configured = env.get(DATABASE_URL_ENV, "").strip()
    if configured:
        return normalize_database_url(configured)
    return start_embedded_server(data_dir)


def _pgserver() -> Any:
    # pgserver warns at import when XDG_RUNTIME_DIR is unset (root in a container); harmless.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

    return pgserver


def start_embedded_server(data_dir: Path, database: str = EMBEDDED_DATABASE) -> str:
    """Start (or reuse) the embedded Postgres in `data_dir/pgdata`; return its psycopg URL.

    The server keeps running after this process exits; `stop_embedded_server` stops it. As root,
    pgserver runs Postgres as a system user `pgserver` (created if missing) and makes the
    directories above `data_dir` traversable for it.
    May raise: DatabaseUnavailable.
    """
    pgserver = _pgserver()
    data_dir = data_dir.expanduser().resolve()
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        server = pgserver.get_server(data_dir / "pgdata", cleanup_mode=None)
        admin_url: str = server.get_uri()
    except Exception as exc:  # pgserver raises CalledProcessError, AssertionError, OSError…
        raise DatabaseUnavailable(
            f"could not start the embedded Postgres in {data_dir / 'pgdata'}: {exc} "
            f"(set {DATABASE_URL_ENV} to use another server)"
        ) from exc
    _create_database_if_missing(admin_url, database)
    admin = make_url(admin_url)
    # Trust auth over the socket: no password (pgserver's URI carries an empty one).
    url = URL.create(_DRIVER, username=admin.username, database=database, query=admin.query)
    return url.render_as_string(hide_password=False)


def stop_embedded_server(data_dir: Path) -> bool:
    """Stop the embedded server of `data_dir` if it runs; True when one was stopped.

    May raise: subprocess.CalledProcessError (pg_ctl failed).
    """
    pgdata = (data_dir.expanduser().resolve()) / "pgdata"
    if not (pgdata / "postmaster.pid").exists():
        return False
    pgserver = _pgserver()
    server = pgserver.get_server(pgdata, cleanup_mode=None)
    pgserver.pg_ctl(["-w", "stop"], pgdata=pgdata, user=server.system_user)
    # Forget the handle (and its exit hook) so a later start in this process starts afresh.
    atexit.unregister(server._cleanup)
    pgserver.PostgresServer._instances.pop(pgdata, None)
    return True


def ensure_reachable(url: str, timeout_seconds: int = 10) -> None:
    """Connect once and close (sync), so sync callers (migrations) fail with one clear line.

    May raise: DatabaseUrlError, DatabaseUnavailable.
    """
    normalized = normalize_database_url(url)
    try:
        with psycopg.connect(libpq_url(normalized), connect_timeout=timeout_seconds):
            pass
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(
            f"cannot reach the database at {mask_password(normalized)}: {_first_line(exc)}"
        ) from exc


def _create_database_if_missing(admin_url: str, database: str) -> None:
    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
            ).fetchone()
            if exists is None:
                conn.execute(f'CREATE DATABASE "{database}"')
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(
            f"cannot reach the embedded Postgres at {mask_password(admin_url)}: {_first_line(exc)}"
        ) from exc


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _json_default(value: object) -> str:
    # Money travels as decimal strings inside JSON documents, never as floats.
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps_json(value: object) -> str:
    """JSON for JSONB columns: Decimals as strings, datetimes as ISO 8601."""
    return json.dumps(value, default=_json_default, separators=(",", ":"))


async def driver_connection(session: AsyncSession) -> Any:
    """The psycopg connection under `session`'s transaction, for the bulk paths SQLAlchemy
    would slow down (binary fetches of a million rows as tuples, COPY). Statements run on it
    belong to the session's transaction."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    return raw.driver_connection


class Database:
    """One async engine (psycopg 3) and its session factory.

    `session()` is one transaction: committed when the block ends normally, rolled back when it
    raises. Repositories take that session explicitly.
    """

    def __init__(self, url: str, *, pool_size: int = 5, echo: bool = False) -> None:
        self.url = normalize_database_url(url)
        self.engine: AsyncEngine = create_async_engine(
            self.url,
            pool_size=pool_size,
            pool_pre_ping=True,
            echo=echo,
            json_serializer=dumps_json,
        )
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        event.listen(self.engine.sync_engine, "handle_error", self._unavailable)

    def _unavailable(self, context: ExceptionContext) -> BaseException | None:
        # Pre-ping failures are handled by the pool (it reconnects); leave them alone.
        if context.is_pre_ping:
            return None
        # No connection yet means the failure happened while connecting: say so in one line.
        if context.connection is None or context.is_disconnect:
            original = context.original_exception
            return DatabaseUnavailable(
                f"cannot reach the database at {mask_password(self.url)}: {_first_line(original)}"
            )
        return None

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """One transaction: commits on normal exit, rolls back on any exception.

        May raise: DatabaseUnavailable, sqlalchemy.exc.DBAPIError.
        """
        async with self._sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection]:
        """A pooled connection outside any ORM session, in autocommit mode.

        For session-level advisory locks held across network work (see `locks.held_lock`).
        May raise: DatabaseUnavailable.
        """
        async with self.engine.connect() as conn:
            auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
            yield auto

    async def ping(self) -> None:
        """Round-trip `SELECT 1`.

        May raise: DatabaseUnavailable.
        """
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def now(self) -> datetime:
        """The database server's clock (`clock_timestamp()`): the one clock every process of a
        deployment shares, so valuations made on different machines order by it.

        May raise: DatabaseUnavailable.
        """
        async with self.engine.connect() as conn:
            moment: datetime = (await conn.execute(text("SELECT clock_timestamp()"))).scalar_one()
            return moment.astimezone(UTC)

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
