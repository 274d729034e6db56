"""Typed dependencies of the routers: the API context, and who the caller is.

`CallerDep` is the one place that says who is asking: `current_caller` reads
`Authorization: Bearer <credential>` — a sign-in session token (`xms1.`) or an operator API key
(`xmk_`) — checks it, and takes one request from its rate-limit bucket. `enforce_access` (a
router-level dependency, see `app.py`) refuses what the route's access group does not allow
(`aggregator.api.access.security`), and `authorize_user` what the caller may not read of one user.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import Depends, Request

from aggregator.api.access.security import (
    WWW_AUTHENTICATE,
    access_group,
    group_needs_credentials,
    remember_decision,
)
from aggregator.api.context import ApiContext
from aggregator.api.errors import ApiError
from aggregator.auth import tokens
from aggregator.auth.api_keys import SCOPES, scope_allows
from aggregator.auth.errors import AuthError
from aggregator.auth.ratelimit import RateDecision
from aggregator.config_tables import AuthSettings
from aggregator.store.accounts.auth import ApiKeyRow

Scope = Literal["read", "link", "admin"]


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: anonymous, an operator's API key, or a user's sign-in session."""

    kind: Literal["anonymous", "api_key", "session"]
    name: str | None = None  # the API key's name, or the session's CAIP-10 account
    scopes: frozenset[Scope] = frozenset({"read"})
    user_id: int | None = None  # a session is scoped to one user

    def may_read_user(self, user_id: int) -> bool:
        if self.kind == "session":
            return self.user_id == user_id
        return "read" in self.scopes

    def has_scope(self, scope: Scope) -> bool:
        return self.kind == "api_key" and scope in self.scopes


ANONYMOUS = Caller(kind="anonymous")


def api_context(request: Request) -> ApiContext:
    context: ApiContext = request.app.state.context
    return context


async def _context_dependency(request: Request) -> ApiContext:
    # `async`: FastAPI runs a plain `def` dependency in its thread pool on every request,
    # which queues requests behind the pool's 40 threads.
    return api_context(request)


def unauthorized(code: str, message: str, *, invalid: bool = True) -> ApiError:
    """A 401 with `WWW-Authenticate: Bearer` (RFC 6750: `error="invalid_token"` for a credential
    that was sent and refused)."""
    challenge = WWW_AUTHENTICATE + (', error="invalid_token"' if invalid else "")
    return ApiError(401, code, message, "authorization", {"WWW-Authenticate": challenge})


def _takes_query_token(request: Request) -> bool:
    route = request.scope.get("route")
    return getattr(route, "path", None) == "/v1/stream"


def _scopes_of(granted: Scope) -> frozenset[Scope]:
    return frozenset(scope for scope in SCOPES if scope_allows(granted, scope))


async def current_caller(request: Request) -> Caller:
    """Who is calling; no `Authorization` header is the anonymous caller.

    May raise: ApiError (401 a malformed, invalid, expired or revoked credential; 429 over its
    rate limit, with `Retry-After`), DatabaseUnavailable.
    """
    header = request.headers.get("authorization")
    if header is None and _takes_query_token(request):
        # Browsers' EventSource cannot send headers: the stream also takes `access_token`.
        token = request.query_params.get("access_token")
        header = None if token is None else f"Bearer {token}"
    if header is None:
        return ANONYMOUS
    context = api_context(request)
    trust = context.trust
    scheme, _, credential = header.strip().partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential or " " in credential:
        raise unauthorized("malformed", "use `Authorization: Bearer <session token or API key>`")
    if credential.startswith(tokens.TOKEN_PREFIX + "."):
        if trust.session_keys is None:
            raise unauthorized("sessions_unavailable", "sign-in sessions are not enabled here")
        try:
            claims = tokens.verify(credential, trust.session_keys, datetime.now(UTC))
        except AuthError as exc:
            raise unauthorized(exc.reason, exc.args[0]) from None
        caller = Caller(kind="session", name=claims.account, user_id=claims.user_id)
        bucket, rate = f"session:{claims.user_id}", trust.settings.rate_per_minute
    elif credential.startswith("xmk_"):
        try:
            row = await trust.api_keys.authenticate(credential)
        except AuthError as exc:
            raise unauthorized(exc.reason, exc.args[0]) from None
        scope: Scope = (
            "admin" if row.scope == "admin" else "link" if row.scope == "link" else "read"
        )
        caller = Caller(kind="api_key", name=row.name, scopes=_scopes_of(scope))
        bucket, rate = key_bucket(row, trust.settings)
    else:
        raise unauthorized("malformed", "not a session token (xms1.…) or an API key (xmk_…)")
    decision = trust.limiter.take(bucket, rate)
    remember_decision(request.scope, decision)
    if not decision.allowed:
        raise rate_limited(rate, decision)
    return caller


def key_bucket(row: ApiKeyRow, settings: AuthSettings) -> tuple[str, int]:
    """The rate-limit bucket of an API key and its limit per minute."""
    return f"key:{row.public_id}", row.rate_per_minute or settings.rate_per_minute


def rate_limited(rate: int, decision: RateDecision) -> ApiError:
    """The 429 of a request its bucket refused, with `Retry-After` and `RateLimit-*`."""
    return ApiError(
        429,
        "rate_limited",
        f"over the limit of {rate} requests per minute: retry in {decision.retry_after} s",
        "authorization",
        decision.headers(),
    )


ContextDep = Annotated[ApiContext, Depends(_context_dependency)]
CallerDep = Annotated[Caller, Depends(current_caller)]


async def enforce_access(request: Request, caller: CallerDep) -> None:
    """Refuse a caller the route's access group does not admit: 401 when a credential is needed
    and none was sent; 403 when a link route is called without a `link` key.

    May raise: ApiError (401, 403).
    """
    route = request.scope.get("route")
    group = access_group(str(getattr(route, "path", request.url.path)))
    settings = api_context(request).trust.settings
    if caller.kind == "anonymous":
        if group_needs_credentials(group, settings):
            raise unauthorized(
                "unauthorized",
                "this endpoint needs `Authorization: Bearer <session token or API key>`",
                invalid=False,
            )
        return
    if group == "link" and not caller.has_scope("link"):
        what = "a sign-in session" if caller.kind == "session" else "this API key's scope"
        raise ApiError(
            403,
            "insufficient_scope",
            f"linking a wallet needs an API key of scope link or admin, not {what}",
            "authorization",
        )


def authorize_user(caller: Caller, user_id: int) -> None:
    """Refuse a caller that may not read `user_id`'s book.

    May raise: ApiError (403).
    """
    if not caller.may_read_user(user_id):
        raise ApiError(403, "forbidden", "this caller may not read that user", "user")
