"""Who may call what: access groups by route, bearer credentials (sign-in session tokens and
operator API keys), per-credential rate limits, and the OpenAPI security declarations.

Every operation belongs to one access group, decided by its path template (`ACCESS`):

- `ops` (/healthz, /readyz, /metrics), `reference` (/v1/assets, /v1/chains, the inline
  /v1/simulate) and `user` (everything else under /v1 that reads or simulates a user's book):
  open or not per `[auth.require]`;
- `link` (a user's wallet nonce and link): always an API key of scope `link` or `admin`;
- `signin` (/v1/auth/*): open — it is how a user gets a session — and rate-limited per client
  address.

`Authorization: Bearer <credential>` is a session token (`xms1.` prefix) or an API key (`xmk_`
prefix). A credential that is sent is always checked, on open routes too: a missing one where
one is needed, or an invalid, expired or revoked one, is a 401 with `WWW-Authenticate: Bearer`.

API keys are looked up by their public id and cached for `KEY_CACHE_SECONDS` (2 s): a revoked
key is refused at most that long after `xmargin keys revoke`. The cache keeps the stored row
(hash included), never the key; the secret is compared with `hmac.compare_digest` on every
request, against a dummy hash for an unknown id, so unknown and wrong keys cost the same.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aggregator.auth.api_keys import key_matches, public_id_of
from aggregator.auth.errors import AuthError
from aggregator.auth.ratelimit import RateDecision, RateLimiter
from aggregator.auth.signing_key import SigningKey
from aggregator.auth.tokens import SessionKeyring
from aggregator.config_tables import AuthSettings
from aggregator.store.accounts import auth as auth_repo
from aggregator.store.accounts.auth import ApiKeyRow
from aggregator.store.database import Database

AccessGroup = Literal["ops", "reference", "user", "link", "signin", "public"]

KEY_CACHE_SECONDS = 2.0
KEY_CACHE_MAX = 10_000
RATE_LIMIT_SCOPE_KEY = "xmargin.rate_limit"
WWW_AUTHENTICATE = 'Bearer realm="xmargin"'
BEARER_SCHEME = "bearer"

OPS_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
REFERENCE_PATHS = frozenset({"/v1/assets", "/v1/chains", "/v1/simulate"})
LINK_PATHS = frozenset({"/v1/users/{user}/wallets/nonce", "/v1/users/{user}/wallets"})
SIGNIN_PATHS = frozenset({"/v1/auth/nonce", "/v1/auth/siwe", "/v1/auth/solana"})


def access_group(path: str) -> AccessGroup:
    """The access group of the route with path template `path`."""
    if path in OPS_PATHS:
        return "ops"
    if path in REFERENCE_PATHS:
        return "reference"
    if path in LINK_PATHS:
        return "link"
    if path in SIGNIN_PATHS:
        return "signin"
    if path.startswith("/v1/"):
        return "user"
    return "public"


def group_needs_credentials(group: AccessGroup, settings: AuthSettings) -> bool:
    """True iff an anonymous caller is refused (401) on routes of `group`."""
    if group == "link":
        return True
    if group in ("ops", "reference", "user"):
        return bool(getattr(settings.require, group) == "auth")
    return False


class ApiKeyCache:
    """API key rows by public id, read from the database at most every `ttl_seconds`."""

    def __init__(
        self,
        database: Database,
        ttl_seconds: float = KEY_CACHE_SECONDS,
        max_entries: int = KEY_CACHE_MAX,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._database = database
        self._ttl = ttl_seconds
        self._max = max_entries
        self._clock = clock
        self._rows: dict[str, tuple[ApiKeyRow | None, float]] = {}
        self._loading: dict[str, asyncio.Future[ApiKeyRow | None]] = {}

    async def _row(self, public_id: str) -> ApiKeyRow | None:
        now = self._clock()
        hit = self._rows.get(public_id)
        if hit is not None and now - hit[1] < self._ttl:
            return hit[0]
        # One lookup per key at a time: when an entry expires under load, the requests that
        # find it expired wait for the same read instead of each querying the database.
        return await asyncio.shield(self._loading_of(public_id, now))

    def _loading_of(self, public_id: str, now: float) -> asyncio.Future[ApiKeyRow | None]:
        pending = self._loading.get(public_id)
        if pending is None:
            pending = asyncio.ensure_future(self._load(public_id, now))
            self._loading[public_id] = pending
            pending.add_done_callback(lambda _: self._loading.pop(public_id, None))
        return pending

    async def _load(self, public_id: str, now: float) -> ApiKeyRow | None:
        async with self._database.session() as session:
            row = await auth_repo.find_api_key(session, public_id)
        if len(self._rows) >= self._max:
            self._rows.clear()
        self._rows[public_id] = (row, now)
        return row

    def fresh_row(self, public_id: str) -> tuple[bool, ApiKeyRow | None]:
        """(True, the row) when the cache holds a fresh lookup of `public_id` (the row may be
        None: no such key); (False, None) when only the database can say."""
        hit = self._rows.get(public_id)
        if hit is None or self._clock() - hit[1] >= self._ttl:
            return False, None
        return True, hit[0]

    def authenticate_cached(self, presented: str) -> ApiKeyRow | None:
        """`authenticate` without waiting: the active key `presented` is, when its row is
        cached and fresh and the key matches; None in every other case (then `authenticate`
        decides, with the database)."""
        try:
            public_id = public_id_of(presented)
        except AuthError:
            return None
        fresh, row = self.fresh_row(public_id)
        if not fresh or row is None:
            return None
        now = self._clock()
        if now - self._rows[public_id][1] > self._ttl / 2:
            # Read it again in the background before it expires, so that a key in steady use
            # never has all its requests wait on the database at once.
            self._loading_of(public_id, now)
        if not key_matches(presented, row.key_hash) or not row.active:
            return None
        return row

    async def authenticate(self, presented: str) -> ApiKeyRow:
        """The active key `presented` is.

        May raise: AuthError (field `authorization`: `malformed`, or `invalid_key` for an
        unknown, wrong or revoked key — told apart by nobody), DatabaseUnavailable.
        """
        row = await self._row(public_id_of(presented))
        matches = key_matches(presented, None if row is None else row.key_hash)
        if row is None or not matches or not row.active:
            raise AuthError("authorization", "invalid_key", "unknown or revoked API key")
        return row


@dataclass
class Trust:
    """The trust pieces of the API, built once at start-up: the session keyring (None: no
    sign-in), the attestation signing key (None: no attestations), the API key lookup and the
    rate limiter."""

    settings: AuthSettings
    api_keys: ApiKeyCache
    session_keys: SessionKeyring | None = None
    signing_key: SigningKey | None = field(default=None, repr=False)
    limiter: RateLimiter = field(default_factory=RateLimiter)


def remember_decision(scope: Scope, decision: RateDecision) -> None:
    """Keep this request's rate decision: `RateLimitHeaders` adds its headers to the answer."""
    scope[RATE_LIMIT_SCOPE_KEY] = decision


