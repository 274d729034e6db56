"""What-if: a status for the stored book (or an inline one) plus proposed changes.

The same pure engine as publish and `xmargin risk evaluate`: the user's published risk input
(`margin_status.inputs.portfolio`) is the book; `aggregator.risk.whatif` applies the changes to it;
`evaluate` values before and after. The user's venue accounts (read with the book) are valued by
their venues' own rules before and after the same changes (`aggregator.venues.whatif`), with
`binding` on both sides. Nothing is written.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

import anyio
from fastapi import APIRouter
from starlette.responses import Response

from aggregator.api.access.deps import CallerDep, ContextDep, authorize_user
from aggregator.api.errors import ApiError
from aggregator.api.reads.views import render_status
from aggregator.api.responses import Json
from aggregator.api.routers.margin import ERRORS, UserParam
from aggregator.api.schemas import (
    Change as ChangeIn,
)
from aggregator.api.schemas import (
    InlineSimulateRequest,
    SimulateRequest,
    SimulateResponse,
)
from aggregator.margin import RiskParams, evaluate
from aggregator.publish.documents import published_status
from aggregator.publish.portfolios import risk_params
from aggregator.publish.venues import (
    document_points,
    stable_assets,
    venue_view,
    venue_view_of_none,
)
from aggregator.risk.document import PortfolioError, parse_portfolio
from aggregator.risk.output import result_to_json
from aggregator.risk.whatif import Change, WhatIfError, apply_changes
from aggregator.store.observed.venue_reads import venue_from_document
from aggregator.venues.whatif import apply_venue_changes

router = APIRouter(tags=["what-if"])

MAX_MAGNITUDE = Decimal("1e30")
MAX_LINES = 2000


def _decimal(value: str | float | int | None, field: str) -> Decimal | None:
    """A request number as an exact Decimal, bounded (|x| < 1e30, finite).

    May raise: ApiError (422) naming `field`.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise ApiError(422, "invalid", "not a decimal number", field)
    if isinstance(value, float) and not math.isfinite(value):
        raise ApiError(422, "invalid", "not a finite decimal number", field)
    text = str(value).strip()
    if len(text) > 100:
        raise ApiError(422, "invalid", "at most 100 characters", field)
    try:
        number = Decimal(text)
    except (InvalidOperation, ValueError):
        raise ApiError(422, "invalid", "not a decimal number", field) from None
    if not number.is_finite():
        raise ApiError(422, "invalid", "not a finite decimal number", field)
    if abs(number) >= MAX_MAGNITUDE:
        raise ApiError(422, "invalid", "out of range (|x| < 1e30)", field)
    return number


def _changes(changes: list[ChangeIn], limit: int) -> list[Change]:
    if len(changes) > limit:
        raise ApiError(422, "too_many", f"{len(changes)} changes: at most {limit}", "changes")
    out = []
    for i, c in enumerate(changes):
        path = f"changes[{i}]"
        out.append(
            Change(
                action=c.action,
                chain=c.chain,
                venue=c.venue,
                asset=c.asset,
                amount=_decimal(c.amount, f"{path}.amount"),
                base=_decimal(c.base, f"{path}.base"),
                entry_price=_decimal(c.entry_price, f"{path}.entry_price"),
                imr=_decimal(c.imr, f"{path}.imr"),
                mmr=_decimal(c.mmr, f"{path}.mmr"),
                imf=_decimal(c.imf, f"{path}.imf"),
                change=_decimal(c.change, f"{path}.change"),
            )
        )
    return out


VenueView = Callable[[dict[str, Any], list[Change]], dict[str, Any]]


def _no_venues(risk: dict[str, Any], changes: list[Change]) -> dict[str, Any]:
    """An inline book has no venue accounts: the unified view is all that can bind."""
    return venue_view_of_none(risk)


def _evaluate_both(
    book: dict[str, Any],
    changes: list[Change],
    prefix: str,
    extras: dict[str, Any],
    defaults: RiskParams | None = None,
    venues: VenueView = _no_venues,
) -> dict[str, Any]:
    """Before and after, each a full status view with its venue view (`venues(risk,
    changes)`: the venue lines and binding, with those changes applied). Runs in a worker
    thread."""
    try:
        before_portfolio = parse_portfolio(book, defaults)
    except PortfolioError as exc:
        raise ApiError(422, "invalid", exc.message, f"{prefix}{exc.field}") from None
    try:
        changed = apply_changes(book, changes)
    except WhatIfError as exc:
        raise ApiError(422, "invalid", exc.message, exc.field) from None
    try:
        after_portfolio = parse_portfolio(changed, defaults)
    except PortfolioError as exc:
        raise ApiError(422, "invalid", f"after the changes: {exc.message}", "changes") from None
    before = result_to_json(evaluate(before_portfolio))
    after = result_to_json(evaluate(after_portfolio))
    return {
        "before": render_status({**extras, **before, **venues(before, [])}, book),
        "after": render_status({**extras, **after, **venues(after, changes)}, changed),
        "max_borrow_after": after["max_borrow"],
        "max_withdraw_after": after["max_withdraw"],
    }


def _bounded_book(portfolio: dict[str, Any], prefix: str) -> None:
    for key in ("holdings", "perps"):
        lines = portfolio.get(key)
        if isinstance(lines, list) and len(lines) > MAX_LINES:
            raise ApiError(422, "too_many", f"at most {MAX_LINES} {key}", f"{prefix}{key}")


@router.post(
    "/v1/users/{user}/simulate",
    response_model=SimulateResponse,
    responses=ERRORS,
    summary="What-if on a user's published book: before and after",
)
async def simulate_user(
    user: UserParam, body: SimulateRequest, context: ContextDep, caller: CallerDep
) -> Response:
    changes = _changes(body.changes, context.config.api.max_simulate_changes)
    row = await context.reader.user(user)
    authorize_user(caller, row.id)
    async with context.database.session() as session:
        record = await published_status(session, context.config, row.id)
    book = None if record is None else record.inputs.get("portfolio")
    if record is None or not isinstance(book, dict):
        raise ApiError(404, "no_status", f"no status has been published for {row.name!r}", "user")
    extras = {
        key: record.document.get(key)
        for key in ("user", "user_id", "accounts", "chains", "unpriced_assets")
    }
    config = context.config
    points = document_points(record.document)
    stored = [(str(v["chain"]), venue_from_document(v)) for v in record.inputs.get("venues") or []]
    caip2 = {key: chain.caip2 for key, chain in config.chains.items()}

    def venues(risk: dict[str, Any], applied: list[Change]) -> dict[str, Any]:
        moved = apply_venue_changes(stored, applied, stable_assets(config), caip2)
        return venue_view(config, points, moved, risk)

    result = await anyio.to_thread.run_sync(_evaluate_both, book, changes, "", extras, None, venues)
    return Json(result, headers={"Cache-Control": "no-store"})


@router.post(
    "/v1/simulate",
    response_model=SimulateResponse,
    responses={code: ERRORS[code] for code in (400, 413, 422)},
    summary="What-if on a portfolio given inline (the `risk evaluate` input)",
)
async def simulate_inline(body: InlineSimulateRequest, context: ContextDep) -> Response:
    changes = _changes(body.changes, context.config.api.max_simulate_changes)
    _bounded_book(body.portfolio, "portfolio.")
    book = dict(body.portfolio)
    result = await anyio.to_thread.run_sync(
        _evaluate_both, book, changes, "portfolio.", {}, risk_params(context.config)
    )
    return Json(result, headers={"Cache-Control": "no-store"})
