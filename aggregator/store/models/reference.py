"""Reference data mirrored from config, and who is tracked: users, their wallets, chains, assets,
deployments, price sources."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Identity,
    SmallInteger,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from aggregator.store.models.base import Base


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(unique=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (CheckConstraint("length(name) > 0", name="name_not_empty"),)


class Wallet(Base):
    """A wallet linked to a user. One owner per (chain, address)."""

    __tablename__ = "wallets"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    chain: Mapped[str] = mapped_column(primary_key=True)
    address: Mapped[str] = mapped_column(primary_key=True)
    ownership_proof: Mapped[str | None]
    verified_at: Mapped[datetime | None]
    linked_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (UniqueConstraint("chain", "address"),)


class Chain(Base):
    __tablename__ = "chains"

    key: Mapped[str] = mapped_column(primary_key=True)
    caip2: Mapped[str] = mapped_column(unique=True)
    family: Mapped[str]


class Asset(Base):
    __tablename__ = "assets"

    symbol: Mapped[str] = mapped_column(primary_key=True)
    stable: Mapped[bool] = mapped_column(server_default=text("false"))
    family: Mapped[str]


class AssetDeployment(Base):
    """An asset on one chain: contract address, mint, or 'native'."""

    __tablename__ = "asset_deployments"

    asset: Mapped[str] = mapped_column(
        ForeignKey("assets.symbol", ondelete="CASCADE"), primary_key=True
    )
    chain: Mapped[str] = mapped_column(
        ForeignKey("chains.key", ondelete="CASCADE"), primary_key=True
    )
    address: Mapped[str]
    decimals: Mapped[int] = mapped_column(SmallInteger)
    token_program: Mapped[str | None]

    __table_args__ = (CheckConstraint("decimals BETWEEN 0 AND 255", name="decimals_range"),)


class PriceSource(Base):
    """An oracle feed for an asset on a chain (Chainlink aggregator, Pyth account, ...)."""

    __tablename__ = "price_sources"

    asset: Mapped[str] = mapped_column(
        ForeignKey("assets.symbol", ondelete="CASCADE"), primary_key=True
    )
    chain: Mapped[str] = mapped_column(
        ForeignKey("chains.key", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(primary_key=True)
    address: Mapped[str] = mapped_column(primary_key=True)
    feed_id: Mapped[str | None]
