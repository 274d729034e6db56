"""The risk engine's input document: a portfolio in JSON, read into the typed `Portfolio`.

`parse_portfolio` turns a decoded JSON document (see config/portfolio.schema.json) into the
typed `Portfolio`, naming the offending field on any error (`holdings[2].amount: not a decimal
number`). The other direction, and the status document out, live in `aggregator.risk.output`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, cast

from aggregator.margin import (
    AssetRisk,
    ChainState,
    FactorModel,
    FactorModelError,
    Holding,
    Perp,
    Portfolio,
    RiskParams,
    Tier,
)
from aggregator.valuation.model import DEFAULT_TIERS, Mode
from aggregator.valuation.scenarios import factor_structure


class PortfolioError(ValueError):
    """A portfolio document that cannot be evaluated; `field` names where (JSON path)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _object(value: object, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PortfolioError(path or "document", "not an object")
    return cast(dict[str, Any], value)


def _check_keys(
    obj: Mapping[str, Any], path: str, required: tuple[str, ...], optional: tuple[str, ...]
) -> None:
    for key in obj:
        if key not in required and key not in optional:
            raise PortfolioError(_join(path, str(key)), "unknown field")
    for key in required:
        if key not in obj:
            raise PortfolioError(_join(path, key), "required")


def _decimal(
    value: object,
    path: str,
    *,
    minimum: Decimal | None = None,
    maximum: Decimal | None = None,
    positive: bool = False,
) -> Decimal:
    """A JSON number or decimal string as an exact Decimal within bounds."""
    number: Decimal
    if isinstance(value, bool) or value is None:
        raise PortfolioError(path, "not a decimal number")
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise PortfolioError(path, "not a finite decimal number")
        number = Decimal(repr(value))  # the shortest text that reads back as this float
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise PortfolioError(path, "not a decimal number") from None
    else:
        raise PortfolioError(path, "not a decimal number")
    if not number.is_finite():
        raise PortfolioError(path, "not a finite decimal number")
    if positive and number <= 0:
        raise PortfolioError(path, "must be positive")
    if minimum is not None and number < minimum:
        raise PortfolioError(path, f"must be at least {minimum}")
    if maximum is not None and number > maximum:
        raise PortfolioError(path, f"must be at most {maximum}")
    return number


def _time(value: object, path: str) -> datetime:
    """ISO 8601 with a UTC offset (`Z` allowed), or integer unix seconds."""
    if isinstance(value, int) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise PortfolioError(path, "not an ISO 8601 time") from None
        if parsed.tzinfo is None:
            raise PortfolioError(path, "ISO 8601 time needs a UTC offset (e.g. Z)")
        return parsed
    raise PortfolioError(path, "not an ISO 8601 time")


def _text(value: object, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise PortfolioError(path, "not a non-empty string")
    return value


def _flag(value: object, path: str) -> bool:
    if not isinstance(value, bool):
        raise PortfolioError(path, "not true or false")
    return value


def _integer(value: object, path: str, minimum: int, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PortfolioError(path, "not an integer")
    if not minimum <= value <= maximum:
        raise PortfolioError(path, f"must be between {minimum} and {maximum}")
    return value


_ZERO = Decimal(0)
_ONE = Decimal(1)

_PARAM_BOUNDS: dict[str, tuple[Decimal | None, Decimal | None]] = {
    "conf_multiplier": (_ZERO, None),
    "max_conf_ratio": (_ZERO, None),
    "latency_z": (_ZERO, None),
    "warning_health_factor": (_ZERO, None),
    "pnl_weight_init": (_ZERO, _ONE),
    "pnl_weight_maint": (_ZERO, _ONE),
    "portfolio_floor_ratio": (_ZERO, _ONE),
    "portfolio_init_multiplier": (_ONE, None),
    "es_confidence": (Decimal("0.5"), Decimal("0.9999")),
    "default_correlation": (Decimal(-1), _ONE),
    "depeg_shock": (_ZERO, _ONE),
}


def _params(value: object, defaults: RiskParams) -> RiskParams:
    obj = _object(value, "params")
    _check_keys(
        obj,
        "params",
        (),
        (*_PARAM_BOUNDS, "scenario_count", "scenario_seed", "stress_in_requirement"),
    )
    kwargs: dict[str, Any] = {}
    for key, (low, high) in _PARAM_BOUNDS.items():
        if key in obj:
            kwargs[key] = _decimal(obj[key], f"params.{key}", minimum=low, maximum=high)
    if "scenario_count" in obj:
        kwargs["scenario_count"] = _integer(
            obj["scenario_count"], "params.scenario_count", 1, 1_000_000
        )
    if "stress_in_requirement" in obj:
        kwargs["stress_in_requirement"] = _flag(
            obj["stress_in_requirement"], "params.stress_in_requirement"
        )
    if "scenario_seed" in obj:
        kwargs["scenario_seed"] = _integer(
            obj["scenario_seed"], "params.scenario_seed", 0, 2**63 - 1
        )
    params = replace(defaults, **kwargs)
    if params.pnl_weight_init > params.pnl_weight_maint:
        raise PortfolioError("params.pnl_weight_init", "must not exceed pnl_weight_maint")
    return params


def _chain(name: str, value: object) -> ChainState:
    path = f"chains.{name}"
    obj = _object(value, path)
    keys = (
        "block_time",
        "finality_seconds",
        "liquidation_latency_seconds",
        "max_staleness_seconds",
    )
    _check_keys(obj, path, keys, ())
    return ChainState(
        name=name,
        block_time=_time(obj["block_time"], f"{path}.block_time"),
        finality_seconds=_decimal(
            obj["finality_seconds"], f"{path}.finality_seconds", minimum=_ZERO
        ),
        liquidation_latency_seconds=_decimal(
            obj["liquidation_latency_seconds"], f"{path}.liquidation_latency_seconds", minimum=_ZERO
        ),
        max_staleness_seconds=_decimal(
            obj["max_staleness_seconds"], f"{path}.max_staleness_seconds", minimum=_ZERO
        ),
    )


def _tiers(value: object, path: str) -> tuple[Tier, ...]:
    if not isinstance(value, list) or not value:
        raise PortfolioError(path, "not a non-empty list of [from, to|null, ratio]")
    tiers: list[Tier] = []
    expected = _ZERO
    for i, band in enumerate(value):
        band_path = f"{path}[{i}]"
        if not isinstance(band, list) or len(band) != 3:
            raise PortfolioError(band_path, "not a [from, to|null, ratio] triple")
        start = _decimal(band[0], f"{band_path}[0]", minimum=_ZERO)
        if start != expected:
            raise PortfolioError(
                f"{band_path}[0]", f"must be {expected} (bands are contiguous from 0)"
            )
        end = None if band[1] is None else _decimal(band[1], f"{band_path}[1]")
        if end is not None and end <= start:
            raise PortfolioError(f"{band_path}[1]", "must be above the band's start")
        if end is None and i != len(value) - 1:
            raise PortfolioError(f"{band_path}[1]", "only the last band may be unbounded")
        ratio = _decimal(band[2], f"{band_path}[2]", minimum=_ZERO, maximum=_ONE)
        tiers.append(Tier(start, end, ratio))
        expected = end if end is not None else expected
    return tuple(tiers)


_ASSET_REQUIRED = (
    "price",
    "conf",
    "price_time",
    "max_price_age_seconds",
    "init_weight",
    "maint_weight",
    "init_liability_weight",
    "maint_liability_weight",
    "volatility",
)


def _asset(symbol: str, value: object) -> AssetRisk:
    path = f"assets.{symbol}"
    obj = _object(value, path)
    _check_keys(obj, path, _ASSET_REQUIRED, ("imf", "tiers", "family", "stable"))

    def number(key: str, **bounds: Any) -> Decimal:
        return _decimal(obj[key], f"{path}.{key}", **bounds)

    init_weight = number("init_weight", minimum=_ZERO, maximum=_ONE)
    maint_weight = number("maint_weight", minimum=_ZERO, maximum=_ONE)
    if init_weight > maint_weight:
        raise PortfolioError(f"{path}.init_weight", "must not exceed maint_weight")
    maint_liability = number("maint_liability_weight", minimum=_ONE)
    init_liability = number("init_liability_weight", minimum=_ONE)
    if init_liability < maint_liability:
        raise PortfolioError(
            f"{path}.init_liability_weight", "must be at least maint_liability_weight"
        )
    return AssetRisk(
        symbol=symbol,
        price=number("price", positive=True),
        conf=number("conf", minimum=_ZERO),
        price_time=_time(obj["price_time"], f"{path}.price_time"),
        max_price_age_seconds=number("max_price_age_seconds", minimum=_ZERO),
        init_weight=init_weight,
        maint_weight=maint_weight,
        init_liability_weight=init_liability,
        maint_liability_weight=maint_liability,
        volatility=number("volatility", minimum=_ZERO),
        family=_text(obj["family"], f"{path}.family") if "family" in obj else symbol,
        stable=_flag(obj["stable"], f"{path}.stable") if "stable" in obj else False,
        imf=number("imf", minimum=_ZERO) if "imf" in obj else _ZERO,
        tiers=_tiers(obj["tiers"], f"{path}.tiers") if "tiers" in obj else DEFAULT_TIERS,
    )


def _reference(value: object, path: str, known: Mapping[str, object], what: str) -> str:
    name = _text(value, path)
    if name not in known:
        raise PortfolioError(path, f"unknown {what} {name!r}")
    return name


def _list(value: object, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise PortfolioError(path, "not a list")
    return value


def _holding(
    i: int, value: object, chains: Mapping[str, ChainState], assets: Mapping[str, AssetRisk]
) -> Holding:
    path = f"holdings[{i}]"
    obj = _object(value, path)
    _check_keys(obj, path, ("chain", "asset", "amount"), ("venue",))
    return Holding(
        chain=_reference(obj["chain"], f"{path}.chain", chains, "chain"),
        asset=_reference(obj["asset"], f"{path}.asset", assets, "asset"),
        amount=_decimal(obj["amount"], f"{path}.amount"),
        venue=_text(obj["venue"], f"{path}.venue") if "venue" in obj else "wallet",
    )


def _perp(
    i: int, value: object, chains: Mapping[str, ChainState], assets: Mapping[str, AssetRisk]
) -> Perp:
    path = f"perps[{i}]"
    obj = _object(value, path)
    _check_keys(
        obj, path, ("chain", "venue", "asset", "base", "entry_price", "imr", "mmr"), ("imf",)
    )
    imr = _decimal(obj["imr"], f"{path}.imr", minimum=_ZERO, maximum=_ONE)
    mmr = _decimal(obj["mmr"], f"{path}.mmr", minimum=_ZERO, maximum=_ONE)
    if imr < mmr:
        raise PortfolioError(f"{path}.imr", "must be at least mmr")
    return Perp(
        chain=_reference(obj["chain"], f"{path}.chain", chains, "chain"),
        venue=_text(obj["venue"], f"{path}.venue"),
        asset=_reference(obj["asset"], f"{path}.asset", assets, "asset"),
        base=_decimal(obj["base"], f"{path}.base"),
        entry_price=_decimal(obj["entry_price"], f"{path}.entry_price", positive=True),
        imr=imr,
        mmr=mmr,
        imf=_decimal(obj["imf"], f"{path}.imf", minimum=_ZERO) if "imf" in obj else _ZERO,
    )


def _family_pairs(
    value: object, path: str, families: set[str], *, bound: bool
) -> dict[tuple[str, str], Decimal]:
    table: dict[tuple[str, str], Decimal] = {}
    for a, row in _object(value, path).items():
        if a not in families:
            raise PortfolioError(f"{path}.{a}", "unknown family")
        for b, cell in _object(row, f"{path}.{a}").items():
            cell_path = f"{path}.{a}.{b}"
            if b not in families:
                raise PortfolioError(cell_path, "unknown family")
            number = _decimal(
                cell,
                cell_path,
                minimum=Decimal(-1) if bound else None,
                maximum=_ONE if bound else None,
            )
            if bound and a == b and number != 1:
                raise PortfolioError(cell_path, "a family's correlation with itself is 1")
            other = table.get((b, a))
            if other is not None and other != number:
                raise PortfolioError(cell_path, f"differs from {path}.{b}.{a}")
            table[(a, b)] = number
    return table


_TOP_REQUIRED = ("as_of", "chains", "assets")
_TOP_OPTIONAL = (
    "mode",
    "params",
    "holdings",
    "perps",
    "correlations",
    "covariance",
    "stress_ranges",
    "$schema",
    "description",
)


def parse_portfolio(doc: object, defaults: RiskParams | None = None) -> Portfolio:
    """Check a decoded portfolio document and build the typed `Portfolio`.

    `params` the document leaves out come from `defaults` (design §5's when None).
    Decimal values may be JSON numbers or decimal strings; decode JSON with
    `parse_float=Decimal` to keep every digit.
    May raise: PortfolioError naming the first offending field.
    """
    obj = _object(doc, "")
    _check_keys(obj, "", _TOP_REQUIRED, _TOP_OPTIONAL)
    as_of = _time(obj["as_of"], "as_of")
    mode_value = obj.get("mode", "standard")
    if mode_value not in ("standard", "portfolio"):
        raise PortfolioError("mode", "must be 'standard' or 'portfolio'")
    mode = cast(Mode, mode_value)
    defaults = defaults or RiskParams()
    params = _params(obj["params"], defaults) if "params" in obj else defaults
    chains = {name: _chain(name, v) for name, v in _object(obj["chains"], "chains").items()}
    assets = {sym: _asset(sym, v) for sym, v in _object(obj["assets"], "assets").items()}
    holdings = tuple(
        _holding(i, v, chains, assets)
        for i, v in enumerate(_list(obj.get("holdings", []), "holdings"))
    )
    perps = tuple(
        _perp(i, v, chains, assets) for i, v in enumerate(_list(obj.get("perps", []), "perps"))
    )
    families = {a.family for a in assets.values()}
    factors = FactorModel(
        covariance=_family_pairs(obj.get("covariance", {}), "covariance", families, bound=False),
        correlations=_family_pairs(
            obj.get("correlations", {}), "correlations", families, bound=True
        ),
        stress_ranges={
            family: _decimal(v, f"stress_ranges.{family}", minimum=_ZERO, maximum=_ONE)
            for family, v in _object(obj.get("stress_ranges", {}), "stress_ranges").items()
        },
    )
    for family in factors.stress_ranges:
        if family not in families:
            raise PortfolioError(f"stress_ranges.{family}", "unknown family")
    if mode == "portfolio":
        try:
            factor_structure(assets, factors, params)
        except FactorModelError as exc:
            raise PortfolioError(
                "covariance" if factors.covariance else "correlations", str(exc)
            ) from None
    return Portfolio(
        as_of=as_of,
        chains=chains,
        assets=assets,
        holdings=holdings,
        perps=perps,
        mode=mode,
        params=params,
        factors=factors,
    )
