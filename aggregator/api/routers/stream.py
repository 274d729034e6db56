"""`GET /v1/stream`: server-sent events of status changes.

On connect, a snapshot of each requested user's current status; then one `status` event per
material change, in seq order, fed by the store's NOTIFY through the hub. Each event's `id:` is
the user's `seq` (with several users: `user_id:seq` pairs for all of them), so a client that
reconnects with `Last-Event-ID` gets exactly the changes it missed from the history, with no
gap and no snapshot. A comment line every `[api] stream_heartbeat_seconds` keeps proxies from
closing idle streams. A client that falls `[api] stream_queue_size` events behind, or does not
read for 30 s, is dropped (a final `dropped` event when it can still be sent).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from starlette.responses import StreamingResponse
from starlette.types import Send

from aggregator.api.access.deps import CallerDep, ContextDep, authorize_user
from aggregator.api.accounts import parse_account
from aggregator.api.errors import ApiError
from aggregator.api.reads.stream_hub import StatusEvent
from aggregator.api.routers.margin import ERRORS
from aggregator.publish.documents import complete, published_statuses
from aggregator.store.accounts import users as user_repo
from aggregator.store.published.status_reads import documents_after

router = APIRouter(tags=["stream"])

MAX_STREAM_USERS = 100
WRITE_TIMEOUT_SECONDS = 30.0


class EventStream(StreamingResponse):
    """A streaming response whose every write must complete within a timeout: a client that
    stops reading is disconnected instead of holding a task forever."""

    media_type = "text/event-stream"

    async def stream_response(self, send: Send) -> None:
        async def bounded(message: dict[str, object]) -> None:
            await asyncio.wait_for(send(message), WRITE_TIMEOUT_SECONDS)

        await bounded(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        async for chunk in self.body_iterator:
            data = chunk if isinstance(chunk, bytes) else str(chunk).encode()
            await bounded({"type": "http.response.body", "body": data, "more_body": True})
        await bounded({"type": "http.response.body", "body": b"", "more_body": False})


def _event_id_of(user_ids: list[int] | tuple[int, ...], seqs: dict[int, int]) -> str:
    if len(user_ids) == 1:
        return str(seqs.get(user_ids[0], 0))
    return ",".join(f"{u}:{seqs.get(u, 0)}" for u in user_ids)


def _frame(event_id: str, data: bytes, event: str = "status") -> bytes:
    return (
        b"event: " + event.encode() + b"\nid: " + event_id.encode() + b"\ndata: " + data + b"\n\n"
    )


def parse_last_event_id(value: str, user_ids: list[int]) -> dict[int, int]:
    """Positions from a Last-Event-ID: `seq` for a one-user stream, else `user_id:seq,...`.

    May raise: ApiError (422 naming `Last-Event-ID`).
    """
    bad = ApiError(422, "invalid", "not an event id this stream gave out", "Last-Event-ID")
    value = value.strip()
    if len(value) > 4000:
        raise bad
    if len(user_ids) == 1 and value.isdigit():
        return {user_ids[0]: int(value)}
    positions: dict[int, int] = {}
    for part in value.split(","):
        user, _, seq = part.partition(":")
        if not (user.isdigit() and seq.isdigit()) or int(user) not in user_ids:
            raise bad
        positions[int(user)] = int(seq)
    return positions


@router.get(
    "/v1/stream",
    responses={
        200: {
            "description": "text/event-stream of `status` events (data: a MarginStatus)",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **ERRORS,
    },
    summary="Live status changes as server-sent events",
)
async def stream(
    request: Request,
    context: ContextDep,
    caller: CallerDep,
    user: Annotated[
        list[str], Query(description="User names or ids (repeat for several)", max_length=100)
    ] = [],  # noqa: B006 (FastAPI copies defaults)
    account: Annotated[
        list[str], Query(description="CAIP-10 account ids (repeat for several)", max_length=100)
    ] = [],  # noqa: B006
    last_event_id: Annotated[
        str | None,
        Header(alias="Last-Event-ID", description="Resume after this event id"),
    ] = None,
    access_token: Annotated[
        str | None,
        Query(
            description="The credential, for clients that cannot send `Authorization` "
            "(browsers' EventSource): a session token or an API key",
            max_length=400,
        ),
    ] = None,
) -> StreamingResponse:
    if not user and not account:
        raise ApiError(422, "missing", "name at least one user or account", "user")
    if len(user) + len(account) > MAX_STREAM_USERS:
        raise ApiError(422, "too_many", f"at most {MAX_STREAM_USERS} users per stream", "user")
    user_ids: list[int] = []
    for i, ref in enumerate(user):
        row = await context.reader.user(ref, f"user[{i}]")
        authorize_user(caller, row.id)
        user_ids.append(row.id)
    for i, acc in enumerate(account):
        field = f"account[{i}]"
        chain, address = parse_account(context.config, acc, field)
        async with context.database.session() as session:
            owner = await user_repo.wallet_owner(session, chain, address)
        if owner is None:
            raise ApiError(404, "not_found", f"no user has linked {acc}", field)
        authorize_user(caller, owner)
        user_ids.append(owner)
    user_ids = list(dict.fromkeys(user_ids))
    resume = parse_last_event_id(last_event_id, user_ids) if last_event_id else {}

    hub = context.hub
    subscription = hub.subscribe(user_ids)
    try:
        first, positions = await _first_events(context, user_ids, resume)
        await hub.activate(subscription, positions)
    except BaseException:
        hub.unsubscribe(subscription)
        raise
    heartbeat = context.config.api.stream_heartbeat_seconds

    async def events() -> AsyncIterator[bytes]:
        try:
            yield b"retry: 2000\n\n"
            sent = dict(resume)
            for event in first:
                sent[event.user_id] = event.seq
                yield _frame(_event_id_of(user_ids, sent), event.data)
            while True:
                try:
                    item = await asyncio.wait_for(subscription.queue.get(), heartbeat)
                except TimeoutError:
                    if await request.is_disconnected():
                        return
                    yield b": heartbeat\n\n"
                    continue
                if item is None:
                    yield _frame(
                        _event_id_of(user_ids, sent),
                        b'{"reason":"client too slow: reconnect with Last-Event-ID"}',
                        "dropped",
                    )
                    return
                sent[item.user_id] = item.seq
                yield _frame(_event_id_of(user_ids, sent), item.data)
        finally:
            hub.unsubscribe(subscription)

    return EventStream(
        events(),
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _first_events(
    context: ContextDep, user_ids: list[int], resume: dict[int, int]
) -> tuple[list[StatusEvent], dict[int, int]]:
    """The replay (users with a position: the history after it) and the snapshot (the others:
    their current status), and each user's seq after them."""
    from aggregator.api.reads.stream_hub import event_of

    fresh = [u for u in user_ids if u not in resume]
    async with context.database.session() as session:
        replay = await documents_after(session, resume) if resume else []
        replay = await complete(session, context.config, replay)
        current = await published_statuses(session, context.config, fresh) if fresh else {}
    events = [event_of(record) for record in replay]
    events += [event_of(current[u]) for u in fresh if u in current]
    positions = {u: 0 for u in user_ids} | dict(resume)
    for event in events:
        positions[event.user_id] = max(positions[event.user_id], event.seq)
    return events, positions
