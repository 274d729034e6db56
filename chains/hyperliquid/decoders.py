"""Typed views of Hyperliquid info responses, decoded at the edge with their JSON types checked.

Amounts arrive as decimal strings and become `Decimal`; a JSON number where the venue sends a
string is refused (a float would lose digits). Bodies are parsed with `parse_float=Decimal`, so
no float exists at any step. Integer fields (leverage.value, maxLeverage, time, token) are JSON
integers on the live API; a digit string is also taken (third-party transcriptions store them
so) since it is exact. A bad position or balance is skipped and named in `skipped`; a response
whose envelope is wrong raises `DecodeError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from chains.hyperliquid.fields import (
    DecodeError,
    amount,
    field,
    integer,
    json_type,
    optional_amount,
    parse_body,
    ulp,
)
from chains.hyperliquid.meta import (
    AssetContext,
    AssetMeta,
    MarginTier,
    PerpMarkets,
    PerpMeta,
    decode_meta,
    decode_meta_and_asset_ctxs,
)

__all__ = [
    "AssetContext",
    "AssetMeta",
    "ClearinghouseState",
    "DecodeError",
    "MarginSummary",
    "MarginTier",
    "PerpMarkets",
    "PerpMeta",
    "PerpPosition",
    "SpotBalance",
    "SpotState",
    "decode_clearinghouse_state",
    "decode_meta",
    "decode_meta_and_asset_ctxs",
    "decode_position",
    "decode_spot_state",
    "decode_user_abstraction",
    "parse_body",
]

SPOT_COLLATERAL_MODES = frozenset({"unifiedAccount", "portfolioMargin"})
KNOWN_ABSTRACTIONS = SPOT_COLLATERAL_MODES | {"disabled", "default", "dexAbstraction"}


# --- clearinghouseState ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MarginSummary:
    account_value: Decimal
    total_ntl_pos: Decimal
    total_raw_usd: Decimal
    total_margin_used: Decimal


@dataclass(frozen=True, slots=True)
class PerpPosition:
    coin: str
    szi: Decimal  # signed size, long positive
    entry_px: Decimal
    position_value: Decimal  # |szi| * mark
    unrealized_pnl: Decimal
    margin_used: Decimal
    liquidation_px: Decimal | None
    leverage_type: Literal["cross", "isolated"]
    leverage: int
    raw_usd: Decimal | None  # isolated only
    max_leverage: int | None  # absent in the 2023 format

    @property
    def mark(self) -> Decimal:
        return self.position_value / abs(self.szi)


@dataclass(frozen=True, slots=True)
class ClearinghouseState:
    margin_summary: MarginSummary
    cross_margin_summary: MarginSummary
    cross_maintenance_margin_used: Decimal | None  # absent in the 2023 format
    withdrawable: Decimal | None
    positions: tuple[PerpPosition, ...]
    time_ms: int | None  # absent in the 2023 format
    skipped: tuple[tuple[str, str], ...] = ()  # (coin or index, why)


def _summary(doc: Any, key: str) -> MarginSummary:
    obj = field(doc, key, "clearinghouseState")
    where = f"clearinghouseState.{key}"
    return MarginSummary(
        account_value=amount(obj, "accountValue", where),
        total_ntl_pos=amount(obj, "totalNtlPos", where),
        total_raw_usd=amount(obj, "totalRawUsd", where),
        total_margin_used=amount(obj, "totalMarginUsed", where),
    )


def decode_position(entry: Any, where: str) -> PerpPosition:
    """One `assetPositions` entry, checked against itself: the venue's pnl and (isolated)
    margin must follow from its size, so a size whose sign disagrees with the rest of the line
    is refused rather than counted the wrong way round.

    May raise: DecodeError.
    """
    kind = field(entry, "type", where)
    if kind != "oneWay":
        raise DecodeError(f"{where}.type: {kind!r} is not a oneWay position")
    body = field(entry, "position", where)
    coin = field(body, "coin", f"{where}.position")
    if not isinstance(coin, str) or not coin:
        raise DecodeError(f"{where}.position.coin: expected a coin name")
    here = f"{where}.position[{coin}]"
    lev = field(body, "leverage", here)
    lev_type = field(lev, "type", f"{here}.leverage")
    if lev_type not in ("cross", "isolated"):
        raise DecodeError(f"{here}.leverage.type: {lev_type!r} is neither cross nor isolated")
    leverage = integer(lev, "value", f"{here}.leverage")
    if leverage < 1:
        raise DecodeError(f"{here}.leverage.value: {leverage} is below 1")
    raw_usd = amount(lev, "rawUsd", f"{here}.leverage") if lev_type == "isolated" else None
    max_leverage = integer(body, "maxLeverage", here) if "maxLeverage" in body else None
    position = PerpPosition(
        coin=coin,
        szi=amount(body, "szi", here),
        entry_px=amount(body, "entryPx", here),
        position_value=amount(body, "positionValue", here),
        unrealized_pnl=amount(body, "unrealizedPnl", here),
        margin_used=amount(body, "marginUsed", here),
        liquidation_px=optional_amount(body, "liquidationPx", here),
        leverage_type=lev_type,
        leverage=leverage,
        raw_usd=raw_usd,
        max_leverage=max_leverage,
    )
    _check_consistent(position, here)
    return position


def _check_consistent(p: PerpPosition, where: str) -> None:
    if p.szi == 0 or p.position_value <= 0 or p.entry_px <= 0:
        raise DecodeError(f"{where}: size {p.szi}, value {p.position_value}, entry {p.entry_px}")
    if p.max_leverage is not None and p.max_leverage < 1:
        raise DecodeError(f"{where}.maxLeverage: {p.max_leverage} is below 1")
    mark = p.mark
    # What the shown digits allow: entryPx, pnl and value are each rounded.
    slack = abs(p.szi) * ulp(p.entry_px) + ulp(p.unrealized_pnl) + 2 * ulp(p.position_value)
    if abs(p.szi * (mark - p.entry_px) - p.unrealized_pnl) > slack:
        raise DecodeError(
            f"{where}: size {p.szi} disagrees with its pnl {p.unrealized_pnl} "
            f"(entry {p.entry_px}, mark {mark})"
        )
    if p.raw_usd is not None:
        margin_slack = ulp(p.raw_usd) + 2 * ulp(p.position_value) + ulp(p.margin_used)
        if abs(p.raw_usd + p.szi * mark - p.margin_used) > margin_slack:
            raise DecodeError(
                f"{where}: size {p.szi} disagrees with its isolated margin "
                f"(rawUsd {p.raw_usd}, marginUsed {p.margin_used})"
            )


def decode_clearinghouse_state(doc: Any) -> ClearinghouseState:
    """A user's perp state. Positions that do not decode are skipped and named.

    May raise: DecodeError (not an object, a summary missing or mistyped, bad time).
    """
    if not isinstance(doc, dict):
        raise DecodeError(f"clearinghouseState: expected an object, got {json_type(doc)}")
    raw_positions = field(doc, "assetPositions", "clearinghouseState")
    if not isinstance(raw_positions, list):
        raise DecodeError("clearinghouseState.assetPositions: expected an array")
    positions: list[PerpPosition] = []
    skipped: list[tuple[str, str]] = []
    for index, entry in enumerate(raw_positions):
        where = f"assetPositions[{index}]"
        try:
            positions.append(decode_position(entry, where))
        except DecodeError as error:
            coin = entry.get("position", {}).get("coin") if isinstance(entry, dict) else None
            label = coin if isinstance(coin, str) else where
            skipped.append((label, str(error)))
    return ClearinghouseState(
        margin_summary=_summary(doc, "marginSummary"),
        cross_margin_summary=_summary(doc, "crossMarginSummary"),
        cross_maintenance_margin_used=optional_amount(
            doc, "crossMaintenanceMarginUsed", "clearinghouseState"
        ),
        withdrawable=optional_amount(doc, "withdrawable", "clearinghouseState"),
        positions=tuple(positions),
        time_ms=integer(doc, "time", "clearinghouseState") if "time" in doc else None,
        skipped=tuple(skipped),
    )


# --- spotClearinghouseState / userAbstraction ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class SpotBalance:
    coin: str
    token: int
    total: Decimal
    hold: Decimal
    entry_ntl: Decimal


@dataclass(frozen=True, slots=True)
class SpotState:
    balances: tuple[SpotBalance, ...]
    skipped: tuple[tuple[str, str], ...] = ()


def decode_spot_state(doc: Any) -> SpotState:
    """A user's spot balances; a balance that does not decode is skipped and named.

    May raise: DecodeError (no balances array).
    """
    raw = field(doc, "balances", "spotClearinghouseState")
    if not isinstance(raw, list):
        raise DecodeError("spotClearinghouseState.balances: expected an array")
    balances: list[SpotBalance] = []
    skipped: list[tuple[str, str]] = []
    for index, entry in enumerate(raw):
        where = f"balances[{index}]"
        try:
            coin = field(entry, "coin", where)
            if not isinstance(coin, str) or not coin:
                raise DecodeError(f"{where}.coin: expected a coin name")
            balances.append(
                SpotBalance(
                    coin=coin,
                    token=integer(entry, "token", where),
                    total=amount(entry, "total", where),
                    hold=amount(entry, "hold", where),
                    entry_ntl=amount(entry, "entryNtl", where),
                )
            )
        except DecodeError as error:
            label = entry.get("coin") if isinstance(entry, dict) else None
            skipped.append((label if isinstance(label, str) else where, str(error)))
    return SpotState(tuple(balances), tuple(skipped))


def decode_user_abstraction(doc: Any) -> str:
    """The account mode, a bare JSON string (`disabled`, `unifiedAccount`, ...).

    May raise: DecodeError (not a string).
    """
    if not isinstance(doc, str) or not doc:
        raise DecodeError(f"userAbstraction: expected a string, got {json_type(doc)}")
    return doc
