"""Sign-in and linking: single-use nonces and hashed API keys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Identity, Integer, func
from sqlalchemy.orm import Mapped, mapped_column

from aggregator.store.models.base import Base, check_in

NONCE_PURPOSES = ("link", "signin")
API_KEY_SCOPES = ("read", "link", "admin")


class AuthNonce(Base):
    """A single-use nonce handed out for a link or sign-in text. Keyed by the nonce: it is
    looked up before the user it belongs to is trusted (another user's nonce must be told apart
    from an unknown one)."""

    __tablename__ = "auth_nonces"

    nonce: Mapped[str] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str]
    chain: Mapped[str]  # CAIP-2
    account: Mapped[str]  # the address, canonical spelling
    issued_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    consumed_at: Mapped[datetime | None]

    __table_args__ = (
        CheckConstraint(check_in("purpose", NONCE_PURPOSES), name="purpose_known"),
        CheckConstraint("expires_at > issued_at", name="expires_after_issue"),
    )


class ApiKey(Base):
    """An operator-issued API key: only the SHA-256 of the key is kept."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(unique=True)
    public_id: Mapped[str] = mapped_column(unique=True)
    key_hash: Mapped[str]
    scope: Mapped[str]
    rate_per_minute: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    revoked_at: Mapped[datetime | None]

    __table_args__ = (
        CheckConstraint(check_in("scope", API_KEY_SCOPES), name="scope_known"),
        CheckConstraint("rate_per_minute IS NULL OR rate_per_minute > 0", name="rate_positive"),
        CheckConstraint("length(name) > 0", name="name_not_empty"),
    )


TRUST_TABLES = ("auth_nonces", "api_keys")
