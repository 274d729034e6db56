"""Poll results: one row per poll, and per good poll the head it read at with its balances,
positions and prices. A failed poll writes only its poll_run: the last good head stays latest.

A head a reorg replaced is marked orphaned (in the transaction of the poll that found it) and is
never read again: `latest_observations` (`observation_reads`, where stored observations are
read back) picks each chain's newest head that is not orphaned."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from aggregator.store import models as m
from aggregator.store.database import Database
from aggregator.store.observed.venue_reads import venue_rows
from chains.base import (
    ChainSnapshot,
    LineIssue,
    Position,
    PriceObservation,
    ReadPoint,
    TokenBalance,
)

UNLINKED_ACCOUNT = "account is not linked to any user: its lines were not stored"


@dataclass(frozen=True, slots=True)
class OwnedBalance:
    """A stored balance with the user who owns the wallet."""

    user_id: int
    balance: TokenBalance


@dataclass(frozen=True, slots=True)
class OwnedPosition:
    """A stored protocol position with the user who owns the account."""

    user_id: int
    position: Position


@dataclass(frozen=True, slots=True)
class ChainObservations:
    """The latest good read of one chain, and whether polls failed since."""

    chain: str
    head_id: int
    poll_run_id: int
    read_point: ReadPoint
    observed_at: datetime
    balances: tuple[OwnedBalance, ...]
    positions: tuple[OwnedPosition, ...]
    prices: tuple[PriceObservation, ...]
    last_failure_at: datetime | None = None  # latest failed poll after this head
    last_failure_error: str | None = None
    failures_since: int = 0  # failed polls after this head (of the same chain and shard)
    # A shard poll's head (`polling.shards`): its lines cover user_id % shard_count =
    # shard_index only. None: a whole-chain poll's head.
    shard_index: int | None = None
    shard_count: int | None = None
    # On a chain's entry: the newest live head of each (chain, shard) poll, whatever newer
    # or older than this one (a publish shard picks between them: `PassMarket.for_shard`).
    shards: tuple[ChainObservations, ...] = ()

    @property
    def superseded_by_failure(self) -> bool:
        """True when a later poll failed: the data is the last good one, kept but older."""
        return self.failures_since > 0


@dataclass(frozen=True, slots=True)
class StoredHead:
    """A head already stored (not orphaned), as a poll re-checks it against the chain."""

    id: int
    height: int
    block_hash: str
    finality: str


@dataclass(frozen=True, slots=True)
class Orphaning:
    """A stored head to mark orphaned, and why (one line naming the height and hashes)."""

    head_id: int
    height: int
    reason: str


@dataclass(frozen=True, slots=True)
class ShardKey:
    """One shard of a chain's wallets: those of users with user_id % count = index."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"shard {self.index}/{self.count}: need 0 <= index < count")

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


class PollFenced(Exception):
    """A shard poll refused by its cursor fence: this (chain, shard) already stored a head at
    this height or a newer one (a duplicate or late run). Raised inside the poll's
    transaction, so nothing of it is written."""

    def __init__(self, chain: str, shard: ShardKey, height: int, stored: int | None) -> None:
        self.chain, self.shard, self.height, self.stored = chain, shard, height, stored
        super().__init__(
            f"poll {chain} shard {shard}: block {height} refused by the fence "
            f"(stored block {stored}): a duplicate or late run, nothing written"
        )


# Advance the shard's cursor to :height unless it already stands there or higher. A cursor
# whose head a reorg orphaned (in this same transaction) lets the same height be written again.
_ADVANCE_CURSOR = text(
    """
    INSERT INTO poll_shard_cursors AS c (chain, shard_index, shard_count, height, head_id)
    VALUES (:chain, :index, :count, :height, :head)
    ON CONFLICT (chain, shard_index, shard_count) DO UPDATE
        SET height = excluded.height, head_id = excluded.head_id, updated_at = now()
        WHERE c.height < excluded.height
           OR EXISTS (SELECT 1 FROM chain_heads h
                      WHERE h.id = c.head_id AND h.orphaned_at IS NOT NULL)
    RETURNING c.height
    """
)


