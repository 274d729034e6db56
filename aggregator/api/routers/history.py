"""A user's status history: material changes, newest first, in cursor pages."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import Response

from aggregator.api.access.deps import CallerDep, ContextDep, authorize_user
from aggregator.api.cursor import decode_cursor, encode_cursor
from aggregator.api.errors import ApiError
from aggregator.api.reads.views import render_summary
from aggregator.api.responses import Json
from aggregator.api.routers.margin import ERRORS, UserParam
from aggregator.api.schemas import HistoryPage
from aggregator.store.published.status_reads import status_history

router = APIRouter(tags=["margin"])


def _aware(moment: datetime | None, field: str) -> datetime | None:
    if moment is not None and moment.tzinfo is None:
        raise ApiError(422, "invalid", "an RFC 3339 time with a UTC offset (…Z)", field)
    return moment


@router.get(
    "/v1/users/{user}/margin/history",
    response_model=HistoryPage,
    responses=ERRORS,
    summary="A user's material status changes, newest first",
)
async def margin_history(
    user: UserParam,
    context: ContextDep,
    caller: CallerDep,
    since: Annotated[
        datetime | None,
        Query(description="Only statuses valued at or after this time (RFC 3339)"),
    ] = None,
    until: Annotated[
        datetime | None,
        Query(description="Only statuses valued before this time (RFC 3339)"),
    ] = None,
    limit: Annotated[
        int, Query(ge=1, description="Page size (at most [api] history_max_limit)")
    ] = 50,
    cursor: Annotated[
        str | None, Query(max_length=512, description="`next_cursor` of the previous page")
    ] = None,
) -> Response:
    if limit > context.config.api.history_max_limit:
        raise ApiError(422, "invalid", f"at most {context.config.api.history_max_limit}", "limit")
    since, until = _aware(since, "since"), _aware(until, "until")
    if since is not None and until is not None and until <= since:
        raise ApiError(422, "invalid", "must be after `since`", "until")
    row = await context.reader.user(user)
    authorize_user(caller, row.id)
    before_id = None
    if cursor is not None:
        position = decode_cursor(f"history:{row.id}", cursor)
        before = position.get("before")
        if not isinstance(before, int) or before < 0:
            raise ApiError(422, "invalid_cursor", "not a cursor this endpoint gave out", "cursor")
        before_id = before
    async with context.database.session() as session:
        records = await status_history(
            session, row.id, limit + 1, before_id=before_id, since=since, until=until
        )
    page = records[:limit]
    items = [
        render_summary(record.document, seq=record.seq, recorded_at=record.recorded_at)
        for record in page
    ]
    next_cursor = None
    if len(records) > limit and page[-1].history_id is not None:
        next_cursor = encode_cursor(f"history:{row.id}", {"before": page[-1].history_id})
    return Json(
        {"user": row.name, "items": items, "next_cursor": next_cursor},
        headers={"Cache-Control": "private, max-age=0, must-revalidate"},
    )
