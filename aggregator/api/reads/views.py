"""The API's view of a margin status: the published document, renamed to the API's
conventions (design §7) and with every `null` explained.

Pure functions over plain dicts: the same rendering serves a published status, a history
entry, a stream event and a what-if result. Money and ratios stay the decimal strings the risk
engine wrote; USD fields end in `_usd`; chains are CAIP-2 and accounts CAIP-10 ids; times RFC
3339. A number that does not exist is `null` with a sibling `*_reason`:

- `no_debt`: nothing is owed, so there is no health factor and no liquidation point;
- `no_exposure`: the account holds none of the asset, or no risky asset at all;
- `price_invalid`: the asset's oracle price failed a check (age, confidence, feed);
- `stale`: every line of the asset lives on a chain whose data is too old;
- `unreachable`: no price of the asset (or no uniform move) brings maintenance health to 0.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

REASONS = ("no_debt", "no_exposure", "price_invalid", "stale", "unreachable")


def iso(moment: datetime) -> str:
    """RFC 3339 in UTC with a `Z`."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _instant(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _age_seconds(as_of: datetime | None, moment: datetime | None) -> str | None:
    if as_of is None or moment is None:
        return None
    return _plain(Decimal(str((as_of - moment).total_seconds())))


def _plain(value: Decimal) -> str:
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _is_zero(text: Any) -> bool:
    try:
        return Decimal(str(text)) == 0
    except (InvalidOperation, ValueError):
        return False


def _sides(value: Any) -> dict[str, str]:
    value = value if isinstance(value, dict) else {}
    return {"init": str(value.get("init", "0")), "maint": str(value.get("maint", "0"))}


def _line(line: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": line.get("kind"),
        "index": line.get("index"),
        "chain": line.get("chain"),
        "venue": line.get("venue"),
        "asset": line.get("asset"),
        "amount": line.get("amount"),
        "price_usd": line.get("price"),
        "price_valid": line.get("price_valid"),
        "value_usd": line.get("value"),
        "price_used_usd": line.get("price_used"),
        "buffer": line.get("buffer"),
        "weight": _sides(line.get("weight")),
        "collateral_usd": _sides(line.get("collateral")),
        "requirement_usd": _sides(line.get("requirement")),
        "notional_usd": line.get("notional"),
        "pnl_usd": line.get("pnl"),
    }


