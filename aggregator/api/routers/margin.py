"""Statuses: one user's, one account's, a batch of them, and the user list."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query
from starlette.responses import Response

from aggregator.addresses import caip10
from aggregator.api.access.deps import CallerDep, ContextDep, authorize_user
from aggregator.api.accounts import parse_account
from aggregator.api.cursor import decode_cursor, encode_cursor
from aggregator.api.errors import ApiError, error_body
from aggregator.api.reads.status_reader import RenderedStatus
from aggregator.api.responses import Json
from aggregator.api.schemas import (
    BatchRequest,
    BatchResponse,
    ErrorResponse,
    MarginStatus,
    UserPage,
)
from aggregator.store.accounts import users as user_repo

router = APIRouter(tags=["margin"])

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "The body is not valid JSON"},
    413: {"model": ErrorResponse, "description": "The body is over 1 MiB"},
    404: {"model": ErrorResponse, "description": "Unknown user or account, or no status yet"},
    422: {"model": ErrorResponse, "description": "A malformed parameter (named in `field`)"},
    503: {"model": ErrorResponse, "description": "The database is unreachable"},
}

UserParam = Annotated[
    str,
    Path(
        description="User name, or numeric user id",
        examples=["alice"],
        min_length=1,
        max_length=200,
    ),
]
IfNoneMatch = Annotated[
    str | None,
    Header(
        description="An ETag from an earlier response: 304 when the status is unchanged",
        examples=['"1-42"'],
    ),
]


def status_response(
    rendered: RenderedStatus, if_none_match: str | None, max_age: int = 0
) -> Response:
    """The status body, or 304 when the client's ETag is current."""
    headers = {
        "ETag": rendered.etag,
        "Cache-Control": f"private, max-age={max_age}, must-revalidate",
    }
    if if_none_match is not None and rendered.etag in {t.strip() for t in if_none_match.split(",")}:
        return Response(status_code=304, headers=headers)
    return Json(rendered.body, headers=headers)


async def _published(context: ContextDep, user_id: int, name: str, field: str) -> RenderedStatus:
    rendered = await context.reader.status(user_id)
    if rendered is None:
        raise ApiError(404, "no_status", f"no status has been published for {name!r} yet", field)
    return rendered


@router.get(
    "/v1/users/{user}/margin",
    response_model=MarginStatus,
    responses={**ERRORS, 304: {"description": "Not modified (If-None-Match)"}},
    summary="A user's latest margin status",
)
async def user_margin(
    user: UserParam,
    context: ContextDep,
    caller: CallerDep,
    if_none_match: IfNoneMatch = None,
) -> Response:
    row = await context.reader.user(user)
    authorize_user(caller, row.id)
    return status_response(await _published(context, row.id, row.name, "user"), if_none_match)


@router.get(
    "/v1/accounts/{account}/margin",
    response_model=MarginStatus,
    responses={**ERRORS, 304: {"description": "Not modified (If-None-Match)"}},
    summary="The margin status of the user an account belongs to",
)
async def account_margin(
    account: Annotated[
        str,
        Path(
            description="CAIP-10 account id",
            examples=["eip155:31337:0x80B98e6B4525053B07767F63563a2c807B2f2BCe"],
            max_length=300,
        ),
    ],
    context: ContextDep,
    caller: CallerDep,
    if_none_match: IfNoneMatch = None,
) -> Response:
    chain, address = parse_account(context.config, account, "account")
    async with context.database.session() as session:
        owner = await user_repo.wallet_owner(session, chain, address)
    if owner is None:
        raise ApiError(404, "not_found", f"no user has linked {account}", "account")
    authorize_user(caller, owner)
    return status_response(await _published(context, owner, account, "account"), if_none_match)


def _item_error(request: str, exc: ApiError) -> bytes:
    from aggregator.api.responses import dumps

    return dumps(
        {
            "request": request,
            "status": None,
            "error": error_body(exc.code, exc.message, exc.field)["error"],
        }
    )


@router.post(
    "/v1/margin:batch",
    response_model=BatchResponse,
    responses=ERRORS,
    summary="Statuses of up to 100 users or accounts in one call",
)
async def margin_batch(body: BatchRequest, context: ContextDep, caller: CallerDep) -> Response:
    from aggregator.api.responses import dumps

    limit = context.config.api.max_batch
    total = len(body.users) + len(body.accounts)
    if total == 0:
        raise ApiError(422, "invalid", "name at least one user or account", "users")
    if total > limit:
        raise ApiError(
            422, "too_many", f"{total} users and accounts: at most {limit} per batch", "users"
        )
    wanted: list[tuple[str, str, int | None, ApiError | None]] = []
    for i, ref in enumerate(body.users):
        try:
            row = await context.reader.user(ref, f"users[{i}]")
            authorize_user(caller, row.id)
            wanted.append((ref, f"users[{i}]", row.id, None))
        except ApiError as exc:
            wanted.append((ref, f"users[{i}]", None, exc))
    for i, account in enumerate(body.accounts):
        field = f"accounts[{i}]"
        try:
            chain, address = parse_account(context.config, account, field)
            async with context.database.session() as session:
                owner = await user_repo.wallet_owner(session, chain, address)
            if owner is None:
                raise ApiError(404, "not_found", f"no user has linked {account}", field)
            authorize_user(caller, owner)
            wanted.append((account, field, owner, None))
        except ApiError as exc:
            wanted.append((account, field, None, exc))
    statuses = await context.reader.statuses([uid for _, _, uid, _ in wanted if uid is not None])
    parts: list[bytes] = []
    for ref, field, user_id, error in wanted:
        if error is None and user_id is not None and user_id not in statuses:
            error = ApiError(404, "no_status", f"no status has been published for {ref!r}", field)
        if error is not None:
            parts.append(_item_error(ref, error))
        else:
            assert user_id is not None
            parts.append(
                b'{"request":'
                + dumps(ref)
                + b',"status":'
                + statuses[user_id].body
                + b',"error":null}'
            )
    return Json(b'{"results":[' + b",".join(parts) + b"]}", headers={"Cache-Control": "no-store"})


@router.get(
    "/v1/users",
    response_model=UserPage,
    responses=ERRORS,
    summary="Users and their linked accounts, by id",
)
async def list_users(
    context: ContextDep,
    caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=1000, description="Page size")] = 100,
    cursor: Annotated[str | None, Query(max_length=512, description="From `next_cursor`")] = None,
) -> Response:
    after = 0
    if cursor is not None:
        position = decode_cursor("users", cursor).get("after")
        after = position if isinstance(position, int) else -1
        if after < 0:
            raise ApiError(422, "invalid_cursor", "not a cursor this endpoint gave out", "cursor")
    if caller.kind == "session":
        raise ApiError(403, "forbidden", "a user session may read only its own user", None)
    async with context.database.session() as session:
        rows = await user_repo.list_users_page(session, after_id=after, limit=limit + 1)
        wallets = await user_repo.wallets_of_users(session, [r.id for r in rows[:limit]])
    items = [
        {
            "user": row.name,
            "user_id": row.id,
            "accounts": [
                caip10(context.config.chains[w.chain].caip2, w.address)
                for w in wallets.get(row.id, [])
                if w.chain in context.config.chains
            ],
        }
        for row in rows[:limit]
    ]
    next_cursor = (
        encode_cursor("users", {"after": rows[limit - 1].id}) if len(rows) > limit else None
    )
    return Json({"items": items, "next_cursor": next_cursor}, headers={"Cache-Control": "no-store"})
