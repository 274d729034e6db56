"""The embedded Postgres (pgserver) the demo uses when no URL is configured."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from sqlalchemy import text

from aggregator.store.database import Database, resolve_database_url, stop_embedded_server


async def test_embedded_server_starts_in_a_directory_and_is_reused() -> None:
    # Outside pytest's basetemp, which another pytest session may re-lock to 0700 (see conftest).
    parent = Path(tempfile.mkdtemp(prefix="xmargin-embedded-"))
    data_dir = parent / ".xmargin"
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
        stopped = stop_embedded_server(data_dir)
        assert stop_embedded_server(data_dir) is False
        shutil.rmtree(parent, ignore_errors=True)
    assert stopped is True
