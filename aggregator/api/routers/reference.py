"""Reference reads: assets with their risk parameters, chains with their freshness."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from fastapi import APIRouter
from starlette.responses import Response

from aggregator.api.access.deps import ContextDep
from aggregator.api.reads.views import iso
from aggregator.api.responses import Json
from aggregator.api.routers.margin import ERRORS
from aggregator.api.schemas import AssetList, ChainList
from aggregator.store.observed.freshness import chain_freshness

router = APIRouter(tags=["reference"])


def _text(value: Decimal) -> str:
    out = format(value, "f")
    if "." in out:
        out = out.rstrip("0").rstrip(".")
    return "0" if out in ("-0", "") else out


@router.get("/v1/assets", response_model=AssetList, summary="Assets and their risk parameters")
async def assets(context: ContextDep) -> Response:
    config = context.config
    items = []
    for symbol, asset in sorted(config.assets.items()):
        price = asset.price
        items.append(
            {
                "symbol": symbol,
                "family": asset.family,
                "stable": asset.stable,
                "volatility": _text(asset.volatility),
                "init_weight": _text(asset.init_weight),
                "maint_weight": _text(asset.maint_weight),
                "init_liability_weight": _text(asset.init_liability_weight),
                "maint_liability_weight": _text(asset.maint_liability_weight),
                "imf": _text(asset.imf),
                "tiers": [
                    {
                        "start": _text(start),
                        "end": None if end is None else _text(end),
                        "ratio": _text(ratio),
                    }
                    for start, end, ratio in asset.tiers
                ],
                "max_price_age_seconds": asset.max_price_age_seconds,
                "price_source": None
                if price is None or price.chain not in config.chains
                else {
                    "kind": price.kind,
                    "chain": config.chains[price.chain].caip2,
                    "address": price.address,
                    "feed_id": price.feed_id,
                },
                "deployments": [
                    {
                        "chain": config.chains[chain].caip2,
                        "address": d.address,
                        "decimals": d.decimals,
                        "token_program": d.token_program,
                    }
                    for chain, d in sorted(asset.deployments.items())
                    if chain in config.chains
                ],
            }
        )
    max_age = config.api.cache_max_age_seconds
    return Json({"items": items}, headers={"Cache-Control": f"public, max-age={max_age}"})


@router.get(
    "/v1/chains",
    response_model=ChainList,
    responses=ERRORS,
    summary="Each chain's newest read point, its age, and its last poll",
)
async def chains(context: ContextDep) -> Response:
    config = context.config
    async with context.database.session() as session:
        freshness = await chain_freshness(session)
    now = datetime.now(UTC)
    items = []
    for key, chain in config.chains.items():
        row = freshness.get(key)
        block_time = row.block_time if row else None
        age = None if block_time is None else (now - block_time).total_seconds()
        items.append(
            {
                "chain": chain.caip2,
                "key": key,
                "family": chain.family,
                "finality": chain.finality,
                "height": row.height if row else None,
                "block_hash": row.block_hash if row else None,
                "block_time": None if block_time is None else iso(block_time),
                "age_seconds": None if age is None else _text(Decimal(str(round(age, 3)))),
                "max_staleness_seconds": chain.max_staleness_seconds,
                "stale": age is None or age > chain.max_staleness_seconds,
                "failures_since_head": row.failures_since_head if row else 0,
                "last_poll": {
                    "at": None
                    if row is None or row.last_poll_at is None
                    else iso(row.last_poll_at),
                    "ok": None if row is None else row.last_poll_ok,
                    "error": None if row is None else row.last_poll_error,
                    "duration_ms": None if row is None else row.last_poll_duration_ms,
                    "endpoint": None if row is None else row.last_poll_endpoint,
                    "height": None if row is None else row.last_poll_height,
                },
            }
        )
    max_age = config.api.cache_max_age_seconds
    return Json({"items": items}, headers={"Cache-Control": f"public, max-age={max_age}"})
