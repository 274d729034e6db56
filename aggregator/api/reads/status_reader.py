"""Reading published statuses for the API, with an in-process cache kept honest by NOTIFY.

A status is completed (its full document rendered from what the pass stored:
`aggregator.publish.documents`), rendered (views.render_status) and serialized once per version
(`seq`); the bytes are kept per user until the next publish pass commits (the store sends
`NOTIFY xmargin_publish` then), and after that reused for every user whose `seq` did not move.
The cache is only used while the stream hub is LISTENing: without the
notifications it could not know when to forget, so every read goes to the database instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from aggregator.api.errors import ApiError
from aggregator.api.metrics import ApiMetrics
from aggregator.api.reads.views import render_status
from aggregator.api.responses import dumps
from aggregator.config import LoadedConfig
from aggregator.publish.documents import complete
from aggregator.store.accounts import users as user_repo
from aggregator.store.accounts.users import UserRow
from aggregator.store.database import Database
from aggregator.store.published.status_reads import get_statuses
from aggregator.store.published.statuses import StatusRecord

MAX_CACHED = 200_000


@dataclass(frozen=True, slots=True)
class RenderedStatus:
    """One user's status as the API sends it."""

    user_id: int
    seq: int
    etag: str
    body: bytes
    published_at: datetime | None


def etag_of(user_id: int, seq: int) -> str:
    return f'"{user_id}-{seq}"'


def render_record(record: StatusRecord) -> RenderedStatus:
    view = render_status(
        record.document,
        record.inputs.get("portfolio"),
        seq=record.seq,
        published_at=record.recorded_at,
    )
    return RenderedStatus(
        user_id=record.user_id,
        seq=record.seq,
        etag=etag_of(record.user_id, record.seq),
        body=dumps(view),
        published_at=record.recorded_at,
    )


class StatusReader:
    """Users by name or id, and their rendered latest statuses."""

    def __init__(
        self, database: Database, config: LoadedConfig, metrics: ApiMetrics | None = None
    ) -> None:
        self.database = database
        self.config = config
        self.metrics = metrics
        self.cache_enabled = False
        self._generation = 0
        self._statuses: dict[int, RenderedStatus] = {}
        # Renderings from before the last invalidation: reused when the row's seq is the same.
        self._previous: dict[int, RenderedStatus] = {}
        self._users: dict[str, UserRow] = {}

    def invalidate(self) -> None:
        """Forget every cached status (a publish pass committed, or notifications were lost);
        keep the renderings to reuse for rows whose seq did not change."""
        self._generation += 1
        if self._statuses:
            self._previous = self._statuses
        self._statuses = {}
        self._users.clear()

    def set_cache_enabled(self, enabled: bool) -> None:
        self.cache_enabled = enabled
        self.invalidate()
        self._previous = {}

    def cached_status_of(self, ref: str) -> RenderedStatus | None:
        """The cached rendered status of the user named (or numbered) `ref`, without touching
        the database; None when either is not cached (or the cache is off)."""
        if not self.cache_enabled:
            return None
        row = self._users.get(ref)
        if row is None:
            return None
        rendered = self._statuses.get(row.id)
        if rendered is not None and self.metrics is not None:
            self.metrics.status_cache.labels("hit").inc()
        return rendered

    async def user(self, ref: str, field: str = "user") -> UserRow:
        """The user named `ref`, or with id `ref` when it is all digits.

        May raise: ApiError (404 unknown, 422 malformed), DatabaseUnavailable.
        """
        if not ref or len(ref) > 200:
            raise ApiError(422, "invalid", "a user name or id of 1 to 200 characters", field)
        cached = self._users.get(ref) if self.cache_enabled else None
        if cached is not None:
            return cached
        generation = self._generation
        async with self.database.session() as session:
            if ref.isdigit():
                row = await user_repo.get_user(session, int(ref)) if len(ref) < 19 else None
            else:
                row = await user_repo.get_user(session, ref)
        if row is None:
            raise ApiError(404, "not_found", f"no user {ref!r}", field)
        if self.cache_enabled and generation == self._generation:
            self._users[ref] = row
        return row

    async def statuses(self, user_ids: Sequence[int]) -> dict[int, RenderedStatus]:
        """The rendered latest status of each of `user_ids` that has one.

        May raise: DatabaseUnavailable.
        """
        out: dict[int, RenderedStatus] = {}
        missing: list[int] = []
        for user_id in user_ids:
            cached = self._statuses.get(user_id) if self.cache_enabled else None
            if cached is None:
                missing.append(user_id)
            else:
                out[user_id] = cached
        if self.metrics is not None:
            self.metrics.status_cache.labels("hit").inc(len(out))
            self.metrics.status_cache.labels("miss").inc(len(missing))
        if not missing:
            return out
        generation = self._generation
        async with self.database.session() as session:
            records = await get_statuses(session, missing)
            reused: dict[int, RenderedStatus] = {}
            if self.cache_enabled:
                for user_id, record in records.items():
                    previous = self._previous.get(user_id)
                    if (
                        previous is not None
                        and previous.seq == record.seq
                        and previous.published_at == record.recorded_at
                    ):
                        reused[user_id] = previous
            todo = [r for uid, r in records.items() if uid not in reused]
            completed = {r.user_id: r for r in await complete(session, self.config, todo)}
        keep = self.cache_enabled and generation == self._generation
        if keep and len(self._statuses) + len(records) > MAX_CACHED:
            self._statuses.clear()
        for user_id in records:
            rendered = reused.get(user_id) or render_record(completed[user_id])
            out[user_id] = rendered
            if keep:
                self._statuses[user_id] = rendered
        return out

    async def status(self, user_id: int) -> RenderedStatus | None:
        """The rendered latest status of one user, None before its first publish."""
        return (await self.statuses([user_id])).get(user_id)
