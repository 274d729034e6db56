"""The full status document, rendered on read from what a pass stored.

A pass stores each user's headline and references: the pass's market, the heads its lines were
read at, its wallets. `complete` turns such rows back into the document a pass used to store:
the same portfolio (`build_portfolios` over the market and the lines at those heads), valued in
full (lines, liquidation prices, limits) by the same engine, rendered by the same
`status_document`. Rows that already hold a full document are returned as they are. Readers
cache the result per `seq` (the API's status reader), so it is computed once per version.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from aggregator.config import LoadedConfig
from aggregator.publish.market import PassMarket, config_digest
from aggregator.publish.portfolios import ObservedLine
from aggregator.publish.render import status_document
from aggregator.publish.value import value_portfolio
from aggregator.publish.venues import read_points, stored_pairs, venue_view
from aggregator.risk.output import portfolio_to_document, result_to_json
from aggregator.store.observed.lines import lines_at_heads
from aggregator.store.observed.observation_reads import existing_heads
from aggregator.store.observed.venue_reads import StoredVenue, venue_document, venues_at_heads
from aggregator.store.published.markets import get_markets
from aggregator.store.published.status_reads import get_status, get_statuses
from aggregator.store.published.statuses import StatusRecord

log = logging.getLogger(__name__)


class _Stored(Protocol):
    @property
    def user_id(self) -> int: ...
    @property
    def document(self) -> dict[str, Any]: ...
    @property
    def inputs(self) -> dict[str, Any]: ...


R = TypeVar("R", bound=_Stored)


def is_headline(inputs: dict[str, Any]) -> bool:
    """True for a row a sharded pass stored (headline + references)."""
    return "market" in inputs and "portfolio" not in inputs


async def _markets(session: AsyncSession, ids: set[int]) -> dict[int, PassMarket]:
    stored = await get_markets(session, sorted(ids))
    return {market_id: PassMarket.from_document(doc) for market_id, doc in stored.items()}


def full_document(
    config: LoadedConfig,
    market: PassMarket,
    user_id: int,
    name: str,
    wallets: Sequence[tuple[str, str]],
    lines: Sequence[ObservedLine],
    venues: Sequence[StoredVenue] = (),
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(document, risk input) of one user valued in full against `market`, with its venue
    lines and `binding`; None when the user cannot be valued (a pass would not have stored
    it)."""
    batch = market.portfolios(config, {user_id: [chain for chain, _ in wallets]}, lines)
    portfolio = batch.portfolios.get(user_id)
    if portfolio is None:
        return None
    risk = result_to_json(value_portfolio(portfolio, {}))
    document = status_document(
        config,
        user_id,
        name,
        wallets,
        market.reads,
        risk,
        lines,
        market.as_of,
        batch.unpriced.get(user_id, ()),
    )
    document.update(venue_view(config, read_points(market.reads), stored_pairs(venues), risk))
    return document, portfolio_to_document(portfolio)


async def complete(session: AsyncSession, config: LoadedConfig, records: Sequence[R]) -> list[R]:
    """`records` with every headline row's full document (and its `inputs.portfolio`, the
    exact `risk evaluate` input) rendered; other rows unchanged. A row whose market or heads
    are gone (pruned) keeps its headline document.

    May raise: DatabaseUnavailable.
    """
    wanted = [r for r in records if is_headline(r.inputs)]
    if not wanted:
        return list(records)
    markets = await _markets(session, {int(r.inputs["market"]) for r in wanted})
    heads = sorted({int(h) for r in wanted for h in (r.inputs.get("heads") or {}).values()})
    stored_heads = await existing_heads(session, heads)
    users = sorted({r.user_id for r in wanted})
    # (user, head) → lines: a replay may hold several versions of one user, read at other heads.
    by_head: dict[tuple[int, int], list[ObservedLine]] = {}
    for line in await lines_at_heads(session, heads, user_ids=users):
        by_head.setdefault((line.user_id, line.head_id), []).append(line)
    venues_by_head: dict[tuple[int, int], list[StoredVenue]] = {}
    for venue in await venues_at_heads(session, heads, user_ids=users):
        venues_by_head.setdefault((venue.user_id, venue.head_id), []).append(venue)
    current = config_digest(config)
    out: list[R] = []
    for record in records:
        market = markets.get(int(record.inputs["market"])) if is_headline(record.inputs) else None
        record_heads = {int(h) for h in (record.inputs.get("heads") or {}).values()}
        if market is None or not record_heads <= stored_heads:
            out.append(record)
            continue
        if market.config != current:
            log.warning(
                "status of user %s was published under another config: rendered with this one",
                record.user_id,
            )
        wallets = [(str(c), str(a)) for c, a in record.inputs.get("wallets") or []]
        by_chain = sorted((record.inputs.get("heads") or {}).items())
        lines = [
            line for _, head in by_chain for line in by_head.get((record.user_id, int(head)), [])
        ]
        venues = [
            venue
            for _, head in by_chain
            for venue in venues_by_head.get((record.user_id, int(head)), [])
        ]
        rendered = full_document(
            config, market, record.user_id, str(record.document.get("user")), wallets, lines, venues
        )
        if rendered is None:
            out.append(record)
            continue
        document, portfolio = rendered
        chains = {
            caip2: {"height": info.get("height"), "hash": info.get("block_hash")}
            for caip2, info in document["chains"].items()
        }
        inputs = {
            **record.inputs,
            "chains": chains,
            "portfolio": portfolio,
            "venues": [{"chain": v.chain, **venue_document(v.account)} for v in venues],
        }
        out.append(replace(record, document=document, inputs=inputs))  # type: ignore[type-var]
    return out


async def published_status(
    session: AsyncSession, config: LoadedConfig, user_id: int
) -> StatusRecord | None:
    """The latest status of a user with its full document, None before its first publish."""
    record = await get_status(session, user_id)
    if record is None:
        return None
    return (await complete(session, config, [record]))[0]


async def published_statuses(
    session: AsyncSession, config: LoadedConfig, user_ids: Sequence[int]
) -> dict[int, StatusRecord]:
    """`published_status` of each of `user_ids` that has one."""
    records = await get_statuses(session, user_ids)
    return {r.user_id: r for r in await complete(session, config, list(records.values()))}
