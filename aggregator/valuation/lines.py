"""How a valued line is recorded: `Sides` (initial and maintenance), `LineValue`, and the
constructors the hot path builds them with.

Valuing a book builds a few dozen frozen dataclasses per account. Their generated __init__
sets every field through `object.__setattr__` (the price of `frozen=True`), which is about
half the cost of building one; the constructors here fill the slots directly instead and
give objects equal to the class's own constructor (tested field by field).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any, Literal

_ZERO = Decimal(0)

new_instance: Callable[[type[Any]], Any] = object.__new__
"""An instance of a slotted class with no slot filled yet (`object.__new__`)."""


def slot_setters(cls: type[Any]) -> tuple[Callable[[Any, Any], None], ...]:
    """The slot setters of dataclass `cls`, one per field in declaration order."""
    return tuple(cls.__dict__[f.name].__set__ for f in fields(cls))


@dataclass(frozen=True, slots=True)
class Sides:
    """A quantity on the initial and on the maintenance side."""

    init: Decimal
    maint: Decimal


ZERO_SIDES = Sides(_ZERO, _ZERO)

_SIDES_INIT, _SIDES_MAINT = slot_setters(Sides)


def new_sides(init: Decimal, maint: Decimal) -> Sides:
    """`Sides(init, maint)`, built without the frozen dataclass's per-field setattr."""
    sides: Sides = new_instance(Sides)
    _SIDES_INIT(sides, init)
    _SIDES_MAINT(sides, maint)
    return sides


@dataclass(frozen=True, slots=True)
class LineValue:
    """How one holding or perp was valued.

    `value` is the mark value (`q * p` for a holding, unrealized pnl for a perp); `price_used`
    is the adjusted price (`p_a*(1-b)` for collateral, `p_l*(1+b)` for a liability, the mark
    for a perp); `weight` the effective weight per side (asset or liability weight after size
    and tiers; for a perp the margin ratio); `collateral` and `requirement` its contributions.
    """

    kind: Literal["holding", "perp"]
    index: int  # position in Portfolio.holdings or Portfolio.perps
    chain: str
    venue: str
    asset: str
    amount: Decimal  # holding amount, or perp base
    price: Decimal
    price_valid: bool
    value: Decimal
    price_used: Decimal
    buffer: Decimal
    weight: Sides
    collateral: Sides
    requirement: Sides
    notional: Decimal | None = None
    pnl: Decimal | None = None


(
    _L_KIND,
    _L_INDEX,
    _L_CHAIN,
    _L_VENUE,
    _L_ASSET,
    _L_AMOUNT,
    _L_PRICE,
    _L_VALID,
    _L_VALUE,
    _L_USED,
    _L_BUFFER,
    _L_WEIGHT,
    _L_COLLATERAL,
    _L_REQUIREMENT,
    _L_NOTIONAL,
    _L_PNL,
) = slot_setters(LineValue)


def new_line(
    kind: Literal["holding", "perp"],
    index: int,
    chain: str,
    venue: str,
    asset: str,
    amount: Decimal,
    price: Decimal,
    price_valid: bool,
    value: Decimal,
    price_used: Decimal,
    buffer: Decimal,
    weight: Sides,
    collateral: Sides,
    requirement: Sides,
    notional: Decimal | None = None,
    pnl: Decimal | None = None,
) -> LineValue:
    """`LineValue(...)` (same arguments), built without the per-field setattr."""
    line: LineValue = new_instance(LineValue)
    _L_KIND(line, kind)
    _L_INDEX(line, index)
    _L_CHAIN(line, chain)
    _L_VENUE(line, venue)
    _L_ASSET(line, asset)
    _L_AMOUNT(line, amount)
    _L_PRICE(line, price)
    _L_VALID(line, price_valid)
    _L_VALUE(line, value)
    _L_USED(line, price_used)
    _L_BUFFER(line, buffer)
    _L_WEIGHT(line, weight)
    _L_COLLATERAL(line, collateral)
    _L_REQUIREMENT(line, requirement)
    _L_NOTIONAL(line, notional)
    _L_PNL(line, pnl)
    return line
