"""The database's clock, the one every process of a deployment values by: in UTC whatever the
server's time zone, and the server's own time (not this process's)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from aggregator.store.database import Database


async def test_the_database_clock_is_the_servers_in_utc(db: Database, database_url: str) -> None:
    async with db.session() as session:
        server = (await session.execute(text("SELECT clock_timestamp()"))).scalar_one()
    moment = await db.now()
    assert moment.tzinfo is UTC
    assert timedelta(0) <= moment - server < timedelta(seconds=5)
    # A server whose sessions run in another time zone gives the same instant, in UTC.
    other = Database(
        database_url + ("&" if "?" in database_url else "?") + "options=-c%20TimeZone%3DAsia/Tokyo"
    )
    try:
        async with other.session() as session:
            zone = (await session.execute(text("SHOW TimeZone"))).scalar_one()
        tokyo = await other.now()
    finally:
        await other.dispose()
    assert zone == "Asia/Tokyo"
    assert tokyo.tzinfo is UTC and abs(tokyo - datetime.now(UTC)) < timedelta(seconds=60)
