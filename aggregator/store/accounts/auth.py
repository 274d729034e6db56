"""Single-use nonces for signed link and sign-in texts, and operator API keys (hashed).

Nonce times come from the database clock, truncated to whole seconds so the signed text's
`Issued At` and `Expiration Time` are exactly the stored ones. A nonce is consumed by one
`UPDATE ... WHERE consumed_at IS NULL AND expires_at > now() RETURNING`: of two concurrent
consumers exactly one gets the row, and it is meant to run in the transaction that links, so a
failed link leaves the nonce unused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from aggregator.auth.api_keys import Scope, generate_api_key, key_matches, public_id_of
from aggregator.auth.errors import AuthError
from aggregator.auth.siwe import Purpose, new_nonce
from aggregator.errors import UserInputError
from aggregator.store import models as m
from aggregator.store.errors import UnknownUser


class NonceError(AuthError):
    """A nonce that cannot be consumed; `reason` says why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__("nonce", reason, message)


class UnknownNonce(NonceError):
    def __init__(self) -> None:
        super().__init__("unknown", "this nonce was never issued")


class NonceOfAnotherUser(NonceError):
    def __init__(self) -> None:
        super().__init__("other_user", "this nonce was issued for another user")


class NonceAlreadyUsed(NonceError):
    def __init__(self) -> None:
        super().__init__("used", "this nonce has already been used")


class NonceExpired(NonceError):
    def __init__(self) -> None:
        super().__init__("expired", "this nonce has expired: ask for a new one")


class NonceMismatch(NonceError):
    def __init__(self, what: str) -> None:
        super().__init__("mismatch", f"this nonce was issued for another {what}")


class ApiKeyExists(UserInputError):
    """An API key with that name exists (revoked keys keep their name)."""


class UnknownApiKey(UserInputError):
    """No API key with that name."""


@dataclass(frozen=True, slots=True)
class NonceRow:
    nonce: str
    user_id: int
    purpose: str
    chain: str
    account: str
    issued_at: datetime
    expires_at: datetime
    consumed_at: datetime | None


@dataclass(frozen=True, slots=True)
class ApiKeyRow:
    """An API key as stored; its hash is kept out of repr (and never printed)."""

    id: int
    name: str
    public_id: str
    scope: str
    rate_per_minute: int | None
    created_at: datetime
    revoked_at: datetime | None
    key_hash: str = field(repr=False)

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def _nonce_row(row: m.AuthNonce) -> NonceRow:
    return NonceRow(
        nonce=row.nonce,
        user_id=row.user_id,
        purpose=row.purpose,
        chain=row.chain,
        account=row.account,
        issued_at=row.issued_at,
        expires_at=row.expires_at,
        consumed_at=row.consumed_at,
    )


def _key_row(row: m.ApiKey) -> ApiKeyRow:
    return ApiKeyRow(
        id=row.id,
        name=row.name,
        public_id=row.public_id,
        scope=row.scope,
        rate_per_minute=row.rate_per_minute,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        key_hash=row.key_hash,
    )


async def create_nonce(
    session: AsyncSession,
    *,
    user_id: int,
    purpose: Purpose,
    chain: str,
    account: str,
    ttl_seconds: int,
) -> NonceRow:
    """A fresh nonce for `user_id` to sign a `purpose` text from `account` on `chain`
    (CAIP-2), issued now (database clock, whole seconds) and expiring `ttl_seconds` later.

    May raise: UnknownUser, ValueError (ttl_seconds < 1).
    """
    if ttl_seconds < 1:
        raise ValueError("ttl_seconds must be at least 1")
    if await session.get(m.User, user_id) is None:
        raise UnknownUser(f"no user with id {user_id}")
    issued_at = func.date_trunc("second", func.now())
    row = await session.scalar(
        insert(m.AuthNonce)
        .values(
            nonce=new_nonce(),
            user_id=user_id,
            purpose=purpose,
            chain=chain,
            account=account,
            issued_at=issued_at,
            expires_at=issued_at + timedelta(seconds=ttl_seconds),
        )
        .returning(m.AuthNonce)
    )
    assert row is not None  # INSERT ... RETURNING of one row
    return _nonce_row(row)


