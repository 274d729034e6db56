"""Database URLs: normalised to psycopg 3, passwords never shown, nothing connects early."""

from __future__ import annotations

from pathlib import Path

import pytest

from aggregator.store.database import (
    Database,
    DatabaseUnavailable,
    DatabaseUrlError,
    libpq_url,
    mask_password,
    normalize_database_url,
    resolve_database_url,
)
from aggregator.store.migrate import upgrade_to_head


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@db.example:5433/xm", "postgresql+psycopg://u:p@db.example:5433/xm"),
        (
            "postgresql://postgres@127.0.0.1:5432/test",
            "postgresql+psycopg://postgres@127.0.0.1:5432/test",
        ),
        ("postgresql+asyncpg://u@h/xm", "postgresql+psycopg://u@h/xm"),
        ("postgresql+psycopg://u@h/xm", "postgresql+psycopg://u@h/xm"),
        (
            "postgresql://u@/xm?host=/tmp/sock&sslmode=disable",
            "postgresql+psycopg://u@/xm?host=%2Ftmp%2Fsock&sslmode=disable",
        ),
        ("  postgres://u@h/xm\n", "postgresql+psycopg://u@h/xm"),
    ],
)
def test_postgres_urls_are_normalised_to_psycopg(given: str, expected: str) -> None:
    assert normalize_database_url(given) == expected


@pytest.mark.parametrize("given", ["sqlite:///x.db", "mysql://u@h/db", "not a url"])
def test_other_urls_are_refused(given: str) -> None:
    with pytest.raises(DatabaseUrlError):
        normalize_database_url(given)


def test_a_refused_url_does_not_echo_its_password() -> None:
    with pytest.raises(DatabaseUrlError) as refused:
        normalize_database_url("mysql://u:hunter2@h/db")
    assert "hunter2" not in str(refused.value)
    assert "mysql://u:***@h/db" in str(refused.value)


def test_mask_password_and_libpq_url() -> None:
    url = "postgresql+psycopg://svc:s3cr%40t@db:5432/xm"
    assert mask_password(url) == "postgresql+psycopg://svc:***@db:5432/xm"
    assert libpq_url(url) == "postgresql://svc:s3cr%40t@db:5432/xm"


def test_the_environment_variable_wins_and_starts_nothing(tmp_path: Path) -> None:
    env = {"XMARGIN_DATABASE_URL": "postgres://u:p@h:1/xm"}
    assert resolve_database_url(env, data_dir=tmp_path) == "postgresql+psycopg://u:p@h:1/xm"
    assert list(tmp_path.iterdir()) == []


async def test_an_unreachable_server_gives_one_line_naming_the_masked_url() -> None:
    # Constructing connects to nothing; the first use says what is wrong.
    db = Database("postgresql://svc:hunter2@127.0.0.1:1/xm")
    try:
        with pytest.raises(DatabaseUnavailable) as unavailable:
            await db.ping()
    finally:
        await db.dispose()
    message = str(unavailable.value)
    assert message.startswith(
        "cannot reach the database at postgresql+psycopg://svc:***@127.0.0.1:1/xm: "
    )
    assert "hunter2" not in message
    assert "\n" not in message


def test_migrating_an_unreachable_server_gives_one_line() -> None:
    with pytest.raises(DatabaseUnavailable) as unavailable:
        upgrade_to_head("postgres://svc:hunter2@127.0.0.1:1/xm")
    message = str(unavailable.value)
    assert message.startswith("cannot reach the database at postgresql+psycopg://svc:***@")
    assert "hunter2" not in message and "\n" not in message
