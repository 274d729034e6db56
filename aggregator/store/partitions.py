"""Time partitions of the observation lines and the status history: creation ahead of time
(`ensure_partitions`) and retention by dropping whole partitions (`drop_expired`).

Two families (migration 0010 converted the tables; its docstring argues the keys):

- **Lines** (`balances`, `positions`, `venue_reads`) by range of `chain_head_id`, one
  partition per UTC day, the same bounds in all three tables. A head's id says its day: day
  `d` (days since 1970-01-01) owns ids `[d·HEAD_IDS_PER_DAY, (d+1)·HEAD_IDS_PER_DAY)`, and
  rotation moves the `chain_heads` id sequence up to today's floor when it is below it. So the
  bounds of tomorrow's partition are known today, an insert is routed by the one column every
  line already has, and the publish read (`chain_head_id = ANY(:heads)`) is pruned to the
  partitions of its heads. Heads written after midnight but before the next rotation keep
  yesterday's ids: a day's partition may run a rotation interval late, never early, and
  `drop_expired` judges a partition by the newest head it really holds.
- **History** (`margin_status_history`) by range of `recorded_at`, one partition per UTC
  month (the per-user "last recorded status" read of every publish has no time predicate and
  so visits every partition: few, large partitions keep it cheap; see the migration).

Each parent also has a DEFAULT partition, so an insert never fails when rotation lapsed;
`ensure_partitions` moves rows the default caught into the partition it creates for them.

Rotation takes a transaction-level advisory lock (`partitions`) and skips when another
session holds it. Creating or dropping a partition locks its parent ACCESS EXCLUSIVE until the
transaction ends: only done when something is missing or expired (about once a day), and
callers run it last in their transaction.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

if TYPE_CHECKING:
    from aggregator.config_tables import ServiceSettings

from aggregator.store.locks import try_advisory_lock
from aggregator.store.published.markets import heads_in_use

log = logging.getLogger(__name__)

LINE_TABLES = ("balances", "positions", "venue_reads")
HISTORY_TABLE = "margin_status_history"
PARTITIONED_TABLES = (*LINE_TABLES, HISTORY_TABLE)

HEAD_IDS_PER_DAY = 10**9
"""Head ids reserved per UTC day: far more heads than any day writes (11,574 a second), and
today's floor (≈ 2·10^13) stays an exact integer in JSON readers (below 2^53)."""

AHEAD_DAYS = 3
"""Line partitions created past today: rotation may lapse this many days before the default
partition starts catching lines."""

AHEAD_MONTHS = 1
"""History partitions created past the current month."""

LOCK_KEY = "partitions"

_EPOCH = date(1970, 1, 1)
_DAY_NAME = re.compile(r"_p(\d{8})$")
_BEFORE_NAME = re.compile(r"_before_(\d{8})$")
_MONTH_NAME = re.compile(r"_p(\d{6})$")


_PARTITION_NAME = re.compile(
    rf"^(?:{'|'.join(PARTITIONED_TABLES)})_(?:p\d{{6}}|p\d{{8}}|before_\d{{8}}|default)$"
)


def is_partition_name(name: str) -> bool:
    """True for the name of a partition these functions (or migration 0010) create: schema
    comparisons look at the parents only."""
    return _PARTITION_NAME.match(name) is not None


@dataclass(frozen=True, slots=True)
class Retention:
    """How long observations and history are kept (`[service]` retention keys)."""

    observations: timedelta
    history: timedelta

    @classmethod
    def of(cls, service: ServiceSettings) -> Retention:
        return cls(
            observations=timedelta(days=service.observation_retention_days),
            history=timedelta(days=service.history_retention_days),
        )