async def consume_nonce(
    session: AsyncSession,
    nonce: str,
    *,
    user_id: int,
    purpose: Purpose,
    chain: str,
    account: str,
) -> NonceRow:
    """Mark `nonce` used, atomically, iff it was issued to `user_id` for this purpose, chain
    and account, is unused, and has not expired (database clock). Nothing changes otherwise.

    May raise: UnknownNonce, NonceOfAnotherUser, NonceAlreadyUsed, NonceExpired, NonceMismatch.
    """
    n = m.AuthNonce
    consumed = await session.scalar(
        update(n)
        .where(
            n.nonce == nonce,
            n.user_id == user_id,
            n.purpose == purpose,
            n.chain == chain,
            n.account == account,
            n.consumed_at.is_(None),
            n.expires_at > func.now(),
        )
        .values(consumed_at=func.now())
        .returning(n)
    )
    if consumed is not None:
        return _nonce_row(consumed)
    # Why not: diagnosed on the row as it now is (a concurrent consumer has committed or not).
    found = (
        await session.execute(
            select(
                n.user_id, n.purpose, n.chain, n.account, n.consumed_at, n.expires_at <= func.now()
            ).where(n.nonce == nonce)
        )
    ).first()
    if found is None:
        raise UnknownNonce()
    owner, stored_purpose, stored_chain, stored_account, consumed_at, expired = found
    if owner != user_id:
        raise NonceOfAnotherUser()
    if consumed_at is not None:
        raise NonceAlreadyUsed()
    if expired:
        raise NonceExpired()
    if stored_purpose != purpose:
        raise NonceMismatch("purpose")
    if stored_chain != chain:
        raise NonceMismatch("chain")
    if stored_account != account:
        raise NonceMismatch("account")
    raise NonceAlreadyUsed()  # unreachable unless the row changed between the two statements


async def prune_nonces(session: AsyncSession, keep_seconds: int = 86_400) -> int:
    """Delete nonces that expired more than `keep_seconds` ago; how many."""
    result = await session.execute(
        delete(m.AuthNonce)
        .where(m.AuthNonce.expires_at < func.now() - timedelta(seconds=keep_seconds))
        .returning(m.AuthNonce.nonce)
    )
    return len(result.all())


async def create_api_key(
    session: AsyncSession, name: str, scope: Scope, rate_per_minute: int | None = None
) -> tuple[ApiKeyRow, str]:
    """A new key named `name` (trimmed, non-empty, unique among all keys ever made): its row
    and the key itself, which is not stored and cannot be shown again.

    May raise: ApiKeyExists, ValueError (empty name, rate_per_minute < 1).
    """
    name = name.strip()
    if not name:
        raise ValueError("an API key name cannot be empty")
    if rate_per_minute is not None and rate_per_minute < 1:
        raise ValueError("rate_per_minute must be at least 1")
    made = generate_api_key()
    row = await session.scalar(
        insert(m.ApiKey)
        .values(
            name=name,
            public_id=made.public_id,
            key_hash=made.key_hash,
            scope=scope,
            rate_per_minute=rate_per_minute,
        )
        .on_conflict_do_nothing(index_elements=[m.ApiKey.name])
        .returning(m.ApiKey)
    )
    if row is None:
        raise ApiKeyExists(f"an API key named {name!r} already exists")
    return _key_row(row), made.key


async def revoke_api_key(session: AsyncSession, name: str) -> ApiKeyRow:
    """Revoke the key named `name` now (revoking a revoked key keeps its first revocation
    time); its row.

    May raise: UnknownApiKey.
    """
    row = await session.scalar(
        update(m.ApiKey)
        .where(m.ApiKey.name == name)
        .values(revoked_at=func.coalesce(m.ApiKey.revoked_at, func.now()))
        .returning(m.ApiKey)
    )
    if row is None:
        raise UnknownApiKey(f"no API key named {name!r}")
    return _key_row(row)


async def list_api_keys(session: AsyncSession) -> list[ApiKeyRow]:
    """Every key ever made, revoked ones included, by id."""
    rows = await session.scalars(select(m.ApiKey).order_by(m.ApiKey.id))
    return [_key_row(row) for row in rows]


async def find_api_key(session: AsyncSession, public_id: str) -> ApiKeyRow | None:
    """The key with this public id, revoked or not, or None."""
    row = await session.scalar(select(m.ApiKey).where(m.ApiKey.public_id == public_id))
    return None if row is None else _key_row(row)


async def authenticate_api_key(session: AsyncSession, presented: str) -> ApiKeyRow:
    """The active key `presented` is. Unknown, wrong and revoked keys are refused alike, after
    the same hash-and-compare work.

    May raise: AuthError (field `authorization`: `malformed` when not shaped like a key,
    `invalid_key` otherwise).
    """
    row = await find_api_key(session, public_id_of(presented))
    matches = key_matches(presented, None if row is None else row.key_hash)
    if row is None or not matches or not row.active:
        raise AuthError("authorization", "invalid_key", "unknown or revoked API key")
    return row
