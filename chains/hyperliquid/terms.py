"""The margin terms of a Hyperliquid line, carried in `Position.market` as one short text.

A perp line's market reads `<coin>|<cross|isolated>|imr=<ratio>|mmr=<ratio>`; the USD cash line
reads `cash`. The adapter writes it, the portfolio builder reads it back: the store keeps it in
the existing `positions.market` column, so no schema change is needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Literal

VENUE = "hyperliquid"
SPOT_VENUE = "hyperliquid:spot"
CASH_MARKET = "cash"


@dataclass(frozen=True, slots=True)
class PerpTerms:
    coin: str
    mode: Literal["cross", "isolated"]
    imr: Decimal  # 1 / the position's leverage
    mmr: Decimal  # 1 / (2 * max leverage of its margin tier)


def encode_terms(terms: PerpTerms) -> str:
    """The market text of a perp line. May raise: nothing."""
    return f"{terms.coin}|{terms.mode}|imr={terms.imr}|mmr={terms.mmr}"


def parse_terms(market: str | None) -> PerpTerms | None:
    """The terms of a perp line's market text, or None when it is not one. May raise: nothing."""
    if market is None:
        return None
    parts = market.split("|")
    if len(parts) != 4 or parts[1] not in ("cross", "isolated"):
        return None
    if not (parts[2].startswith("imr=") and parts[3].startswith("mmr=")):
        return None
    try:
        imr, mmr = Decimal(parts[2][4:]), Decimal(parts[3][4:])
    except InvalidOperation:
        return None
    if not (imr.is_finite() and mmr.is_finite()) or imr < 0 or mmr < 0:
        return None
    mode: Literal["cross", "isolated"] = "cross" if parts[1] == "cross" else "isolated"
    return PerpTerms(parts[0], mode, imr, mmr)