def _asset_lines(document: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for line in document.get("lines") or []:
        grouped.setdefault(str(line.get("asset")), []).append(line)
    return grouped


def liquidation_reason(document: dict[str, Any], asset: str, lines: list[dict[str, Any]]) -> str:
    """Why `asset` has no liquidation price in `document` (one of REASONS)."""
    if asset in (document.get("invalid_prices") or {}):
        return "price_invalid"
    if not lines or all(_is_zero(line.get("amount")) for line in lines):
        return "no_exposure"
    stale = set(document.get("stale_chains") or [])
    if stale and all(line.get("chain") in stale for line in lines):
        return "stale"
    if _is_zero(_sides(document.get("requirement"))["maint"]):
        return "no_debt"
    return "unreachable"


def _shock_reason(document: dict[str, Any], assets: dict[str, Any]) -> str:
    lines = [
        line
        for line in document.get("lines") or []
        if not (assets.get(str(line.get("asset"))) or {}).get("stable", False)
        and not _is_zero(line.get("amount"))
    ]
    if not lines:
        return "no_exposure"
    if _is_zero(_sides(document.get("requirement"))["maint"]):
        return "no_debt"
    return "unreachable"


def _prices(
    document: dict[str, Any], assets: dict[str, Any], as_of: datetime | None
) -> list[dict[str, Any]]:
    invalid = document.get("invalid_prices") or {}
    used = sorted({str(line.get("asset")) for line in document.get("lines") or []})
    out = []
    for symbol in used:
        asset = assets.get(symbol) or {}
        price_time = _instant(asset.get("price_time"))
        out.append(
            {
                "asset": symbol,
                "price_usd": asset.get("price"),
                "conf_usd": asset.get("conf"),
                "price_time": None if price_time is None else iso(price_time),
                "age_seconds": _age_seconds(as_of, price_time),
                "valid": symbol not in invalid,
                "invalid_reason": invalid.get(symbol),
            }
        )
    return out


def _chains(
    document: dict[str, Any], portfolio: dict[str, Any], as_of: datetime | None
) -> list[dict[str, Any]]:
    stale = set(document.get("stale_chains") or [])
    published = document.get("chains")
    if isinstance(published, dict) and published:
        rows = []
        for caip2, info in published.items():
            block_time = _instant(info.get("block_time"))
            rows.append(
                {
                    "chain": caip2,
                    "key": info.get("chain"),
                    "height": info.get("height"),
                    "block_hash": info.get("block_hash"),
                    "block_time": None if block_time is None else iso(block_time),
                    "data_age_seconds": _age_seconds(as_of, block_time),
                    "finality": info.get("finality"),
                    "stale": bool(info.get("stale")) or caip2 in stale,
                    "last_poll_failed": bool(info.get("last_poll_failed")),
                    "last_poll_error": info.get("last_poll_error"),
                }
            )
        return rows
    rows = []
    for name, info in (portfolio.get("chains") or {}).items():
        block_time = _instant(info.get("block_time"))
        rows.append(
            {
                "chain": name,
                "key": None,
                "height": None,
                "block_hash": None,
                "block_time": None if block_time is None else iso(block_time),
                "data_age_seconds": _age_seconds(as_of, block_time),
                "finality": None,
                "stale": name in stale,
                "last_poll_failed": False,
                "last_poll_error": None,
            }
        )
    return rows


def _holding(holding: dict[str, Any]) -> dict[str, Any]:
    entry = holding.get("entry_price")
    return {
        "account": holding.get("account"),
        "chain": holding.get("chain"),
        "asset": holding.get("asset"),
        "venue": holding.get("venue"),
        "kind": holding.get("kind"),
        "amount": holding.get("amount"),
        "amount_raw": holding.get("amount_raw"),
        "decimals": holding.get("decimals"),
        "entry_price_usd": entry,
    }


def _portfolio_risk(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        return None
    worst = value.get("worst_scenario") or {}
    return {
        "horizon_seconds": value.get("horizon_seconds"),
        "confidence": value.get("confidence"),
        "scenario_count": value.get("scenario_count"),
        "var_usd": value.get("var"),
        "es_usd": value.get("es"),
        "stress_loss_usd": value.get("stress_loss"),
        "floor_usd": value.get("floor"),
        "gross_notional_usd": value.get("gross_notional"),
        "worst_scenario": {"name": worst.get("name"), "loss_usd": worst.get("loss")},
    }


def render_status(
    document: dict[str, Any],
    portfolio: dict[str, Any] | None = None,
    *,
    seq: int | None = None,
    published_at: datetime | None = None,
) -> dict[str, Any]:
    """The API view of a status `document` (published, or a bare `result_to_json` output),
    with `portfolio` its risk input (for price times and stable flags)."""
    portfolio = portfolio or {}
    assets = portfolio.get("assets") or {}
    as_of = _instant(document.get("as_of") or portfolio.get("as_of"))
    health_factor = document.get("health_factor")
    by_asset = _asset_lines(document)
    liquidation = []
    for asset, price in (document.get("liquidation_prices") or {}).items():
        liquidation.append(
            {
                "asset": asset,
                "price_usd": (assets.get(asset) or {}).get("price"),
                "liquidation_price_usd": price,
                "liquidation_price_usd_reason": None
                if price is not None
                else liquidation_reason(document, asset, by_asset.get(asset, [])),
            }
        )
    shock = document.get("liquidation_shock")
    max_borrow = document.get("max_borrow") or {}
    max_withdraw = document.get("max_withdraw") or {}
    limits = [
        {"asset": a, "max_borrow": max_borrow.get(a), "max_withdraw": max_withdraw.get(a)}
        for a in sorted({*max_borrow, *max_withdraw})
    ]
    return {
        "user": document.get("user"),
        "user_id": document.get("user_id"),
        "seq": seq,
        "as_of": None if as_of is None else iso(as_of),
        "published_at": None if published_at is None else iso(published_at),
        "mode": document.get("mode", "standard"),
        "status": document.get("status"),
        "stale": bool(document.get("stale")),
        "stale_chains": list(document.get("stale_chains") or []),
        "unpriced_assets": list(document.get("unpriced_assets") or []),
        "equity_usd": document.get("equity"),
        "collateral_value_usd": document.get("collateral_value"),
        "weighted_collateral_usd": _sides(document.get("weighted_collateral")),
        "requirement_usd": _sides(document.get("requirement")),
        "health_usd": _sides(document.get("health")),
        "health_factor": health_factor,
        "health_factor_reason": None if health_factor is not None else "no_debt",
        "free_collateral_usd": document.get("free_collateral"),
        "liquidation_prices": liquidation,
        "liquidation_shock": shock,
        "liquidation_shock_reason": None if shock is not None else _shock_reason(document, assets),
        "limits": limits,
        "accounts": list(document.get("accounts") or []),
        "chains": _chains(document, portfolio, as_of),
        "prices": _prices(document, assets, as_of),
        "holdings": [_holding(h) for h in document.get("holdings") or []],
        "lines": [_line(line) for line in document.get("lines") or []],
        "latency_buffers": document.get("latency_buffers") or {},
        "portfolio": _portfolio_risk(document.get("portfolio")),
        "venues": [_venue(v) for v in document.get("venues") or []],
        "binding": document.get("binding"),
        "binding_reason": document.get("binding_reason")
        if document.get("binding") is None and "binding_reason" in document
        else None,
    }


def _venue(venue: dict[str, Any]) -> dict[str, Any]:
    """A venue line of a document in the API's shape."""
    prices = venue.get("prices") or {}
    liquidation = venue.get("liquidation_prices") or {}
    unusable = "parameters_unusable" if venue.get("problem") else "unreachable"
    return {
        **{
            key: venue.get(key)
            for key in (
                "venue",
                "rules",
                "chain",
                "account",
                "subaccount",
                "metric",
                "units",
                "value",
                "value_reason",
                "status",
                "collateral_usd",
                "requirement_usd",
                "health_usd",
                "liquidation_shock",
                "problem",
                "read_point",
            )
        },
        "liquidation_prices": [
            {
                "asset": asset,
                "price_usd": prices.get(asset),
                "liquidation_price_usd": price,
                "liquidation_price_usd_reason": None if price is not None else unusable,
            }
            for asset, price in liquidation.items()
        ],
        "liquidation_shock_reason": venue.get("liquidation_shock_reason")
        or (unusable if venue.get("liquidation_shock") is None else None),
        "figures": dict(venue.get("extra") or {}),
        "reported": dict(venue.get("reported") or {}),
    }


def render_summary(
    document: dict[str, Any], *, seq: int, recorded_at: datetime | None
) -> dict[str, Any]:
    """One history entry: the headline numbers of a status as it was recorded."""
    health_factor = document.get("health_factor")
    return {
        "seq": seq,
        "as_of": document.get("as_of"),
        "recorded_at": None if recorded_at is None else iso(recorded_at),
        "status": document.get("status"),
        "stale": bool(document.get("stale")),
        "stale_chains": list(document.get("stale_chains") or []),
        "equity_usd": document.get("equity"),
        "weighted_collateral_usd": _sides(document.get("weighted_collateral")),
        "requirement_usd": _sides(document.get("requirement")),
        "health_factor": health_factor,
        "health_factor_reason": None if health_factor is not None else "no_debt",
        "free_collateral_usd": document.get("free_collateral"),
    }
