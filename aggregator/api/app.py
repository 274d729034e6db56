"""The app factory: one FastAPI app over an `ApiContext`, nothing created at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi

from aggregator.api.access.deps import enforce_access
from aggregator.api.access.limits import BodyLimitMiddleware
from aggregator.api.access.security import RateLimitHeaders, declare_security
from aggregator.api.context import ApiContext
from aggregator.api.errors import install_error_handlers
from aggregator.api.metrics import MetricsMiddleware
from aggregator.api.reads.fast_reads import FastStatusReads
from aggregator.api.routers import (
    attestation,
    auth,
    docs,
    history,
    margin,
    ops,
    page,
    reference,
    simulate,
    stream,
    wallets,
)

DESCRIPTION = """
Cross-chain margin status for DeFi front ends.

Conventions: money, prices and ratios are **decimal strings** in human units; USD fields end
in `_usd`; chains are **CAIP-2** ids (`eip155:42161`) and accounts **CAIP-10** ids
(`eip155:42161:0xAbC…`); times are RFC 3339. Token amounts also come as `amount_raw` (base
units) with `decimals`. A number that does not exist is `null`, and a sibling `*_reason` says
why (`no_debt`, `no_exposure`, `price_invalid`, `stale`, `unreachable`) — never `-1` or
`uint max`.

Every status has a per-user `seq`: it is the `ETag` (send `If-None-Match` for a 304), and the
event id of the live stream (reconnect with `Last-Event-ID` to get exactly what you missed).
Errors are `{"error": {"code", "message", "field"}}` with `field` naming the offending input.

Trust: send `Authorization: Bearer <credential>`, a sign-in session token (`xms1.…`, from
`POST /v1/auth/siwe` or `/v1/auth/solana`: reads its own user only) or an operator API key
(`xmk_…`; scope `read` ⊂ `link` ⊂ `admin`). Which operations need one is the server's
`[auth.require]` config (each operation's `security` says so: `{}` listed means anonymous calls
are accepted). Wallets are linked only with the wallet's signed proof, by a `link` key.
Authenticated answers carry `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset`; over
the limit, 429 with `Retry-After`. `GET /v1/users/{user}/attestation` signs the status as
EIP-712 typed data for `MarginAttestationVerifier`.
"""


def create_app(context: ApiContext) -> FastAPI:
    """The HTTP API over `context`. Its lifespan starts and stops the stream hub."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await context.hub.start()
        try:
            yield
        finally:
            await context.hub.stop()

    app = FastAPI(
        title="xmargin",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served by routers/docs.py from local assets
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.context = context
    install_error_handlers(app)
    guarded = [Depends(enforce_access)]
    for module in (margin, history, reference, simulate, stream, ops, wallets, attestation):
        app.include_router(module.router, dependencies=guarded)
    app.include_router(auth.router)  # sign-in: no credential, limited per client address
    app.include_router(page.router)
    app.include_router(docs.router)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = declare_security(schema, context.config.auth)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_middleware(RateLimitHeaders)
    origins = context.config.api.cors_origins
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "If-None-Match", "Last-Event-ID"],
            expose_headers=[
                "ETag",
                "Retry-After",
                "RateLimit-Limit",
                "RateLimit-Remaining",
                "RateLimit-Reset",
            ],
            max_age=600,
        )
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(FastStatusReads, context=context)
    app.add_middleware(MetricsMiddleware, metrics=context.metrics)
    return app