async def shard_cursor(session: AsyncSession, chain: str, shard: ShardKey) -> int | None:
    """The height the (chain, shard) poll last stored, or None."""
    height: int | None = await session.scalar(
        select(m.PollShardCursor.height).where(
            m.PollShardCursor.chain == chain,
            m.PollShardCursor.shard_index == shard.index,
            m.PollShardCursor.shard_count == shard.count,
        )
    )
    return height


def _shard_columns(shard: ShardKey | None) -> dict[str, int | None]:
    if shard is None:
        return {"shard_index": None, "shard_count": None}
    return {"shard_index": shard.index, "shard_count": shard.count}


def require_aware(moment: datetime, name: str) -> datetime:
    """`moment`, refused (ValueError naming `name`) when it is naive."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {moment.isoformat()}")
    return moment


def _unix(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


_Line = TypeVar("_Line", TokenBalance, Position)


class _Owners:
    """address → user_id; EVM hex addresses also match case-insensitively. Remembers the
    accounts it found no owner for."""

    def __init__(self, wallet_owner: Mapping[str, int]) -> None:
        self._exact = dict(wallet_owner)
        self._hex = {a.lower(): u for a, u in wallet_owner.items() if a.startswith("0x")}
        self.unlinked: set[str] = set()

    def get(self, account: str) -> int | None:
        found = self._exact.get(account)
        if found is None and account.startswith("0x"):
            found = self._hex.get(account.lower())
        return found

    def rows(
        self, lines: Iterable[_Line], columns: Callable[[_Line], dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """The columns of each line whose account has an owner, with that owner's `user_id`.
        Lines of other accounts are left out; their accounts join `unlinked`."""
        rows: list[dict[str, Any]] = []
        for line in lines:
            user_id = self.get(line.account)
            if user_id is None:
                self.unlinked.add(line.account)
            else:
                rows.append({"user_id": user_id, **columns(line)})
        return rows


async def record_snapshot(
    db: Database,
    snapshot: ChainSnapshot,
    wallet_owner: Mapping[str, int],
    started_at: datetime,
    duration_ms: int,
    orphanings: Sequence[Orphaning] = (),
    *,
    shard: ShardKey | None = None,
) -> int:
    """Store one good poll in one transaction; return its poll_run id.

    A shard poll (`shard`) marks its poll_run and head with the shard and, in the same
    transaction, advances the shard's cursor fence (`poll_shard_cursors`) to the head's
    height; when the fence refuses (that height or a newer one is already stored for the
    shard) it raises `PollFenced` and the whole transaction (orphanings included) rolls back.

    Writes the poll_run (ok), the chain head, and every balance, position, price and venue
    account (`venue_reads`). Lines of
    accounts absent from `wallet_owner` (unlinked meanwhile) are skipped and recorded as issues,
    with the snapshot's own issues, in the poll_run. `orphanings` mark stored heads orphaned in
    the same transaction (counted in `poll_runs.orphaned_heads`, one issue each). On any
    failure nothing is written and the previous observations stay latest.
    May raise: ValueError (naive started_at), PollFenced, DatabaseUnavailable,
    sqlalchemy.exc.DBAPIError (e.g. a negative balance or an amount beyond NUMERIC(78,0):
    nothing is written).
    """
    require_aware(started_at, "started_at")
    finished_at = started_at + timedelta(milliseconds=duration_ms)
    owners = _Owners(wallet_owner)
    balance_rows = owners.rows(snapshot.balances, _balance_columns)
    position_rows = owners.rows(snapshot.positions, _position_columns)
    price_rows = [_price_columns(price, observed_at=finished_at) for price in snapshot.prices]
    venue_rows_ = venue_rows(snapshot.venue_accounts, wallet_owner)
    unlinked = (LineIssue(a, UNLINKED_ACCOUNT) for a in sorted(owners.unlinked))
    orphaned = (LineIssue(f"block {o.height}", f"orphaned: {o.reason}") for o in orphanings)
    issues = [*orphaned, *snapshot.issues, *unlinked]
    point = snapshot.read_point

    async with db.session() as session:
        for orphaning in orphanings:
            await session.execute(
                update(m.ChainHead)
                .where(m.ChainHead.id == orphaning.head_id, m.ChainHead.orphaned_at.is_(None))
                .values(orphaned_at=func.now(), orphan_reason=orphaning.reason)
            )
        poll_run_id: int | None = await session.scalar(
            insert(m.PollRun)
            .values(
                chain=snapshot.chain,
                started_at=started_at,
                finished_at=finished_at,
                duration_ms=duration_ms,
                height=point.height,
                endpoint=snapshot.endpoint,
                request_count=snapshot.request_count,
                ok=True,
                issues=[{"subject": i.subject, "message": i.message} for i in issues],
                orphaned_heads=len(orphanings),
                **_shard_columns(shard),
            )
            .returning(m.PollRun.id)
        )
        head_id = await session.scalar(
            insert(m.ChainHead)
            .values(
                poll_run_id=poll_run_id,
                chain=snapshot.chain,
                height=point.height,
                hash=point.block_hash,
                parent_hash=point.parent_hash,
                block_timestamp=_unix(point.timestamp),
                finality=point.finality,
                observed_at=finished_at,
                **_shard_columns(shard),
            )
            .returning(m.ChainHead.id)
        )
        if shard is not None:
            advanced = await session.scalar(
                _ADVANCE_CURSOR,
                {
                    "chain": snapshot.chain,
                    "index": shard.index,
                    "count": shard.count,
                    "height": point.height,
                    "head": head_id,
                },
            )
            if advanced is None:
                stored = await shard_cursor(session, snapshot.chain, shard)
                raise PollFenced(snapshot.chain, shard, point.height, stored)
        for model, rows in (
            (m.Balance, balance_rows),
            (m.Position, position_rows),
            (m.Price, price_rows),
            (m.VenueRead, venue_rows_),
        ):
            if rows:
                # Every line is stored with the chain and head it was read at.
                await session.execute(
                    insert(m.table_of(model)),
                    [{**row, "chain": snapshot.chain, "chain_head_id": head_id} for row in rows],
                )
    assert poll_run_id is not None
    return poll_run_id


def _balance_columns(balance: TokenBalance) -> dict[str, Any]:
    return {
        "account": balance.account,
        "asset": balance.asset,
        "token_address": balance.token_address,
        "holder": balance.holder,
        "amount_raw": balance.amount_raw,
        "decimals": balance.decimals,
    }


def _position_columns(position: Position) -> dict[str, Any]:
    return {
        "account": position.account,
        "venue": position.venue,
        "asset": position.asset,
        "kind": position.kind,
        "amount_raw": position.amount_raw,
        "decimals": position.decimals,
        "entry_price": position.entry_price,
        "market": position.market,
    }


def _price_columns(price: PriceObservation, observed_at: datetime) -> dict[str, Any]:
    return {
        "asset": price.asset,
        "source": price.source,
        "price": price.price,
        "conf": price.conf,
        "publish_time": _unix(price.publish_time),
        "valid": price.valid,
        "invalid_reason": price.invalid_reason,
        "observed_at": observed_at,
    }


async def record_poll_failure(
    db: Database,
    chain: str,
    started_at: datetime,
    duration_ms: int,
    error: str,
    endpoint: str | None = None,
    *,
    request_count: int = 0,
    shard: ShardKey | None = None,
) -> int:
    """Store a failed poll; return its poll_run id. The last good observations stay latest.

    May raise: ValueError (naive started_at), DatabaseUnavailable.
    """
    require_aware(started_at, "started_at")
    async with db.session() as session:
        poll_run_id: int | None = await session.scalar(
            insert(m.PollRun)
            .values(
                chain=chain,
                started_at=started_at,
                finished_at=started_at + timedelta(milliseconds=duration_ms),
                duration_ms=duration_ms,
                endpoint=endpoint,
                request_count=request_count,
                ok=False,
                error=error or "unknown error",
                **_shard_columns(shard),
            )
            .returning(m.PollRun.id)
        )
    assert poll_run_id is not None
    return poll_run_id
