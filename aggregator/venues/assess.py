"""The venue view of one account (design §7a): its native health by its own rules, its
liquidation prices, the uniform price shock that liquidates it, and which view binds first.

`assess` measures a `VenueAccount` with the rules it names (`aggregator.venues.registry`) at the
venue's own prices; with `detail` it also solves, on the venue's common margin (collateral -
requirement), the price of each asset at which the venue liquidates (all else fixed) and the
uniform relative move of every non-stable price that does. `binding` picks, among the unified
status and the venue lines, the one nearest to liquidation. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from aggregator.margin.roots import nearest_root_bracketing
from aggregator.venues.model import VenueMeasure, VenueParameterError
from aggregator.venues.registry import rules_for
from chains.base import VenueAccount

VenueStatus = Literal["healthy", "warning", "liquidatable", "unknown"]

_ZERO = Decimal(0)
_ONE = Decimal(1)
# Roots are bracketed over factors of a million either way and bisected: the venues' margins
# are piecewise linear in a price (tiers, rounding), so 60 halvings leave ~1e-18 of the bracket.
_SPAN = Decimal(1_000_000)
_STEPS = 48
_ITERATIONS = 60


@dataclass(frozen=True, slots=True)
class ReadPoint:
    """Where a venue account was read: the chain's block or slot."""

    height: int
    block_hash: str
    block_time: str  # RFC 3339


@dataclass(frozen=True)
class VenueLine:
    """One venue account as its venue sees it."""

    venue: str
    rules: str
    chain: str  # CAIP-2
    account: str  # CAIP-10 of the wallet
    subaccount: str | None
    metric: str
    units: str
    value: Decimal | None
    value_reason: str | None
    collateral: Decimal | None
    requirement: Decimal | None
    status: VenueStatus
    read_point: ReadPoint
    problem: str | None = None
    prices: Mapping[str, Decimal] = field(default_factory=dict)  # what it was valued at
    liquidation_prices: Mapping[str, Decimal | None] = field(default_factory=dict)
    liquidation_shock: Decimal | None = None
    extra: Mapping[str, str] = field(default_factory=dict)
    reported: Mapping[str, str] = field(default_factory=dict)


def venue_status(measure: VenueMeasure, warning_at: Decimal) -> VenueStatus:
    """liquidatable below the requirement; warning when collateral / requirement is under the
    unified status's warning factor; else healthy."""
    if measure.liquidatable:
        return "liquidatable"
    if measure.requirement > 0 and measure.collateral < warning_at * measure.requirement:
        return "warning"
    return "healthy"


def _venue_prices(account: VenueAccount) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for asset in account.assets:
        if asset.price is not None:
            out.setdefault(asset.asset, asset.price)
    return out


def shocked_prices(
    account: VenueAccount, stable: frozenset[str], factor: Decimal
) -> dict[str, Decimal]:
    """The venue's prices with every non-stable one multiplied by `factor`."""
    return {
        asset: price if asset in stable else price * factor
        for asset, price in _venue_prices(account).items()
    }


Margin = Callable[[Mapping[str, Decimal]], Decimal]


def _margin(account: VenueAccount, rules_measure: Callable[..., VenueMeasure]) -> Margin:
    def at(prices: Mapping[str, Decimal]) -> Decimal:
        return rules_measure(account, prices).margin

    return at


def _one_price(
    at: Margin, current: Mapping[str, Decimal], asset: str
) -> Callable[[Decimal], Decimal]:
    def f(price: Decimal) -> Decimal:
        return at({**current, asset: price})

    return f


def assess(
    account: VenueAccount,
    chain: str,
    wallet: str,
    read_point: ReadPoint,
    *,
    stable: frozenset[str],
    warning_at: Decimal,
    detail: bool = True,
) -> VenueLine:
    """The venue line of `account` (read on `chain`, owned by `wallet`, a CAIP-10 id).

    It is valued at the venue's own prices (a what-if moves them in the account itself:
    `aggregator.venues.whatif`); `detail` adds liquidation prices and the liquidation shock.
    A venue whose parameters cannot be read or are out of range gives a line with `status`
    "unknown" and `problem` saying why; nothing raises.
    """
    base: dict[str, Any] = {
        "venue": account.venue,
        "rules": account.rules,
        "chain": chain,
        "account": wallet,
        "subaccount": account.subaccount,
        "read_point": read_point,
        "reported": dict(account.reported),
    }
    rules = rules_for(account.rules)
    problem = account.problem
    if rules is None:
        problem = problem or f"no rules known for venue kind {account.rules!r}"
    measure: VenueMeasure | None = None
    if problem is None and rules is not None:
        try:
            rules.check(account)
            measure = rules.measure(account, {})
        except (VenueParameterError, ArithmeticError) as exc:
            problem = str(exc)
    if measure is None or rules is None:
        return VenueLine(
            **base,
            metric=rules.metric if rules else "",
            units=rules.units if rules else "",
            value=None,
            value_reason="the venue's parameters could not be used",
            collateral=None,
            requirement=None,
            status="unknown",
            problem=problem,
        )
    liquidation_prices: dict[str, Decimal | None] = {}
    shock: Decimal | None = None
    current = _venue_prices(account)
    if detail:
        at = _margin(account, rules.measure)
        for asset in sorted(current):
            liquidation_prices[asset] = _root(_one_price(at, current, asset), current[asset])
        if measure.liquidatable:
            shock = _ZERO
        else:
            factor = _root(
                lambda f: at(
                    {a: p if a in stable else p * f for a, p in current.items()},
                ),
                _ONE,
            )
            shock = None if factor is None else factor - _ONE
    return VenueLine(
        **base,
        metric=rules.metric,
        units=rules.units,
        value=measure.metric,
        value_reason=measure.metric_reason,
        collateral=measure.collateral,
        requirement=measure.requirement,
        status=venue_status(measure, warning_at),
        prices=current if detail else {},
        liquidation_prices=liquidation_prices,
        liquidation_shock=shock,
        extra=dict(measure.extra or {}),
    )


