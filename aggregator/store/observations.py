"""Poll results: one row per poll, and per good poll the head it read at with its balances,
positions and prices. A failed poll writes only its poll_run: the last good head stays latest.

A head a reorg replaced is marked orphaned (in the transaction of the poll that found it) and is
never read again: `latest_observations` picks each chain's newest head that is not orphaned."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Context, Decimal
from typing import Any, NamedTuple, TypeVar, cast

from sqlalchemy import and_, delete, func, insert, or_, select, text, update
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession

from aggregator.store import models as m
from aggregator.store.database import Database, driver_connection
from aggregator.store.markets import heads_in_use, prune_markets
from aggregator.store.venue_reads import venue_rows
from chains.base import (
    Address,
    ChainSnapshot,
    Finality,
    LineIssue,
    Position,
    PositionKind,
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
    failures_since: int = 0  # failed polls after this head

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
class PruneResult:
    poll_runs: int
    heads: int
    prices: int


def _aware(moment: datetime, name: str) -> datetime:
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
) -> int:
    """Store one good poll in one transaction; return its poll_run id.

    Writes the poll_run (ok), the chain head, and every balance, position, price and venue
    account (`venue_reads`). Lines of
    accounts absent from `wallet_owner` (unlinked meanwhile) are skipped and recorded as issues,
    with the snapshot's own issues, in the poll_run. `orphanings` mark stored heads orphaned in
    the same transaction (counted in `poll_runs.orphaned_heads`, one issue each). On any
    failure nothing is written and the previous observations stay latest.
    May raise: ValueError (naive started_at), DatabaseUnavailable, sqlalchemy.exc.DBAPIError
    (e.g. a negative balance or an amount beyond NUMERIC(78,0): nothing is written).
    """
    _aware(started_at, "started_at")
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
            )
            .returning(m.ChainHead.id)
        )
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
) -> int:
    """Store a failed poll; return its poll_run id. The last good observations stay latest.

    May raise: ValueError (naive started_at), DatabaseUnavailable.
    """
    _aware(started_at, "started_at")
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
            )
            .returning(m.PollRun.id)
        )
    assert poll_run_id is not None
    return poll_run_id


async def recent_heads(db: Database, chain: str, limit: int = 16) -> list[StoredHead]:
    """The newest `limit` heads of `chain` that are not orphaned, newest first."""
    async with db.session() as session:
        rows = await session.execute(
            select(m.ChainHead.id, m.ChainHead.height, m.ChainHead.hash, m.ChainHead.finality)
            .where(m.ChainHead.chain == chain, m.ChainHead.orphaned_at.is_(None))
            .order_by(m.ChainHead.id.desc())
            .limit(limit)
        )
        return [StoredHead(*row) for row in rows]


async def latest_observations(
    session: AsyncSession, *, lines: bool = True
) -> dict[str, ChainObservations]:
    """Per chain with at least one good poll: its latest head that is not orphaned, with
    balances, positions and prices, plus the failed polls after it. Chains never read
    successfully (or whose every head was orphaned) are absent. `lines=False` leaves the
    balances and positions out (a sharded publish reads them per shard: `lines_at_heads`)."""
    heads = list(
        await session.scalars(
            select(m.ChainHead)
            .where(m.ChainHead.orphaned_at.is_(None))
            .ext(distinct_on(m.ChainHead.chain))
            .order_by(m.ChainHead.chain, m.ChainHead.id.desc())
        )
    )
    if not heads:
        return {}
    head_ids = [head.id for head in heads]

    balances: dict[int, list[OwnedBalance]] = {}
    positions: dict[int, list[OwnedPosition]] = {}
    if lines:
        for row in await session.scalars(
            select(m.Balance).where(m.Balance.chain_head_id.in_(head_ids)).order_by(m.Balance.id)
        ):
            balances.setdefault(row.chain_head_id, []).append(_owned_balance(row))
        for position_row in await session.scalars(
            select(m.Position).where(m.Position.chain_head_id.in_(head_ids)).order_by(m.Position.id)
        ):
            positions.setdefault(position_row.chain_head_id, []).append(
                _owned_position(position_row)
            )
    prices: dict[int, list[PriceObservation]] = {}
    for price_row in await session.scalars(
        select(m.Price).where(m.Price.chain_head_id.in_(head_ids)).order_by(m.Price.id)
    ):
        assert price_row.chain_head_id is not None
        prices.setdefault(price_row.chain_head_id, []).append(_price(price_row))

    failures_after = or_(
        *(and_(m.PollRun.chain == h.chain, m.PollRun.id > h.poll_run_id) for h in heads)
    )
    failures = {
        chain: (finished_at, error, count)
        for chain, finished_at, error, count in await session.execute(
            select(
                m.PollRun.chain,
                m.PollRun.finished_at,
                m.PollRun.error,
                func.count().over(partition_by=m.PollRun.chain),
            )
            .where(~m.PollRun.ok, failures_after)
            .ext(distinct_on(m.PollRun.chain))
            .order_by(m.PollRun.chain, m.PollRun.id.desc())
        )
    }

    result: dict[str, ChainObservations] = {}
    for head in heads:
        failed_at, error, count = failures.get(head.chain, (None, None, 0))
        result[head.chain] = ChainObservations(
            chain=head.chain,
            head_id=head.id,
            poll_run_id=head.poll_run_id,
            read_point=ReadPoint(
                height=head.height,
                block_hash=head.hash,
                timestamp=int(head.block_timestamp.timestamp()),
                finality=cast(Finality, head.finality),
            ),
            observed_at=head.observed_at,
            balances=tuple(balances.get(head.id, ())),
            positions=tuple(positions.get(head.id, ())),
            prices=tuple(prices.get(head.id, ())),
            last_failure_at=failed_at,
            last_failure_error=error,
            failures_since=count,
        )
    return result


_EXACT = Context(prec=100)  # more digits than any uint256 has (78)


class HeldLine(NamedTuple):
    """A wallet balance or a protocol position of one user, exact in base units, as a publish
    pass reads it (plain values, no ORM object: a pass reads a million). Balances have venue
    'wallet' and kind 'balance'; borrows are negative, perps a signed base amount. `head_id`:
    the head it was read at (0 when not from the store)."""

    user_id: int
    chain: str
    account: str
    asset: str
    venue: str  # "wallet" for balances
    kind: str  # "balance" | "deposit" | "borrow" | "perp"
    amount_raw: int
    decimals: int
    entry_price: Decimal | None = None
    market: str | None = None
    head_id: int = 0

    @property
    def amount(self) -> Decimal:
        """Human units, exact: every digit of a uint256 kept (a power-of-ten shift rounds
        only past the context's precision, and this context holds 100 digits)."""
        return Decimal(self.amount_raw).scaleb(-self.decimals, _EXACT)


_LINES_AT_HEADS = """
    SELECT user_id, chain, account, asset, 'wallet', 'balance', amount_raw::text, decimals,
           NULL::numeric, NULL::text, chain_head_id, 0 AS source, id
    FROM balances WHERE chain_head_id = ANY(%(heads)s) {filter}
    UNION ALL
    SELECT user_id, chain, account, asset, venue, kind, amount_raw::text, decimals,
           entry_price, market, chain_head_id, 1, id
    FROM positions WHERE chain_head_id = ANY(%(heads)s) {filter}
    ORDER BY 1, 2, 12, 13
"""


async def lines_at_heads(
    session: AsyncSession,
    head_ids: Sequence[int],
    *,
    user_ids: Sequence[int] | None = None,
) -> list[HeldLine]:
    """The balances and positions read at `head_ids`, by user, and per user and chain the
    balances then the positions, each in the order they were stored (the order
    `latest_observations` gives). `user_ids` keeps those users' lines (found through the
    (head, user) index).

    One query on the session's own connection, in binary, rows as tuples (amounts as text:
    parsing them is cheaper than a Decimal per line): a pass reads a million lines.
    """
    if not head_ids:
        return []
    params: dict[str, Any] = {"heads": list(head_ids)}
    where = ""
    if user_ids is not None:
        where = "AND user_id = ANY(%(users)s)"
        params["users"] = list(user_ids)
    driver = await driver_connection(session)
    async with driver.cursor(binary=True) as cursor:
        await cursor.execute(_LINES_AT_HEADS.format(filter=where), params)
        rows = await cursor.fetchall()
    line = HeldLine
    return [
        line(u, c, a, s, v, k, int(amount), d, e, m, h)
        for u, c, a, s, v, k, amount, d, e, m, h, _source, _id in rows
    ]


def _owned_balance(row: m.Balance) -> OwnedBalance:
    return OwnedBalance(
        user_id=row.user_id,
        balance=TokenBalance(
            account=Address(row.account),
            asset=row.asset,
            amount_raw=int(row.amount_raw),
            decimals=row.decimals,
            token_address=row.token_address,
            holder=row.holder,
        ),
    )


def _owned_position(row: m.Position) -> OwnedPosition:
    return OwnedPosition(
        user_id=row.user_id,
        position=Position(
            account=Address(row.account),
            venue=row.venue,
            asset=row.asset,
            kind=cast(PositionKind, row.kind),
            amount_raw=int(row.amount_raw),
            decimals=row.decimals,
            entry_price=row.entry_price,
            market=row.market,
        ),
    )


def _price(row: m.Price) -> PriceObservation:
    return PriceObservation(
        asset=row.asset,
        source=row.source,
        price=row.price,
        conf=row.conf,
        publish_time=int(row.publish_time.timestamp()),
        valid=row.valid,
        invalid_reason=row.invalid_reason,
    )


async def price_history(
    session: AsyncSession, asset: str, since: datetime, *, source: str | None = None
) -> list[tuple[datetime, Decimal]]:
    """Valid prices of `asset` published at or after `since`, oldest first, one per publish
    time (the same oracle update read by several polls counts once). `source` narrows to one
    feed.
    May raise: ValueError (naive since).
    """
    _aware(since, "since")
    statement = (
        select(m.Price.publish_time, m.Price.price)
        .where(m.Price.asset == asset, m.Price.valid, m.Price.publish_time >= since)
        .ext(distinct_on(m.Price.publish_time))
        .order_by(m.Price.publish_time, m.Price.id.desc())
    )
    if source is not None:
        statement = statement.where(m.Price.source == source)
    return [(moment, price) for moment, price in await session.execute(statement)]


_PRUNE_POLL_RUNS = text(
    """
    WITH ranked AS (
        SELECT chain, poll_run_id,
               row_number() OVER (PARTITION BY chain ORDER BY id DESC) AS newest_rank
        FROM chain_heads
        WHERE orphaned_at IS NULL
    ), cutoff AS (
        SELECT chain, poll_run_id FROM ranked WHERE newest_rank = :keep
    )
    DELETE FROM poll_runs pr
    USING cutoff
    WHERE pr.chain = cutoff.chain AND pr.id < cutoff.poll_run_id
      AND NOT EXISTS (
          SELECT 1 FROM chain_heads kept
          WHERE kept.poll_run_id = pr.id AND kept.id = ANY(CAST(:in_use AS bigint[]))
      )
    RETURNING pr.ok
    """
)


async def prune_observations(
    session: AsyncSession,
    keep_heads_per_chain: int,
    price_retention: timedelta = timedelta(days=30),
) -> PruneResult:
    """Keep the newest `keep_heads_per_chain` heads of each chain that are not orphaned (and
    every newer orphaned one) with their balances and positions; delete older heads and every
    poll_run (good or failed) before the oldest kept head, except the heads a latest status
    row was valued from (its document is rendered from their lines on read). Markets no status
    refers to go too. Prices outlive their head (volatility needs history) for
    `price_retention`.
    May raise: ValueError (keep_heads_per_chain < 1).
    """
    if keep_heads_per_chain < 1:
        raise ValueError("keep_heads_per_chain must be at least 1: the latest head is live data")
    # Deleting a poll_run cascades to its head, and from there to balances and positions.
    in_use = sorted(await heads_in_use(session))
    deleted = (
        await session.execute(_PRUNE_POLL_RUNS, {"keep": keep_heads_per_chain, "in_use": in_use})
    ).all()
    await prune_markets(session)
    cutoff = datetime.now(UTC) - price_retention
    prices = await session.execute(
        delete(m.Price)
        .where(m.Price.chain_head_id.is_(None), m.Price.observed_at < cutoff)
        .returning(m.Price.id)
    )
    return PruneResult(
        poll_runs=len(deleted),
        heads=sum(1 for (ok,) in deleted if ok),
        prices=len(prices.all()),
    )


async def existing_heads(session: AsyncSession, head_ids: Sequence[int]) -> set[int]:
    """Those of `head_ids` still stored (pruning deletes old heads with their lines)."""
    if not head_ids:
        return set()
    rows = await session.scalars(select(m.ChainHead.id).where(m.ChainHead.id.in_(list(head_ids))))
    return set(rows)


async def orphaned_head_ids(session: AsyncSession) -> set[int]:
    """Every stored head a reorg replaced."""
    rows = await session.scalars(select(m.ChainHead.id).where(m.ChainHead.orphaned_at.is_not(None)))
    return set(rows)


def issues_of(rows: Sequence[Mapping[str, str]]) -> tuple[LineIssue, ...]:
    """The poll_run `issues` JSON back as LineIssues."""
    return tuple(LineIssue(subject=row["subject"], message=row["message"]) for row in rows)
