"""The embedded Postgres (pgserver) the demo uses when no URL is configured."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from aggregator.store.database import Database, resolve_database_url, stop_embedded_server


async def test_embedded_server_starts_in_a_directory_and_is_reused(tmp_path: Path) -> None:
    data_dir = tmp_path / ".xmargin"
    try:
        url = resolve_database_url(env={}, data_dir=data_dir)
        assert url.startswith("postgresql+psycopg://postgres@/xmargin?host=")
        assert (data_dir / "pgdata" / "PG_VERSION").exists()
        # A second resolve finds the running server instead of starting another.
        assert resolve_database_url(env={}, data_dir=data_dir) == url

        db = Database(url)
        try:
            async with db.session() as session:
                assert await session.scalar(text("SELECT 1")) == 1
                assert await session.scalar(text("SELECT current_database()")) == "xmargin"
        finally:
            await db.dispose()
    finally:
        assert stop_embedded_server(data_dir) is True
    assert stop_embedded_server(data_dir) is False