class RateLimitHeaders:
    """Adds `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (and `Retry-After` on a
    refusal) to every response of a request that took from a bucket."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                decision = scope.get(RATE_LIMIT_SCOPE_KEY)
                if isinstance(decision, RateDecision):
                    headers = MutableHeaders(scope=message)
                    for name, value in decision.headers().items():
                        if name not in headers:
                            headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _error_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
    }


def declare_security(schema: dict[str, Any], settings: AuthSettings) -> dict[str, Any]:
    """Add the bearer security scheme to an OpenAPI document, and to each operation its
    requirement (by access group) and its 401 / 403 / 429 answers."""
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})[BEARER_SCHEME] = {
        "type": "http",
        "scheme": "bearer",
        "description": (
            "`Authorization: Bearer <credential>`: a sign-in session token (`xms1.…`, from "
            "POST /v1/auth/siwe or /v1/auth/solana; reads its own user only) or an operator API "
            "key (`xmk_…`, `xmargin keys create`; scope read ⊂ link ⊂ admin). Rate-limited per "
            "key or session user: `RateLimit-*` headers, 429 with `Retry-After`."
        ),
    }
    for path, operations in schema.get("paths", {}).items():
        group = access_group(path)
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            responses = operation.setdefault("responses", {})
            if group == "signin":
                operation["security"] = []
                responses.setdefault("429", _error_response("Too many requests from this address"))
                continue
            if group == "public":
                continue
            required = group_needs_credentials(group, settings)
            operation["security"] = [{BEARER_SCHEME: []}] if required else [{}, {BEARER_SCHEME: []}]
            responses.setdefault(
                "401",
                _error_response(
                    "No credential where one is needed, or an invalid, expired or revoked one"
                ),
            )
            responses.setdefault(
                "403", _error_response("The credential's scope or user does not allow this")
            )
            responses.setdefault("429", _error_response("Over the credential's rate limit"))
    return schema
