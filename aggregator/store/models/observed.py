"""What the chains wrote: polls, heads (with their shard and cursor fences), lines held at a head,
venue reads, prices."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Identity,
    Index,
    Integer,
    SmallInteger,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from aggregator.store.models.base import BASE_UNITS, FINALITIES, POSITION_KINDS, Base, check_in

_SHARD_PAIR = "(shard_index IS NULL) = (shard_count IS NULL)"
_SHARD_RANGE = "shard_index IS NULL OR (shard_index >= 0 AND shard_index < shard_count)"


class PollRun(Base):
    """Every poll of a chain, good or failed."""

    __tablename__ = "poll_runs"

    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    chain: Mapped[str]
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime]
    duration_ms: Mapped[int] = mapped_column(Integer)
    height: Mapped[int | None]
    endpoint: Mapped[str | None]
    request_count: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    ok: Mapped[bool] = mapped_column(Boolean)
    error: Mapped[str | None]
    issues: Mapped[list[Any]] = mapped_column(server_default=text("'[]'::jsonb"))
    # Stored heads this poll found replaced by a reorg and marked orphaned.
    orphaned_heads: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    # A shard poll (`polling.shards`): the users with user_id % shard_count = shard_index.
    # NULL: a whole-chain poll.
    shard_index: Mapped[int | None] = mapped_column(Integer)
    shard_count: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (
        CheckConstraint("ok OR error IS NOT NULL", name="failure_has_error"),
        CheckConstraint(_SHARD_PAIR, name="shard_pair"),
        CheckConstraint(_SHARD_RANGE, name="shard_in_range"),
        CheckConstraint("orphaned_heads >= 0", name="orphaned_heads_not_negative"),
        CheckConstraint("duration_ms >= 0", name="duration_not_negative"),
        Index("ix_poll_runs_chain_id", "chain", text("id DESC")),
        Index(
            "ix_poll_runs_failures",
            "chain",
            text("id DESC"),
            postgresql_where=text("NOT ok"),
        ),
        Index("ix_poll_runs_started_at", "started_at"),
    )


class ChainHead(Base):
    """The block or slot one successful poll read at.

    A head whose block a reorg replaced is kept, with `orphaned_at` and why: its observations
    are never used again (publish reads only heads with `orphaned_at IS NULL`)."""

    __tablename__ = "chain_heads"

    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    poll_run_id: Mapped[int] = mapped_column(
        ForeignKey("poll_runs.id", ondelete="CASCADE"), unique=True
    )
    chain: Mapped[str]
    height: Mapped[int]
    hash: Mapped[str]
    block_timestamp: Mapped[datetime]
    finality: Mapped[str]
    observed_at: Mapped[datetime]
    parent_hash: Mapped[str | None]
    orphaned_at: Mapped[datetime | None]
    orphan_reason: Mapped[str | None]
    # The shard of users this head's lines cover (as its poll run's); NULL: every wallet.
    shard_index: Mapped[int | None] = mapped_column(Integer)
    shard_count: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (
        CheckConstraint(check_in("finality", FINALITIES), name="finality_known"),
        CheckConstraint(
            "(orphaned_at IS NULL) = (orphan_reason IS NULL)", name="orphan_has_reason"
        ),
        CheckConstraint(_SHARD_PAIR, name="shard_pair"),
        CheckConstraint(_SHARD_RANGE, name="shard_in_range"),
        # "Latest head per chain" is an index-only walk of this.
        Index("ix_chain_heads_chain_id", "chain", text("id DESC")),
        # "Latest head that is not orphaned": the one publish reads.
        Index(
            "ix_chain_heads_live",
            "chain",
            text("id DESC"),
            postgresql_where=text("orphaned_at IS NULL"),
        ),
        # "Latest live head of each (chain, shard)": what a publish shard reads.
        Index(
            "ix_chain_heads_shard_live",
            "chain",
            "shard_count",
            "shard_index",
            text("id DESC"),
            postgresql_where=text("orphaned_at IS NULL"),
        ),
    )


class PollShardCursor(Base):
    """The fence of a (chain, shard) poll: the height it last stored. A shard poll advances it
    with a conditional update (`height < :new`) in the transaction that writes its lines, so a
    duplicate or late run of the same shard at the same or an older height writes nothing."""

    __tablename__ = "poll_shard_cursors"

    chain: Mapped[str] = mapped_column(primary_key=True)
    shard_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    shard_count: Mapped[int] = mapped_column(Integer, primary_key=True)
    height: Mapped[int]
    head_id: Mapped[int | None] = mapped_column(ForeignKey("chain_heads.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        CheckConstraint("shard_index >= 0 AND shard_index < shard_count", name="shard_in_range"),
    )


class FollowCursor(Base):
    """The last block an EVM chain's head follower has read the logs of
    (`aggregator.work.follow`): the next run starts after it, so a gap back-fills."""

    __tablename__ = "follow_cursors"

    chain: Mapped[str] = mapped_column(primary_key=True)
    last_block: Mapped[int]
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (CheckConstraint("last_block >= 0", name="last_block_known"),)


class PollSweep(Base):
    """When the sweeper last deferred a poll of every shard of a chain (`work.sweep`)."""

    __tablename__ = "poll_sweeps"

    chain: Mapped[str] = mapped_column(primary_key=True)
    swept_at: Mapped[datetime]


_BY_HEAD = {"postgresql_partition_by": "RANGE (chain_head_id)"}
"""The line tables' partitioning (`aggregator.store.partitions`): by day of head."""


