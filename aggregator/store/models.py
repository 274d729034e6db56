"""The tables. Alembic (migrations/) is the only way they reach a database.

Amounts are exact: NUMERIC(78,0) base units plus decimals (78 digits hold any uint256), prices
and USD figures unconstrained NUMERIC; never floats. Per-user tables have primary keys that start
with `user_id`, so they can later be distributed by it (Citus) without a redesign.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

BASE_UNITS = Numeric(78, 0)
"""Integer amounts in base units: 78 digits hold every uint256."""

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

STATUSES = ("healthy", "warning", "margin_call", "liquidatable")
FINALITIES = ("finalized", "safe", "confirmed", "latest")
POSITION_KINDS = ("deposit", "borrow", "perp")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 (SQLAlchemy reads this class attribute)
        int: BigInteger(),
        str: Text(),
        datetime: DateTime(timezone=True),
        Decimal: Numeric(),
        dict[str, Any]: JSONB(),
        list[Any]: JSONB(),
    }


# --- reference data (mirrors config) ---------------------------------------------------------


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


# --- observations ------------------------------------------------------------------------------


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
        CheckConstraint(_in("finality", FINALITIES), name="finality_known"),
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
        CheckConstraint(_in("kind", POSITION_KINDS), name="kind_known"),
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


# --- output ------------------------------------------------------------------------------------


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

    __table_args__ = (CheckConstraint(_in("status", STATUSES), name="status_known"),)


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
        CheckConstraint(_in("status", STATUSES), name="status_known"),
        Index("ix_margin_status_history_user_id_seq", "user_id", "seq"),
        {"postgresql_partition_by": "RANGE (recorded_at)"},
    )


def table_of(model: type[Base]) -> Table:
    """The Core table of a mapped class (for bulk executemany inserts)."""
    return cast(Table, model.__table__)


OBSERVATION_TABLES = ("poll_runs", "chain_heads", "balances", "positions", "prices")
ALL_TABLES = tuple(Base.metadata.tables)


# --- trust (issue 8) ---------------------------------------------------------------------------

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
        CheckConstraint(_in("purpose", NONCE_PURPOSES), name="purpose_known"),
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
        CheckConstraint(_in("scope", API_KEY_SCOPES), name="scope_known"),
        CheckConstraint("rate_per_minute IS NULL OR rate_per_minute > 0", name="rate_positive"),
        CheckConstraint("length(name) > 0", name="name_not_empty"),
    )


TRUST_TABLES = ("auth_nonces", "api_keys")
ALL_TABLES = tuple(Base.metadata.tables)


# --- alerts (issue 10) -------------------------------------------------------------------------

ALERT_EVENT_KINDS = ("warning", "margin_call", "liquidatable", "healthy", "stale", "test")
ALERT_EVENT_STATES = ("pending", "delivered", "suppressed")


class AlertEvent(Base):
    """One event for one webhook: the outbox row written in the publish transaction, and its
    delivery state. `event_id` is the idempotency key receivers see; `payload` is the body."""

    __tablename__ = "alert_events"

    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    event_id: Mapped[str] = mapped_column(unique=True)
    webhook: Mapped[str]
    kind: Mapped[str]
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    payload: Mapped[dict[str, Any]]
    state: Mapped[str] = mapped_column(server_default=text("'pending'"))
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    next_attempt_at: Mapped[datetime] = mapped_column(server_default=func.now())
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    delivered_at: Mapped[datetime | None]
    last_error: Mapped[str | None]

    __table_args__ = (
        CheckConstraint(_in("kind", ALERT_EVENT_KINDS), name="kind_known"),
        CheckConstraint(_in("state", ALERT_EVENT_STATES), name="state_known"),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        # The deliverer's claim: due pending rows, oldest first.
        Index(
            "ix_alert_events_due",
            "next_attempt_at",
            postgresql_where=text("state = 'pending'"),
        ),
        # The minimum interval per (webhook, user): the newest event of a pair.
        Index("ix_alert_events_webhook_user_id", "webhook", "user_id", text("id DESC")),
    )


class AlertAttempt(Base):
    """One POST of an event: when, how long, and what came back (status code or error)."""

    __tablename__ = "alert_attempts"

    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    alert_event_id: Mapped[int] = mapped_column(
        ForeignKey("alert_events.id", ondelete="CASCADE"), index=True
    )
    attempt: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime]
    duration_ms: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None]

    __table_args__ = (
        CheckConstraint("duration_ms >= 0", name="duration_not_negative"),
        CheckConstraint("status_code IS NOT NULL OR error IS NOT NULL", name="has_outcome"),
    )


ALERT_TABLES = ("alert_events", "alert_attempts")


# --- work queue (issue 12) ---------------------------------------------------------------------


class PublishShardMark(Base):
    """One shard of one queued publish pass, written in the shard's own transaction: the
    fence that keeps a duplicate or retried shard job from writing the shard twice
    (`aggregator.work.fence`). `pass_key` names the pass (its publish job)."""

    __tablename__ = "publish_shard_marks"

    pass_key: Mapped[str] = mapped_column(primary_key=True)
    shard: Mapped[int] = mapped_column(Integer, primary_key=True)
    shards: Mapped[int] = mapped_column(Integer, primary_key=True)
    market_id: Mapped[int] = mapped_column(BigInteger)
    published_at: Mapped[datetime] = mapped_column(server_default=func.now(), index=True)

    __table_args__ = (CheckConstraint("shard >= 0 AND shard < shards", name="shard_in_range"),)


ALL_TABLES = tuple(Base.metadata.tables)