@dataclass(frozen=True, slots=True)
class Partition:
    """One partition of one parent table, with its bounds as SQL literals."""

    parent: str
    name: str
    lower: str
    upper: str

    @property
    def create_sql(self) -> str:
        return (
            f"CREATE TABLE IF NOT EXISTS {self.name} PARTITION OF {self.parent} "
            f"FOR VALUES FROM ({self.lower}) TO ({self.upper})"
        )

    @property
    def in_range_sql(self) -> str:
        """A predicate on the parent's partition key: the rows this partition holds."""
        key = "recorded_at" if self.parent == HISTORY_TABLE else "chain_head_id"
        low = "" if self.lower == "MINVALUE" else f"{key} >= {self.lower} AND "
        return f"{low}{key} < {self.upper}"


@dataclass(frozen=True, slots=True)
class Rotation:
    """What one rotation did."""

    created: tuple[str, ...] = ()
    moved_from_default: int = 0
    dropped: tuple[str, ...] = ()
    heads_deleted: int = 0
    carried_forward: int = 0
    held: tuple[str, ...] = ()  # expired, kept: a head in use or newest
    skipped: bool = False  # another session was rotating

    def describe(self) -> str:
        if self.skipped:
            return "partitions: skipped (another session rotates)"
        parts = [f"{len(self.created)} created", f"{len(self.dropped)} dropped"]
        if self.moved_from_default:
            parts.append(f"{self.moved_from_default} rows moved out of default")
        if self.heads_deleted:
            parts.append(f"{self.heads_deleted} heads deleted")
        if self.carried_forward:
            parts.append(f"{self.carried_forward} latest history rows carried forward")
        if self.held:
            parts.append(f"held: {', '.join(self.held)}")
        return "partitions: " + "; ".join(parts)


def _utc_day(now: datetime) -> date:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be timezone-aware, got naive {now.isoformat()}")
    return now.astimezone(UTC).date()


def day_number(day: date) -> int:
    return (day - _EPOCH).days


def head_floor(day: date) -> int:
    """The first head id of `day`."""
    return day_number(day) * HEAD_IDS_PER_DAY


