"""Postgres advisory locks, so a cron run and a daemon never do the same work twice.

Keys are names ('poll:ethereum', 'publish') hashed to the signed 64-bit id Postgres expects.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from aggregator.store.database import Database


def lock_id(key: str) -> int:
    """The advisory lock id of `key`: stable across processes and Python versions."""
    digest = hashlib.blake2b(f"xmargin:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


async def try_advisory_lock(session_or_conn: AsyncSession | AsyncConnection, key: str) -> bool:
    """Take the transaction-level lock `key` if free; True when taken.

    Held until the surrounding transaction ends (commit or rollback): take it first in the
    `Database.session()` block whose work it guards.
    """
    taken = await session_or_conn.scalar(
        text("SELECT pg_try_advisory_xact_lock(:id)"), {"id": lock_id(key)}
    )
    return bool(taken)


@asynccontextmanager
async def held_lock(db: Database, key: str) -> AsyncIterator[bool]:
    """Hold the session-level lock `key` for the block, on a connection of its own; yields
    whether it was taken (False: someone else does this work now, skip it).

    For work that spans network I/O (a chain poll) where an open transaction would be wrong.
    May raise: DatabaseUnavailable.
    """
    async with db.connection() as conn:
        identifier = lock_id(key)
        taken = bool(
            await conn.scalar(text("SELECT pg_try_advisory_lock(:id)"), {"id": identifier})
        )
        try:
            yield taken
        finally:
            if taken:
                await conn.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": identifier})