def _root(f: Callable[[Decimal], Decimal], origin: Decimal) -> Decimal | None:
    """The positive root of `f` nearest to `origin` (> 0), or None.

    Venue margins are linear in one price (or in a uniform factor) between few kinks (tiers,
    base-unit rounding), and monotone: secant steps from `origin` land on the root in two or
    three evaluations. When they do not settle (no root, or a kink in the way), the root is
    bracketed by a geometric scan and bisected."""
    if origin <= 0:
        return None
    try:
        found = _secant(f, origin)
        if found is not None:
            return found
        return nearest_root_bracketing(
            f, origin, _ZERO, span=_SPAN, steps=_STEPS, iterations=_ITERATIONS
        )
    except (VenueParameterError, ArithmeticError):
        return None


_SECANT_STEPS = 12
_SETTLED = Decimal("1e-20")  # relative change of the estimate that counts as converged


def _secant(f: Callable[[Decimal], Decimal], origin: Decimal) -> Decimal | None:
    """A root of `f` by secant steps from `origin`, when they converge to a positive root whose
    neighbourhood changes sign; None otherwise (the caller brackets instead)."""
    x0, f0 = origin, f(origin)
    if f0 == 0:
        return origin
    x1 = origin * Decimal("1.001")
    f1 = f(x1)
    for step_number in range(_SECANT_STEPS):
        if f1 == f0:
            if step_number == 0:
                return None  # flat at the origin: no slope to follow
            break  # both points on one step of a rounded margin: as close as it resolves
        x2 = x1 - f1 * (x1 - x0) / (f1 - f0)
        if x2 <= 0:
            return None
        f2 = f(x2)
        x0, f0, x1, f1 = x1, f1, x2, f2
        if f2 == 0 or abs(x1 - x0) <= _SETTLED * abs(x1):
            break
    else:
        return None
    # A root only where the sign changes: a tangent or a flat stretch is not one. (The margin
    # of a venue that rounds prices to a base unit moves in steps of about 1e-12 of a price.)
    step = abs(x1) * Decimal("1e-9")
    below, above = f(x1 - step), f(x1 + step)
    if f1 != 0 and (below < 0) == (above < 0):
        return None
    return x1


@dataclass(frozen=True)
class Binding:
    """The view nearest to liquidation: "unified" or one venue line."""

    view: Literal["unified", "venue"]
    status: str
    liquidation_shock: Decimal
    venue: str | None = None
    chain: str | None = None
    account: str | None = None
    subaccount: str | None = None


def binding(
    unified_status: str, unified_shock: Decimal | None, venues: Sequence[VenueLine]
) -> Binding | None:
    """Among the unified status and the venue lines (those with a problem excluded), the one
    whose liquidation is nearest: an already liquidatable view first (shock 0), else the
    smallest uniform move in absolute terms; the unified view wins ties. None when no price
    move liquidates any view."""
    candidates: list[tuple[Decimal, int, Binding]] = []
    unified = _ZERO if unified_status == "liquidatable" else unified_shock
    if unified is not None:
        candidates.append((abs(unified), 0, Binding("unified", unified_status, unified)))
    for index, line in enumerate(venues, start=1):
        if line.status == "unknown" or line.liquidation_shock is None:
            continue
        candidates.append(
            (
                abs(line.liquidation_shock),
                index,
                Binding(
                    "venue",
                    line.status,
                    line.liquidation_shock,
                    line.venue,
                    line.chain,
                    line.account,
                    line.subaccount,
                ),
            )
        )
    if not candidates:
        return None
    return min(candidates, key=lambda c: (c[0], c[1]))[2]