def _month_start(day: date, months_after: int = 0) -> date:
    index = day.year * 12 + day.month - 1 + months_after
    return date(index // 12, index % 12 + 1, 1)


def _timestamp_literal(day: date) -> str:
    return f"'{day.isoformat()} 00:00:00+00'"


def line_partitions(day: date) -> list[Partition]:
    """The partitions of `day` in each line table."""
    suffix = day.strftime("%Y%m%d")
    low, high = head_floor(day), head_floor(day + timedelta(days=1))
    return [Partition(t, f"{t}_p{suffix}", str(low), str(high)) for t in LINE_TABLES]


def lines_before(day: date) -> list[Partition]:
    """Each line table's partition of every head id below `day`'s floor (the lines that
    existed when migration 0010 ran)."""
    suffix = day.strftime("%Y%m%d")
    return [
        Partition(t, f"{t}_before_{suffix}", "MINVALUE", str(head_floor(day))) for t in LINE_TABLES
    ]


def history_partition(month: date) -> Partition:
    """The history partition of the month starting `month`."""
    start = _month_start(month)
    return Partition(
        HISTORY_TABLE,
        f"{HISTORY_TABLE}_p{start.strftime('%Y%m')}",
        _timestamp_literal(start),
        _timestamp_literal(_month_start(start, 1)),
    )


def planned_partitions(
    now: datetime, *, ahead_days: int = AHEAD_DAYS, ahead_months: int = AHEAD_MONTHS
) -> list[Partition]:
    """The partitions that should exist at `now`: today's and `ahead_days` more of each line
    table, this month's and `ahead_months` more of the history.
    May raise: ValueError (naive now).
    """
    today = _utc_day(now)
    planned = [p for n in range(ahead_days + 1) for p in line_partitions(today + timedelta(n))]
    planned += [history_partition(_month_start(today, n)) for n in range(ahead_months + 1)]
    return planned


def default_partition_sql(parent: str) -> str:
    return f"CREATE TABLE IF NOT EXISTS {parent}_default PARTITION OF {parent} DEFAULT"


def head_floor_sql(floor: int) -> str:
    """Move the `chain_heads` id sequence up to `floor` when its next id is below it (never
    down: ids already handed out stay unique)."""
    return f"""
        DO $$
        DECLARE
            seq regclass := pg_get_serial_sequence('chain_heads', 'id')::regclass;
            next_id bigint;
        BEGIN
            EXECUTE format('SELECT last_value + CASE WHEN is_called THEN 1 ELSE 0 END FROM %s',
                           seq) INTO next_id;
            IF next_id < {int(floor)} THEN
                PERFORM setval(seq, {int(floor)}, false);
            END IF;
        END $$
    """


def initial_sql(now: datetime) -> list[str]:
    """The statements that make `now`'s partitions, the defaults, and today's head floor: run
    by migration 0010 (after its `lines_before` partitions) and, checked first, by
    `ensure_partitions`."""
    statements = [default_partition_sql(t) for t in PARTITIONED_TABLES]
    statements += [p.create_sql for p in planned_partitions(now)]
    statements.append(head_floor_sql(head_floor(_utc_day(now))))
    return statements


_CHILDREN = text(
    """
    SELECT parent.relname, child.relname, child.relispartition
    FROM pg_inherits i
    JOIN pg_class parent ON parent.oid = i.inhparent
    JOIN pg_class child ON child.oid = i.inhrelid
    JOIN pg_namespace n ON n.oid = parent.relnamespace
    WHERE n.nspname = current_schema() AND parent.relname = ANY(:parents)
    """
)


async def partitions_of(session: AsyncSession) -> dict[str, set[str]]:
    """The partitions of each partitioned table, by parent (empty sets: not partitioned)."""
    found: dict[str, set[str]] = {t: set() for t in PARTITIONED_TABLES}
    for parent, child, _ in await session.execute(_CHILDREN, {"parents": list(PARTITIONED_TABLES)}):
        found[parent].add(child)
    return found


async def _create(session: AsyncSession, partition: Partition) -> int:
    """Create `partition`, first taking out of the default partition the rows that belong to
    it (a default holding them would refuse the new partition); how many rows moved."""
    default = f"{partition.parent}_default"
    strays = await session.scalar(
        text(f"SELECT count(*) FROM {default} WHERE {partition.in_range_sql}")
    )
    moved = int(strays or 0)
    if moved:
        await session.execute(
            text(
                f"CREATE TEMPORARY TABLE xmargin_strays ON COMMIT DROP AS "
                f"SELECT * FROM {default} WHERE {partition.in_range_sql}"
            )
        )
        await session.execute(text(f"DELETE FROM {default} WHERE {partition.in_range_sql}"))
    await session.execute(text(partition.create_sql))
    if moved:
        await session.execute(
            text(
                f"INSERT INTO {partition.parent} OVERRIDING SYSTEM VALUE "
                f"SELECT * FROM xmargin_strays"
            )
        )
        await session.execute(text("DROP TABLE xmargin_strays"))
        log.warning("moved %d rows of %s out of its default partition", moved, partition.parent)
    return moved


async def ensure_partitions(
    session: AsyncSession,
    now: datetime,
    *,
    ahead_days: int = AHEAD_DAYS,
    ahead_months: int = AHEAD_MONTHS,
) -> Rotation:
    """Create the partitions `now` needs that are missing (today's and `ahead_days` more of
    the lines, this month's and `ahead_months` more of the history; rows the defaults caught
    for them are moved in), and move the head id sequence up to today's floor. Idempotent;
    no DDL when nothing is missing. Skips (and says so) when another session rotates.
    May raise: ValueError (naive now).
    """
    planned = planned_partitions(now, ahead_days=ahead_days, ahead_months=ahead_months)
    if not await try_advisory_lock(session, LOCK_KEY):
        return Rotation(skipped=True)
    existing = await partitions_of(session)
    created: list[str] = []
    moved = 0
    for parent in PARTITIONED_TABLES:
        if f"{parent}_default" not in existing[parent]:
            await session.execute(text(default_partition_sql(parent)))
            created.append(f"{parent}_default")
    # Ids below the migration's floor are its `before_` partitions': no day goes there (only
    # a clock set back before the migration's day would ask for one).
    taken = max(
        (p.upper for p in _line_periods(existing[LINE_TABLES[0]]) if p.lower is None), default=None
    )
    for partition in planned:
        if taken is not None and partition.parent in LINE_TABLES and int(partition.lower) < taken:
            continue
        if partition.name not in existing[partition.parent]:
            moved += await _create(session, partition)
            created.append(partition.name)
    await session.execute(text(head_floor_sql(head_floor(_utc_day(now)))))
    return Rotation(created=tuple(created), moved_from_default=moved)


@dataclass(frozen=True, slots=True)
class _LinePeriod:
    """One period of the line tables: the same bounds in each of them."""

    suffix: str  # "p20261202" or "before_20261202"
    lower: int | None  # None: MINVALUE
    upper: int
    ends: datetime  # when the period ended (its heads may run one rotation later)

    def names(self) -> list[str]:
        return [f"{t}_{self.suffix}" for t in LINE_TABLES]


def _line_periods(names: set[str]) -> list[_LinePeriod]:
    periods: dict[str, _LinePeriod] = {}
    prefix = f"{LINE_TABLES[0]}_"
    for name in names:
        if (day_match := _DAY_NAME.search(name)) is not None:
            day = datetime.strptime(day_match.group(1), "%Y%m%d").date()
            nxt = day + timedelta(days=1)
            periods[name.removeprefix(prefix)] = _LinePeriod(
                name.removeprefix(prefix),
                head_floor(day),
                head_floor(nxt),
                datetime.combine(nxt, time(), UTC),
            )
        elif (before := _BEFORE_NAME.search(name)) is not None:
            day = datetime.strptime(before.group(1), "%Y%m%d").date()
            periods[name.removeprefix(prefix)] = _LinePeriod(
                name.removeprefix(prefix), None, head_floor(day), datetime.combine(day, time(), UTC)
            )
    return sorted(periods.values(), key=lambda p: p.upper)


# The newest live head of each chain and of each (chain, shard) (a shard poll's head covers
# only its shard's users): the last good read of each, which no retention removes.
_NEWEST_LIVE_HEADS = text(
    """
    SELECT DISTINCT ON (chain, shard_count, shard_index) id FROM chain_heads
    WHERE orphaned_at IS NULL ORDER BY chain, shard_count, shard_index, id DESC
    """
)

_HEADS_IN_RANGE = text(
    """
    SELECT max(observed_at), count(*) FROM chain_heads
    WHERE id >= :low AND id < :high
    """
)

_DELETE_HEADS_IN_RANGE = text(
    """
    DELETE FROM poll_runs WHERE id IN (
        SELECT poll_run_id FROM chain_heads WHERE id >= :low AND id < :high
    )
    RETURNING id
    """
)


async def _drop_lines(session: AsyncSession, now: datetime, keep: timedelta) -> Rotation:
    cutoff = now - keep
    existing = (await partitions_of(session))[LINE_TABLES[0]]
    periods = [p for p in _line_periods(existing) if p.ends <= cutoff]
    if not periods:
        return Rotation()
    protected = set(await heads_in_use(session))
    protected |= {int(i) for (i,) in await session.execute(_NEWEST_LIVE_HEADS)}
    dropped: list[str] = []
    held: list[str] = []
    heads_deleted = 0
    for period in periods:
        low = period.lower if period.lower is not None else -(2**63)
        newest, _count = (
            await session.execute(_HEADS_IN_RANGE, {"low": low, "high": period.upper})
        ).one()
        if newest is not None and newest >= cutoff:
            continue  # heads written late into the period, not yet expired
        if any(low <= head < period.upper for head in protected):
            held.append(period.suffix)
            continue
        for name in period.names():
            await session.execute(text(f"DROP TABLE IF EXISTS {name}"))
            dropped.append(name)
        deleted = await session.execute(_DELETE_HEADS_IN_RANGE, {"low": low, "high": period.upper})
        heads_deleted += len(deleted.all())
    return Rotation(dropped=tuple(dropped), held=tuple(held), heads_deleted=heads_deleted)


_HISTORY_COLUMNS = text(
    """
    SELECT attname FROM pg_attribute
    WHERE attrelid = 'margin_status_history'::regclass AND attnum > 0 AND NOT attisdropped
    ORDER BY attnum
    """
)


def _carry_forward_sql(columns: Sequence[str], partition: Partition) -> str:
    """Copy each user's newest history row, when it lies in `partition`, to `:now` (same id,
    seq, as_of and document): the publish compares a new status with the last recorded one,
    and must not see "no history" because the row aged out."""
    listed = ", ".join(columns)
    chosen = ", ".join(":now" if c == "recorded_at" else f"h.{c}" for c in columns)
    return f"""
        INSERT INTO {HISTORY_TABLE} ({listed}) OVERRIDING SYSTEM VALUE
        SELECT {chosen}
        FROM margin_status s
        CROSS JOIN LATERAL (
            SELECT x.*, x.tableoid AS part FROM {HISTORY_TABLE} x WHERE x.user_id = s.user_id
            ORDER BY x.id DESC LIMIT 1
        ) h
        WHERE h.part = '{partition.name}'::regclass
    """


async def _drop_history(session: AsyncSession, now: datetime, keep: timedelta) -> Rotation:
    cutoff = now - keep
    existing = (await partitions_of(session))[HISTORY_TABLE]
    expired: list[Partition] = []
    for name in sorted(existing):
        if (month := _MONTH_NAME.search(name)) is None:
            continue
        start = datetime.strptime(month.group(1) + "01", "%Y%m%d").date()
        if datetime.combine(_month_start(start, 1), time(), UTC) <= cutoff:
            expired.append(history_partition(start))
    if not expired:
        return Rotation()
    columns = [c for (c,) in await session.execute(_HISTORY_COLUMNS)]
    carried = 0
    dropped: list[str] = []
    for partition in expired:
        result = await session.execute(
            text(_carry_forward_sql(columns, partition) + " RETURNING 1"), {"now": now}
        )
        carried += len(result.all())
        await session.execute(text(f"DROP TABLE {partition.name}"))
        dropped.append(partition.name)
    return Rotation(dropped=tuple(dropped), carried_forward=carried)


async def drop_expired(session: AsyncSession, now: datetime, retention: Retention) -> Rotation:
    """Drop the partitions older than the retention, whole.

    Lines: a day's partitions (in all three line tables) go when the day ended more than
    `retention.observations` before `now` and so did its newest head, unless one of its heads
    is still in use by a latest status (its document is rendered from those lines) or is the
    newest live head of a chain or of a (chain, shard) (the last good read stays); its heads
    and their poll runs are deleted with it (prices keep their rows, head link nulled).
    History: a month goes when it
    ended more than `retention.history` before `now`; each user's newest history row in it is
    first carried forward (`_carry_forward_sql`). Skips when another session rotates.
    May raise: ValueError (naive now).
    """
    _utc_day(now)
    if not await try_advisory_lock(session, LOCK_KEY):
        return Rotation(skipped=True)
    lines = await _drop_lines(session, now, retention.observations)
    history = await _drop_history(session, now, retention.history)
    return Rotation(
        dropped=lines.dropped + history.dropped,
        heads_deleted=lines.heads_deleted,
        carried_forward=history.carried_forward,
        held=lines.held,
    )


async def rotate(session: AsyncSession, now: datetime, retention: Retention) -> Rotation:
    """`drop_expired` then `ensure_partitions`, in the session's transaction: what pruning
    runs after its row deletes."""
    dropped = await drop_expired(session, now, retention)
    ensured = await ensure_partitions(session, now)
    return Rotation(
        created=ensured.created,
        moved_from_default=ensured.moved_from_default,
        dropped=dropped.dropped,
        heads_deleted=dropped.heads_deleted,
        carried_forward=dropped.carried_forward,
        held=dropped.held,
        skipped=dropped.skipped or ensured.skipped,
    )