class _HeldAtHead:
    """Who held how much of an asset where, as one good poll read it: the columns shared by
    balances and positions. Exact amount: base units plus decimals."""

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    # In the key: the tables are partitioned by it (one partition per day of heads, 0010).
    chain_head_id: Mapped[int] = mapped_column(
        ForeignKey("chain_heads.id", ondelete="CASCADE"), primary_key=True
    )
    chain: Mapped[str]
    account: Mapped[str]
    asset: Mapped[str]
    amount_raw: Mapped[Decimal] = mapped_column(BASE_UNITS)
    decimals: Mapped[int] = mapped_column(SmallInteger)


class Balance(_HeldAtHead, Base):
    """A wallet's token (or native) balance; never negative."""

    __tablename__ = "balances"

    token_address: Mapped[str | None]
    holder: Mapped[str | None]

    __table_args__ = (
        CheckConstraint("amount_raw >= 0", name="amount_not_negative"),
        CheckConstraint("decimals BETWEEN 0 AND 255", name="decimals_range"),
        # A publish shard reads its users' lines at the pass's heads.
        Index("ix_balances_chain_head_id_user_id", "chain_head_id", "user_id"),
        _BY_HEAD,
    )


class Position(_HeldAtHead, Base):
    """A lending deposit (+), borrow (−) or perp (signed base amount)."""

    __tablename__ = "positions"

    venue: Mapped[str]
    kind: Mapped[str]
    entry_price: Mapped[Decimal | None]
    market: Mapped[str | None]

    __table_args__ = (
        CheckConstraint(check_in("kind", POSITION_KINDS), name="kind_known"),
        CheckConstraint("decimals BETWEEN 0 AND 255", name="decimals_range"),
        Index("ix_positions_chain_head_id_user_id", "chain_head_id", "user_id"),
        _BY_HEAD,
    )


class VenueRead(Base):
    """A venue account's own parameters, amounts, prices and reported numbers, read at one
    head with the positions (`document`: `aggregator.store.observed.venue_reads`, money as decimal
    strings). `problem` says why the venue's parameters cannot be used, when they cannot."""

    __tablename__ = "venue_reads"

    # Keyed by user first, like the other per-user tables (ready to distribute by user_id).
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    chain_head_id: Mapped[int] = mapped_column(
        ForeignKey("chain_heads.id", ondelete="CASCADE"), primary_key=True
    )
    chain: Mapped[str]
    account: Mapped[str]
    venue: Mapped[str]
    rules: Mapped[str]
    subaccount: Mapped[str | None]
    document: Mapped[dict[str, Any]]
    problem: Mapped[str | None]

    __table_args__ = (
        Index("ix_venue_reads_chain_head_id_user_id", "chain_head_id", "user_id"),
        _BY_HEAD,
    )


class Price(Base):
    """An oracle read. Kept (head link nulled) when its head is pruned: EWMA needs history."""

    __tablename__ = "prices"

    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    chain_head_id: Mapped[int | None] = mapped_column(
        ForeignKey("chain_heads.id", ondelete="SET NULL"), index=True
    )
    chain: Mapped[str]
    asset: Mapped[str]
    source: Mapped[str]
    price: Mapped[Decimal]
    conf: Mapped[Decimal]
    publish_time: Mapped[datetime]
    valid: Mapped[bool]
    invalid_reason: Mapped[str | None]
    observed_at: Mapped[datetime]

    __table_args__ = (
        CheckConstraint("valid OR invalid_reason IS NOT NULL", name="invalid_has_reason"),
        Index(
            "ix_prices_asset_publish_time",
            "asset",
            "publish_time",
            postgresql_where=text("valid"),
        ),
        Index("ix_prices_observed_at", "observed_at"),
    )


OBSERVATION_TABLES = ("poll_runs", "chain_heads", "balances", "positions", "prices")
