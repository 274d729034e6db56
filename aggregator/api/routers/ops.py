"""Operations: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from aggregator.api.access.deps import ContextDep
from aggregator.api.responses import Json
from aggregator.api.schemas import Health, Readiness
from aggregator.store.observed.freshness import chain_freshness

router = APIRouter(tags=["ops"])


@router.get("/healthz", response_model=Health, summary="The process is up")
async def healthz() -> Response:
    return Json({"status": "ok"}, headers={"Cache-Control": "no-store"})


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Not ready: `reasons` says why"}},
    summary="The database answers and every chain's data is fresh",
)
async def readyz(context: ContextDep) -> Response:
    reasons: list[str] = []
    stale: list[str] = []
    database_ok = True
    try:
        async with context.database.session() as session:
            freshness = await chain_freshness(session)
    except Exception as exc:  # any failure at all means not ready
        database_ok = False
        freshness = {}
        reasons.append(f"database unreachable: {str(exc).splitlines()[0][:200]}")
    if database_ok:
        now = datetime.now(UTC)
        for key, chain in context.config.chains.items():
            row = freshness.get(key)
            if row is None or row.block_time is None:
                stale.append(chain.caip2)
                reasons.append(f"{key} ({chain.caip2}): never read")
                continue
            age = (now - row.block_time).total_seconds()
            if age > chain.max_staleness_seconds:
                stale.append(chain.caip2)
                reasons.append(
                    f"{key} ({chain.caip2}): data {age:.0f} s old, "
                    f"over max_staleness_seconds {chain.max_staleness_seconds}"
                )
    ready = not reasons
    body = {"ready": ready, "database": database_ok, "stale_chains": stale, "reasons": reasons}
    return Json(body, status_code=200 if ready else 503, headers={"Cache-Control": "no-store"})


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(context: ContextDep) -> Response:
    body = generate_latest(context.metrics.registry)
    for registry in context.extra_registries:
        body += generate_latest(registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
