"""The venue view in a status (design §7a): each venue account's native health beside the
unified status, and which of them binds first.

A pass puts each user's venue lines (metric, health, status; no liquidation prices) in the
stored headline, so the row and `v_user_venues` carry them; the full document rendered on read
adds each venue's liquidation prices and liquidation shock, and `binding`: the view (unified or a
venue) nearest to liquidation, with the uniform price shock that would trigger it. The headline
`status` stays the unified one. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal, localcontext
from typing import Any

from aggregator.addresses import caip10
from aggregator.config import LoadedConfig
from aggregator.publish.market import ChainRead
from aggregator.publish.render import iso_text
from aggregator.risk.output import decimal_text
from aggregator.store.observed.venue_reads import StoredVenue
from aggregator.valuation.model import PRECISION
from aggregator.venues.assess import ReadPoint, VenueLine, assess, binding
from chains.base import VenueAccount

# Why a number is null (design §5: no sentinels), as codes the API's `Reason` names:
NO_DEBT = "no_debt"  # nothing is required: the venue has no metric
UNREACHABLE = "unreachable"  # no (positive) price or uniform move liquidates it
UNUSABLE = "parameters_unusable"  # the venue's parameters could not be read or are out of range


def stable_assets(config: LoadedConfig) -> frozenset[str]:
    return frozenset(symbol for symbol, asset in config.assets.items() if asset.stable)


def read_points(reads: Mapping[str, ChainRead]) -> dict[str, ReadPoint]:
    """Chain key → where a pass read it."""
    return {
        key: ReadPoint(
            read.height, read.block_hash, iso_text(datetime.fromtimestamp(read.timestamp, UTC))
        )
        for key, read in reads.items()
    }


def venue_lines(
    config: LoadedConfig,
    points: Mapping[str, ReadPoint],
    venues: Iterable[tuple[str, VenueAccount]],
    *,
    detail: bool,
) -> list[VenueLine]:
    """The venue line of each (chain key, venue account) whose chain is configured and has a
    read point in `points`."""
    stable = stable_assets(config)
    warning_at = config.risk.warning_health_factor
    out: list[VenueLine] = []
    with localcontext() as ctx:
        ctx.prec = PRECISION
        for chain_key, account in venues:
            chain = config.chains.get(chain_key)
            point = points.get(chain_key)
            if chain is None or point is None:
                continue
            out.append(
                assess(
                    account,
                    chain.caip2,
                    caip10(chain.caip2, account.account),
                    point,
                    stable=stable,
                    warning_at=warning_at,
                    detail=detail,
                )
            )
    return out


def stored_pairs(venues: Iterable[StoredVenue]) -> list[tuple[str, VenueAccount]]:
    return [(v.chain, v.account) for v in venues]


def _text(value: Decimal | None) -> str | None:
    return None if value is None else decimal_text(value)


def venue_json(line: VenueLine, *, detail: bool) -> dict[str, Any]:
    """One venue line as the status document writes it (decimal strings; `null` with a
    `*_reason` beside it where a number does not exist)."""
    out: dict[str, Any] = {
        "venue": line.venue,
        "rules": line.rules,
        "chain": line.chain,
        "account": line.account,
        "subaccount": line.subaccount,
        "metric": line.metric,
        "units": line.units,
        "value": _text(line.value),
        "value_reason": None if line.value is not None else UNUSABLE if line.problem else NO_DEBT,
        "status": line.status,
        "collateral_usd": _text(line.collateral),
        "requirement_usd": _text(line.requirement),
        "health_usd": None
        if line.collateral is None or line.requirement is None
        else decimal_text(line.collateral - line.requirement),
        "problem": line.problem,
        "read_point": {
            "height": line.read_point.height,
            "block_hash": line.read_point.block_hash,
            "block_time": line.read_point.block_time,
        },
    }
    if detail:
        out["prices"] = {a: decimal_text(p) for a, p in line.prices.items()}
        out["liquidation_prices"] = {a: _text(p) for a, p in line.liquidation_prices.items()}
        out["liquidation_shock"] = _text(line.liquidation_shock)
        out["liquidation_shock_reason"] = (
            None
            if line.liquidation_shock is not None
            else UNUSABLE
            if line.problem
            else UNREACHABLE
        )
        out["extra"] = dict(line.extra)
        out["reported"] = dict(line.reported)
    return out


def binding_json(
    unified_status: str, unified_shock: str | None, lines: Sequence[VenueLine]
) -> tuple[dict[str, Any] | None, str | None]:
    """(`binding`, `binding_reason`) of a full document: the view nearest to liquidation."""
    shock = None if unified_shock is None else Decimal(unified_shock)
    chosen = binding(unified_status, shock, lines)
    if chosen is None:
        return None, UNREACHABLE
    return {
        "view": chosen.view,
        "venue": chosen.venue,
        "chain": chosen.chain,
        "account": chosen.account,
        "subaccount": chosen.subaccount,
        "status": chosen.status,
        "liquidation_shock": decimal_text(chosen.liquidation_shock),
    }, None


def document_points(document: Mapping[str, Any]) -> dict[str, ReadPoint]:
    """Chain key → read point, from a full status document's `chains`."""
    out: dict[str, ReadPoint] = {}
    for info in (document.get("chains") or {}).values():
        if info.get("height") is None or info.get("chain") is None:
            continue
        out[str(info["chain"])] = ReadPoint(
            int(info["height"]), str(info.get("block_hash")), str(info.get("block_time"))
        )
    return out


def venue_view(
    config: LoadedConfig,
    points: Mapping[str, ReadPoint],
    venues: Sequence[tuple[str, VenueAccount]],
    risk: Mapping[str, Any],
) -> dict[str, Any]:
    """`venues`, `binding` and `binding_reason` of a full document whose unified result is
    `risk` (`result_to_json`)."""
    lines = venue_lines(config, points, venues, detail=True)
    chosen, reason = binding_json(str(risk["status"]), risk.get("liquidation_shock"), lines)
    return {
        "venues": [venue_json(line, detail=True) for line in lines],
        "binding": chosen,
        "binding_reason": reason,
    }


def venue_view_of_none(risk: Mapping[str, Any]) -> dict[str, Any]:
    """`venue_view` of a book without venue accounts (an inline what-if)."""
    chosen, reason = binding_json(str(risk["status"]), risk.get("liquidation_shock"), [])
    return {"venues": [], "binding": chosen, "binding_reason": reason}
