"""Status-change notifications (LISTEN xmargin_status), for the server-sent-events stream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import TracebackType

import psycopg

from aggregator.store.database import DatabaseUnavailable, libpq_url, mask_password
from aggregator.store.published.statuses import STATUS_CHANNEL


class StatusChanges:
    """A dedicated connection LISTENing for material status changes.

    Listening starts when the `async with` block is entered, so nothing committed after that
    is missed:

        async with StatusChanges(db.url) as listener:
            async for user_id in listener.changes():
                ...
    """

    def __init__(self, url: str) -> None:
        self._url = url
        self._conn: psycopg.AsyncConnection[object] | None = None

    async def __aenter__(self) -> StatusChanges:
        """Connect and LISTEN.

        May raise: DatabaseUnavailable.
        """
        try:
            conn = await psycopg.AsyncConnection.connect(libpq_url(self._url), autocommit=True)
        except psycopg.OperationalError as exc:
            lines = str(exc).strip().splitlines()
            raise DatabaseUnavailable(
                f"cannot reach the database at {mask_password(self._url)}: "
                f"{lines[0] if lines else type(exc).__name__}"
            ) from exc
        await conn.execute(f"LISTEN {STATUS_CHANNEL}")
        self._conn = conn
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def changes(
        self, *, max_wait_seconds: float | None = None, stop_after: int | None = None
    ) -> AsyncIterator[int]:
        """Yield the user id of each change as its publish commits; ends after `max_wait_seconds`
        seconds in total (None: never) or after `stop_after` changes.

        May raise: RuntimeError (used outside `async with`), psycopg.OperationalError
        (connection lost).
        """
        if self._conn is None:
            raise RuntimeError("StatusChanges.changes() needs `async with StatusChanges(...)`")
        async for note in self._conn.notifies(timeout=max_wait_seconds, stop_after=stop_after):
            if note.payload.isdigit():
                yield int(note.payload)
