"""The hot read served before the framework: `GET /v1/users/{user}/margin` of a status already
rendered in this process's cache, for an anonymous caller where user reads are open, or for an
operator API key whose row is cached and fresh (the same key check, scope and rate-limit bucket
as `deps.current_caller`).

The answer is byte for byte what the full route sends (body, `ETag`, `Cache-Control`,
`If-None-Match` → 304, `RateLimit-*`, a 429 past the limit), and it is counted under the same
route in the metrics. Anything else — a session token, a key not cached, an `Origin` (CORS), an
anonymous read where reads need a key, a cache miss — goes through FastAPI as usual. Measured in
bench/api_load.py: the framework's routing and dependency resolution cost several times the
work of the answer itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

from starlette.types import ASGIApp, Receive, Scope, Send

from aggregator.api.access.deps import key_bucket, rate_limited
from aggregator.api.access.security import group_needs_credentials
from aggregator.api.context import ApiContext
from aggregator.api.errors import error_body
from aggregator.api.responses import dumps
from aggregator.auth.ratelimit import RateDecision

ROUTE_PATH = "/v1/users/{user}/margin"
_PREFIX, _SUFFIX = "/v1/users/", "/margin"
_KEY_PREFIX = b"bearer xmk_"


@dataclass(frozen=True)
class RouteLabel:
    """What the metrics middleware reads of `scope["route"]`: the route's path template."""

    path: str


class FastStatusReads:
    def __init__(self, app: ASGIApp, context: ApiContext) -> None:
        self.app = app
        self.context = context
        self.route = RouteLabel(ROUTE_PATH)
        self.cache_control = b"private, max-age=0, must-revalidate"
        origins = context.config.api.cors_origins
        # As the CORS layer marks every answer when it allows listed origins only.
        self.vary = bool(origins) and "*" not in origins

    def _keyed(self, authorization: bytes) -> tuple[int, RateDecision] | None:
        """The rate decision of a cached, valid API key (its request is taken from its bucket);
        None when the full path must decide (no key, not cached, not valid)."""
        if authorization[: len(_KEY_PREFIX)].lower() != _KEY_PREFIX:
            return None
        credential = authorization[len("bearer ") :].strip().decode("ascii", "replace")
        trust = self.context.trust
        row = trust.api_keys.authenticate_cached(credential)
        if row is None:
            return None
        bucket, rate = key_bucket(row, trust.settings)
        return rate, trust.limiter.take(bucket, rate)

    def _user_ref(self, scope: Scope) -> str | None:
        if scope["type"] != "http" or scope["method"] != "GET":
            return None
        path: str = scope["path"]
        if not (path.startswith(_PREFIX) and path.endswith(_SUFFIX)):
            return None
        ref = path[len(_PREFIX) : -len(_SUFFIX)]
        if not ref or "/" in ref:
            return None
        return unquote(ref)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ref = self._user_ref(scope)
        if ref is None:
            await self.app(scope, receive, send)
            return
        if_none_match: bytes | None = None
        authorization: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"origin":
                await self.app(scope, receive, send)
                return
            if name == b"if-none-match":
                if_none_match = value
            elif name == b"authorization":
                authorization = value
        rendered = self.context.reader.cached_status_of(ref)
        if rendered is None:
            await self.app(scope, receive, send)
            return
        rate_headers: list[tuple[bytes, bytes]] = []
        if authorization is None:
            if group_needs_credentials("user", self.context.config.auth):
                await self.app(scope, receive, send)  # the 401 comes from the full path
                return
        else:
            decision = self._keyed(authorization)
            if decision is None:
                await self.app(scope, receive, send)
                return
            rate, allowed = decision
            rate_headers = [(k.lower().encode(), v.encode()) for k, v in allowed.headers().items()]
            if not allowed.allowed:
                scope["route"] = self.route
                error = rate_limited(rate, allowed)
                body = dumps(error_body(error.code, error.message, error.field))
                await send(
                    {
                        "type": "http.response.start",
                        "status": 429,
                        "headers": [
                            (b"content-length", str(len(body)).encode()),
                            (b"content-type", b"application/json"),
                            *rate_headers,
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        scope["route"] = self.route  # the metrics count it under its route
        etag = rendered.etag.encode()
        headers = [(b"etag", etag), (b"cache-control", self.cache_control), *rate_headers]
        if self.vary:
            headers.append((b"vary", b"Origin"))
        if if_none_match is not None and etag in {t.strip() for t in if_none_match.split(b",")}:
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        headers += [
            (b"content-length", str(len(rendered.body)).encode()),
            (b"content-type", b"application/json"),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": rendered.body})
