"""What publishing wrote: the markets of passes, the latest status per user and its history."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Identity, Index, Text, func, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from aggregator.store.models.base import STATUSES, Base, check_in


class ValuationMarket(Base):
    """The shared inputs of one publish pass: its instant, each chain's read point, each
    asset's price and volatility (`inputs`, JSON with money as decimal strings). Status rows
    refer to it by id; `digest` (of the content) lets every shard of a pass find one row."""

    __tablename__ = "valuation_markets"

    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    digest: Mapped[str] = mapped_column(unique=True)
    as_of: Mapped[datetime]
    inputs: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class _StatusColumns:
    """The fields of a published status, shared by the latest row and the history."""

    as_of: Mapped[datetime]
    status: Mapped[str]
    stale: Mapped[bool]
    stale_chains: Mapped[list[str]] = mapped_column(
        ARRAY(Text), server_default=text("'{}'::text[]")
    )
    health_factor: Mapped[Decimal | None]
    equity_usd: Mapped[Decimal]
    weighted_collateral_init_usd: Mapped[Decimal]
    weighted_collateral_maint_usd: Mapped[Decimal]
    requirement_init_usd: Mapped[Decimal]
    requirement_maint_usd: Mapped[Decimal]
    health_init_usd: Mapped[Decimal]
    health_maint_usd: Mapped[Decimal]
    free_collateral_usd: Mapped[Decimal]
    document: Mapped[dict[str, Any]]
    inputs: Mapped[dict[str, Any]]
    # The version of the user's status: +1 on every publish that writes it (ETag, stream id).
    seq: Mapped[int] = mapped_column(server_default=text("0"))


class MarginStatus(_StatusColumns, Base):
    """The latest status of each user."""

    __tablename__ = "margin_status"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())
    changed_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (CheckConstraint(check_in("status", STATUSES), name="status_known"),)


class MarginStatusHistory(_StatusColumns, Base):
    """A status as it was when it changed materially."""

    __tablename__ = "margin_status_history"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    # In the key: the table is partitioned by it (one partition per month, 0010).
    recorded_at: Mapped[datetime] = mapped_column(server_default=func.now(), primary_key=True)

    # The primary key (user_id, id, recorded_at) also serves "latest history rows of a user".
    __table_args__ = (
        CheckConstraint(check_in("status", STATUSES), name="status_known"),
        Index("ix_margin_status_history_user_id_seq", "user_id", "seq"),
        {"postgresql_partition_by": "RANGE (recorded_at)"},
    )
