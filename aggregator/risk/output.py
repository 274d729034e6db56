"""The risk engine's JSON out: status documents, and portfolios written back as documents.

`result_to_json` turns a `MarginResult` into the JSON dict that `xmargin risk evaluate` prints
and that the publisher stores, so both always agree. `portfolio_to_document` is the inverse of
`aggregator.risk.document.parse_portfolio`. Numbers go out as decimal strings (never floats),
`null` for none.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Context, Decimal, localcontext
from typing import Any

from aggregator.margin import LineValue, MarginResult, Portfolio, Sides
from aggregator.risk.document import _PARAM_BOUNDS

OUTPUT_PLACES = 18  # decimal places of every number in a status document

# Rounding to the output places: half even at 100 digits whatever the caller's context (a
# number too long for that raises InvalidOperation).
_OUTPUT_CONTEXT = Context(prec=100, rounding=ROUND_HALF_EVEN)
_OUTPUT_STEP = Decimal(1).scaleb(-OUTPUT_PLACES)


def decimal_text(value: Decimal, places: int = OUTPUT_PLACES) -> str:
    """A Decimal as plain text rounded to `places` decimals (half even), no exponent, no
    trailing zeros: `Decimal("1.50")` -> `"1.5"`. May raise: InvalidOperation when the
    rounded number has more than 100 digits."""
    step = _OUTPUT_STEP if places == OUTPUT_PLACES else Decimal(1).scaleb(-places)
    return _plain_text(value.quantize(step, context=_OUTPUT_CONTEXT))


def _plain_text(rounded: Decimal) -> str:
    """Fixed-point text without trailing zeros, and without the sign of a zero."""
    text = format(rounded, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _number_text(value: Decimal) -> str:
    """`decimal_text(value)`, inside `result_to_json`'s output context: `format` rounds to
    the output places with that context's rounding (half even) in one step. (Unlike
    `quantize`, it does not refuse a number of more than 100 digits.)"""
    text = format(value, _OUTPUT_FORMAT).rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


_OUTPUT_FORMAT = f".{OUTPUT_PLACES}f"

# Every line repeats its asset's price, its adjusted price and its buffer, and every status the
# market's buffers: the very objects the market prepared, whose hash Python keeps, so looking
# their text up costs far less than formatting it. Keyed by value (equal Decimals give the same
# text); emptied when full. Numbers an account makes itself are formatted directly: hashing a
# new Decimal costs about as much as formatting it.
_SHARED_TEXT: dict[Decimal, str] = {}
_SHARED_TEXT_SIZE = 10_000


def _shared_text(value: Decimal) -> str:
    """`_number_text(value)` through the cache of market-level numbers."""
    text = _SHARED_TEXT.get(value)
    if text is None:
        text = _number_text(value)
        if len(_SHARED_TEXT) >= _SHARED_TEXT_SIZE:
            _SHARED_TEXT.clear()
        _SHARED_TEXT[value] = text
    return text


def _optional(value: Decimal | None) -> str | None:
    return None if value is None else _number_text(value)


def _sides(sides: Sides) -> dict[str, str]:
    return {"init": _number_text(sides.init), "maint": _number_text(sides.maint)}


def _line(line: LineValue) -> dict[str, Any]:
    text = _number_text
    notional = line.notional
    pnl = line.pnl
    weight = line.weight
    collateral = line.collateral
    requirement = line.requirement
    return {
        "kind": line.kind,
        "index": line.index,
        "chain": line.chain,
        "venue": line.venue,
        "asset": line.asset,
        "amount": text(line.amount),
        "price": _shared_text(line.price),
        "price_valid": line.price_valid,
        "value": text(line.value),
        "price_used": _shared_text(line.price_used),
        "buffer": _shared_text(line.buffer),
        "weight": {"init": text(weight.init), "maint": text(weight.maint)},
        "collateral": {"init": text(collateral.init), "maint": text(collateral.maint)},
        "requirement": {"init": text(requirement.init), "maint": text(requirement.maint)},
        "notional": None if notional is None else text(notional),
        "pnl": None if pnl is None else text(pnl),
    }


def result_to_json(result: MarginResult) -> dict[str, Any]:
    """The status document of a result: decimal strings, `null` for none, stable key order."""
    # One output context for the whole document rather than one per number.
    with localcontext(_OUTPUT_CONTEXT):
        return _status_document(result)


def headline_to_json(result: MarginResult) -> dict[str, Any]:
    """The headline keys of `result_to_json(result)` (status, staleness, totals), the same
    text for each: what a publish pass stores."""
    with localcontext(_OUTPUT_CONTEXT):
        return _headline(result)


def _headline(result: MarginResult) -> dict[str, Any]:
    text = _number_text
    return {
        "mode": result.mode,
        "status": result.status,
        "stale": result.stale,
        "stale_chains": list(result.stale_chains),
        "invalid_prices": dict(result.invalid_prices),
        "equity": text(result.equity),
        "collateral_value": text(result.collateral_value),
        "weighted_collateral": _sides(result.weighted_collateral),
        "requirement": _sides(result.requirement),
        "health": _sides(result.health),
        "health_factor": _optional(result.health_factor),
        "free_collateral": text(result.free_collateral),
    }


def _status_document(result: MarginResult) -> dict[str, Any]:
    portfolio = result.portfolio
    text = _number_text
    return {
        **_headline(result),
        "liquidation_prices": {a: _optional(p) for a, p in result.liquidation_prices.items()},
        "liquidation_shock": _optional(result.liquidation_shock),
        "max_borrow": {a: text(x) for a, x in result.max_borrow.items()},
        "max_withdraw": {a: text(x) for a, x in result.max_withdraw.items()},
        "latency_buffers": {
            chain: {a: _shared_text(b) for a, b in row.items()}
            for chain, row in result.latency_buffers.items()
        },
        "lines": [_line(line) for line in result.lines],
        "portfolio": None
        if portfolio is None
        else {
            "horizon_seconds": text(portfolio.horizon_seconds),
            "confidence": text(portfolio.confidence),
            "scenario_count": portfolio.scenario_count,
            "var": text(portfolio.var),
            "es": text(portfolio.es),
            "stress_loss": text(portfolio.stress_loss),
            "floor": text(portfolio.floor),
            "gross_notional": text(portfolio.gross_notional),
            "worst_scenario": {
                "name": portfolio.worst_scenario,
                "loss": text(portfolio.worst_loss),
            },
        },
    }


def _exact(value: Decimal) -> str:
    """A Decimal as plain text with every digit (inputs are not rounded)."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _instant(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def portfolio_to_document(portfolio: Portfolio) -> dict[str, Any]:
    """The `risk evaluate` document of `portfolio`: `parse_portfolio` of it gives it back.

    Publish stores it with every status, so any published number can be reproduced with
    `xmargin risk evaluate`, no chain or database needed.
    May raise: ValueError (an asset without a price cannot be written as a document).
    """
    params = portfolio.params
    assets: dict[str, Any] = {}
    for symbol, asset in portfolio.assets.items():
        if asset.price is None:
            raise ValueError(f"asset {symbol} has no price")
        assets[symbol] = {
            "price": _exact(asset.price),
            "conf": _exact(asset.conf),
            "price_time": _instant(asset.price_time),
            "max_price_age_seconds": _exact(asset.max_price_age_seconds),
            "init_weight": _exact(asset.init_weight),
            "maint_weight": _exact(asset.maint_weight),
            "init_liability_weight": _exact(asset.init_liability_weight),
            "maint_liability_weight": _exact(asset.maint_liability_weight),
            "volatility": _exact(asset.volatility),
            "family": asset.family,
            "stable": asset.stable,
            "imf": _exact(asset.imf),
            "tiers": [
                [_exact(t.start), None if t.end is None else _exact(t.end), _exact(t.ratio)]
                for t in asset.tiers
            ],
        }
    document: dict[str, Any] = {
        "as_of": _instant(portfolio.as_of),
        "mode": portfolio.mode,
        "params": {
            **{key: _exact(getattr(params, key)) for key in _PARAM_BOUNDS},
            "scenario_count": params.scenario_count,
            "scenario_seed": params.scenario_seed,
            "stress_in_requirement": params.stress_in_requirement,
        },
        "chains": {
            name: {
                "block_time": _instant(chain.block_time),
                "finality_seconds": _exact(chain.finality_seconds),
                "liquidation_latency_seconds": _exact(chain.liquidation_latency_seconds),
                "max_staleness_seconds": _exact(chain.max_staleness_seconds),
            }
            for name, chain in portfolio.chains.items()
        },
        "assets": assets,
        "holdings": [
            {"chain": h.chain, "asset": h.asset, "amount": _exact(h.amount), "venue": h.venue}
            for h in portfolio.holdings
        ],
        "perps": [
            {
                "chain": p.chain,
                "venue": p.venue,
                "asset": p.asset,
                "base": _exact(p.base),
                "entry_price": _exact(p.entry_price),
                "imr": _exact(p.imr),
                "mmr": _exact(p.mmr),
                "imf": _exact(p.imf),
            }
            for p in portfolio.perps
        ],
    }
    factors = portfolio.factors
    for key, table in (("covariance", factors.covariance), ("correlations", factors.correlations)):
        if table:
            nested: dict[str, dict[str, str]] = {}
            for (a, b), number in table.items():
                nested.setdefault(a, {})[b] = _exact(number)
            document[key] = nested
    if factors.stress_ranges:
        document["stress_ranges"] = {f: _exact(v) for f, v in factors.stress_ranges.items()}
    return document
