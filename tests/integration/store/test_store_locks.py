"""Advisory locks between two real connections."""

from __future__ import annotations

from store_builders import T0

from aggregator.store.database import Database
from aggregator.store.repositories import held_lock, lock_id, try_advisory_lock


async def test_transaction_lock_is_exclusive_until_commit(db: Database) -> None:
    async with db.session() as first:
        assert await try_advisory_lock(first, "publish") is True
        async with db.session() as second:
            assert await try_advisory_lock(second, "publish") is False
            assert await try_advisory_lock(second, "poll:ethereum") is True
        # Re-entrant within the holder's own transaction.
        assert await try_advisory_lock(first, "publish") is True
    async with db.session() as later:
        assert await try_advisory_lock(later, "publish") is True


async def test_a_rollback_releases_the_transaction_lock(db: Database) -> None:
    try:
        async with db.session() as first:
            assert await try_advisory_lock(first, "publish")
            raise RuntimeError("poll crashed")
    except RuntimeError:
        pass
    async with db.session() as second:
        assert await try_advisory_lock(second, "publish") is True


async def test_held_lock_spans_work_without_a_transaction(db: Database) -> None:
    async with held_lock(db, "poll:ethereum") as daemon:
        assert daemon is True
        async with held_lock(db, "poll:ethereum") as cron:
            assert cron is False
        async with db.session() as session:
            assert await try_advisory_lock(session, "poll:ethereum") is False
            assert await try_advisory_lock(session, "poll:solana") is True
    async with held_lock(db, "poll:ethereum") as next_run:
        assert next_run is True


def test_lock_ids_are_stable_signed_64_bit_and_distinct() -> None:
    keys = ["publish", "poll:ethereum", "poll:solana", "poll:arbitrum", str(T0)]
    ids = [lock_id(key) for key in keys]
    assert len(set(ids)) == len(keys)
    assert all(-(2**63) <= value < 2**63 for value in ids)
    assert lock_id("publish") == lock_id("publish")
