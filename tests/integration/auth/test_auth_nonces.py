"""Link / sign-in nonces on real Postgres: single use, expiry, bound to one user, purpose,
chain and account; a refused consume writes nothing."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from aggregator.store.accounts.auth import (
    NonceAlreadyUsed,
    NonceError,
    NonceExpired,
    NonceMismatch,
    NonceOfAnotherUser,
    NonceRow,
    UnknownNonce,
    consume_nonce,
    create_nonce,
    prune_nonces,
)
from aggregator.store.accounts.users import add_user
from aggregator.store.database import Database
from aggregator.store.errors import UnknownUser

CHAIN = "eip155:1"
ACCOUNT = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"


async def _users(db: Database) -> tuple[int, int]:
    async with db.session() as session:
        return await add_user(session, "alice"), await add_user(session, "bob")


async def _nonce(db: Database, user_id: int, ttl_seconds: int = 300) -> NonceRow:
    async with db.session() as session:
        return await create_nonce(
            session,
            user_id=user_id,
            purpose="link",
            chain=CHAIN,
            account=ACCOUNT,
            ttl_seconds=ttl_seconds,
        )


async def _consume(db: Database, nonce: str, user_id: int, **overrides: str) -> NonceRow:
    fields = {"purpose": "link", "chain": CHAIN, "account": ACCOUNT, **overrides}
    async with db.session() as session:
        return await consume_nonce(session, nonce, user_id=user_id, **fields)  # type: ignore[arg-type]


async def test_a_new_nonce_is_stored_with_whole_second_times_and_its_ttl(db: Database) -> None:
    alice, _ = await _users(db)
    row = await _nonce(db, alice, ttl_seconds=120)
    assert len(row.nonce) == 32 and row.nonce.isalnum()
    assert row.issued_at.microsecond == 0
    assert (row.expires_at - row.issued_at).total_seconds() == 120
    assert (row.user_id, row.purpose, row.chain, row.account) == (alice, "link", CHAIN, ACCOUNT)
    assert row.consumed_at is None


async def test_a_nonce_is_consumed_once(db: Database) -> None:
    alice, _ = await _users(db)
    row = await _nonce(db, alice)
    consumed = await _consume(db, row.nonce, alice)
    assert consumed.consumed_at is not None
    with pytest.raises(NonceAlreadyUsed) as caught:
        await _consume(db, row.nonce, alice)
    assert (caught.value.field, caught.value.reason) == ("nonce", "used")


async def test_two_concurrent_consumers_get_it_exactly_once(db: Database) -> None:
    alice, _ = await _users(db)
    row = await _nonce(db, alice)
    results = await asyncio.gather(
        *(_consume(db, row.nonce, alice) for _ in range(4)), return_exceptions=True
    )
    assert sum(isinstance(r, NonceRow) for r in results) == 1
    assert sum(isinstance(r, NonceAlreadyUsed) for r in results) == 3


async def test_a_nonce_that_never_existed_is_unknown(db: Database) -> None:
    alice, _ = await _users(db)
    with pytest.raises(UnknownNonce) as caught:
        await _consume(db, "0123456789abcdef0123456789abcdef", alice)
    assert caught.value.reason == "unknown"


async def test_another_users_nonce_is_refused_and_stays_usable(db: Database) -> None:
    alice, bob = await _users(db)
    row = await _nonce(db, alice)
    with pytest.raises(NonceOfAnotherUser) as caught:
        await _consume(db, row.nonce, bob)
    assert caught.value.reason == "other_user"
    assert (await _consume(db, row.nonce, alice)).user_id == alice


async def test_an_expired_nonce_is_refused(db: Database) -> None:
    alice, _ = await _users(db)
    row = await _nonce(db, alice)
    async with db.session() as session:
        await session.execute(
            text(
                "UPDATE auth_nonces SET issued_at = now() - interval '10 minutes', "
                "expires_at = now() - interval '1 second' WHERE nonce = :n"
            ),
            {"n": row.nonce},
        )
    with pytest.raises(NonceExpired) as caught:
        await _consume(db, row.nonce, alice)
    assert caught.value.reason == "expired"


@pytest.mark.parametrize(
    ("override", "what"),
    [
        ({"purpose": "signin"}, "purpose"),
        ({"chain": "eip155:10"}, "chain"),
        ({"account": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"}, "account"),
    ],
)
async def test_a_nonce_for_another_purpose_chain_or_account_is_refused(
    db: Database, override: dict[str, str], what: str
) -> None:
    alice, _ = await _users(db)
    row = await _nonce(db, alice)
    with pytest.raises(NonceMismatch) as caught:
        await _consume(db, row.nonce, alice, **override)
    assert what in str(caught.value)
    assert (await _consume(db, row.nonce, alice)).consumed_at is not None


async def test_a_failed_link_transaction_leaves_the_nonce_unused(db: Database) -> None:
    alice, _ = await _users(db)
    row = await _nonce(db, alice)
    with pytest.raises(RuntimeError):
        async with db.session() as session:
            await consume_nonce(
                session, row.nonce, user_id=alice, purpose="link", chain=CHAIN, account=ACCOUNT
            )
            raise RuntimeError("the link failed after the nonce was consumed")
    assert (await _consume(db, row.nonce, alice)).consumed_at is not None


async def test_nonce_errors_share_one_base(db: Database) -> None:
    alice, _ = await _users(db)
    with pytest.raises(NonceError):
        await _consume(db, "ffffffffffffffffffffffffffffffff", alice)


async def test_a_nonce_for_an_unknown_user_is_refused(db: Database) -> None:
    with pytest.raises(UnknownUser):
        await _nonce(db, 999)


async def test_prune_removes_only_long_expired_nonces(db: Database) -> None:
    alice, _ = await _users(db)
    old = await _nonce(db, alice)
    fresh = await _nonce(db, alice)
    async with db.session() as session:
        await session.execute(
            text(
                "UPDATE auth_nonces SET issued_at = now() - interval '3 days', "
                "expires_at = now() - interval '2 days' WHERE nonce = :n"
            ),
            {"n": old.nonce},
        )
        assert await prune_nonces(session, keep_seconds=86_400) == 1
        remaining = (await session.execute(text("SELECT nonce FROM auth_nonces"))).scalars().all()
    assert remaining == [fresh.nonce]
