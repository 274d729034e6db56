"""The state of a local HyperCore: perp markets with moving marks, accounts with USD cash,
cross and isolated positions and spot balances, and the info responses built from it in the
recorded schema (fixtures/hyperliquid: key order of the live API, amounts as decimal strings,
leverage.value, maxLeverage, time and token as integers).

The venue's own rules make the numbers: mark value, pnl, cross and isolated margin, maintenance
margin at half the initial margin at max leverage, and the documented liquidation price.
Figures are cut (not rounded) to 6 decimals, as the venue does. Thread-safe behind one lock.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Any, Literal

JSON = dict[str, Any]
_USD = Decimal("0.000001")
_PX = Decimal("0.0000000001")
_ZERO = Decimal(0)
SPOT_TOKEN_IDS = {"USDC": 0, "PURR": 1, "HYPE": 150, "UETH": 221, "USOL": 254, "USDH": 360}
SPOT_COLLATERAL_MODES = ("unifiedAccount", "portfolioMargin")
Corruption = Literal["number_for_string", "flipped_size", "number_in_summary", "unknown_leverage"]


def text(value: Decimal) -> str:
    """A decimal as the venue writes it: no exponent, at least one decimal ("2.0", "0.0").

    May raise: nothing.
    """
    shown = format(value.normalize(), "f") if value != 0 else "0"
    return shown if "." in shown else f"{shown}.0"


def _cut(value: Decimal, unit: Decimal = _USD) -> Decimal:
    return value.quantize(unit, rounding=ROUND_DOWN)


@dataclass
class Market:
    coin: str
    sz_decimals: int
    max_leverage: int
    mark: Decimal
    oracle: Decimal


@dataclass
class Holding:
    coin: str
    szi: Decimal
    entry: Decimal
    mode: Literal["cross", "isolated"]
    leverage: int
    raw_usd: Decimal = _ZERO  # isolated bucket only


@dataclass
class Account:
    raw_usd: Decimal = _ZERO  # cross USD cash (totalRawUsd of the cross summary)
    positions: dict[str, Holding] = field(default_factory=dict)
    spot: dict[str, Decimal] = field(default_factory=dict)
    abstraction: str = "disabled"
    corruption: Corruption | None = None


class World:
    """A HyperCore in memory. `manual_time_ms` freezes the clock there (tests); else wall time."""

    def __init__(self, manual_time_ms: int | None = None) -> None:
        self.lock = threading.RLock()
        self._manual = manual_time_ms
        self.markets: dict[str, Market] = {}
        self.accounts: dict[str, Account] = {}
        self._scheduled: list[tuple[int, str, str, Decimal]] = []

    # --- clock and set-up ------------------------------------------------------------------

    def now_ms(self) -> int:
        """The clock (ms): frozen, or the wall clock. May raise: nothing."""
        with self.lock:
            return self._manual if self._manual is not None else int(time.time() * 1000)

    def advance(self, ms: int) -> None:
        """Move a frozen clock on (a wall clock moves by itself). May raise: nothing."""
        with self.lock:
            if self._manual is not None:
                self._manual += ms

    def add_market(self, coin: str, sz_decimals: int, max_leverage: int, mark: Decimal) -> None:
        """A perp market, its oracle at the mark. May raise: nothing."""
        with self.lock:
            self.markets[coin] = Market(coin, sz_decimals, max_leverage, mark, mark)

    def set_mark(self, coin: str, mark: Decimal, oracle: Decimal | None = None) -> None:
        """Move a market's mark (and oracle). May raise: KeyError (no such market)."""
        with self.lock:
            market = self.markets[coin]
            market.mark = mark
            market.oracle = mark if oracle is None else oracle

    def account(self, user: str) -> Account:
        """The account of `user` (any case), created empty. May raise: nothing."""
        with self.lock:
            return self.accounts.setdefault(user.lower(), Account())

    def deposit(self, user: str, usd: Decimal) -> None:
        """Add USD to the cross cash. May raise: nothing."""
        with self.lock:
            self.account(user).raw_usd += usd

    def open_position(
        self,
        user: str,
        coin: str,
        szi: Decimal,
        entry: Decimal,
        leverage: int,
        isolated_margin: Decimal | None = None,
    ) -> None:
        """A new position paid from the cross cash: cross books the cost against it, isolated
        moves `isolated_margin` into the position's own bucket.


        May raise: nothing.

        """
        with self.lock:
            account = self.account(user)
            if isolated_margin is None:
                account.raw_usd -= szi * entry
                account.positions[coin] = Holding(coin, szi, entry, "cross", leverage)
            else:
                account.raw_usd -= isolated_margin
                raw = isolated_margin - szi * entry
                account.positions[coin] = Holding(coin, szi, entry, "isolated", leverage, raw)

    def credit_spot(self, user: str, coin: str, amount: Decimal, at_ms: int | None = None) -> None:
        """Add to a spot balance now, or at `at_ms` (a change after the current read point).

        May raise: nothing.
        """
        with self.lock:
            if at_ms is not None and at_ms > self.now_ms():
                self._scheduled.append((at_ms, user.lower(), coin, amount))
                return
            spot = self.account(user).spot
            spot[coin] = spot.get(coin, _ZERO) + amount

    def _apply_due(self) -> None:
        now = self.now_ms()
        due = [entry for entry in self._scheduled if entry[0] <= now]
        self._scheduled = [entry for entry in self._scheduled if entry[0] > now]
        for _at, user, coin, amount in due:
            self.credit_spot(user, coin, amount)

    # --- responses -------------------------------------------------------------------------

    def meta_and_asset_ctxs(self) -> list[Any]:
        """The `[meta, assetCtxs]` answer. May raise: nothing."""
        with self.lock:
            universe = [
                {"szDecimals": m.sz_decimals, "name": m.coin, "maxLeverage": m.max_leverage}
                for m in self.markets.values()
            ]
            tables = sorted({m.max_leverage for m in self.markets.values()})
            meta = {
                "universe": [
                    {**entry, "marginTableId": entry["maxLeverage"]} for entry in universe
                ],
                "marginTables": [
                    [
                        lev,
                        {
                            "description": "",
                            "marginTiers": [{"lowerBound": "0.0", "maxLeverage": lev}],
                        },
                    ]
                    for lev in tables
                ],
                "collateralToken": 0,
            }
            contexts = [
                {
                    "funding": "0.0000125",
                    "openInterest": "1000.0",
                    "prevDayPx": text(m.mark),
                    "dayNtlVlm": "0.0",
                    "premium": "0.0",
                    "oraclePx": text(m.oracle),
                    "markPx": text(m.mark),
                    "midPx": text(m.mark),
                    "impactPxs": [text(m.mark), text(m.mark)],
                }
                for m in self.markets.values()
            ]
            return [meta, contexts]

    def clearinghouse_state(self, user: str) -> JSON:
        """A user's perp state by the venue's rules (zero for an unknown user).

        May raise: nothing.
        """
        with self.lock:
            self._apply_due()
            account = self.accounts.get(user.lower(), Account())
            unified = account.abstraction in SPOT_COLLATERAL_MODES
            rows = [self._position(account, h) for h in account.positions.values()]
            cross = [r for r in rows if r["mode"] == "cross"]
            isolated = [r for r in rows if r["mode"] == "isolated"]
            raw = _ZERO if unified else account.raw_usd
            cross_value = raw + sum((r["value"] for r in cross), _ZERO)
            cross_used = sum((r["margin"] for r in cross), _ZERO)
            maintenance = sum((r["maint"] for r in cross), _ZERO)
            for row in cross:
                row["available"] = cross_value - maintenance
            positions = [self._position_json(row) for row in rows]
            iso_used = sum((r["margin"] for r in isolated), _ZERO)
            iso_raw = sum((r["holding"].raw_usd for r in isolated), _ZERO)
            state: JSON = {
                "marginSummary": _summary(
                    cross_value + iso_used,
                    sum((r["ntl"] for r in rows), _ZERO),
                    raw + iso_raw,
                    cross_used + iso_used,
                ),
                "crossMarginSummary": _summary(
                    cross_value, sum((r["ntl"] for r in cross), _ZERO), raw, cross_used
                ),
                "crossMaintenanceMarginUsed": text(_cut(maintenance)),
                "withdrawable": text(_cut(max(_ZERO, cross_value - cross_used))),
                "assetPositions": positions,
                "time": self.now_ms(),
            }
            return _corrupt(state, account.corruption)

    def _position(self, account: Account, holding: Holding) -> dict[str, Any]:
        market = self.markets[holding.coin]
        ntl = abs(holding.szi) * market.mark
        value = holding.szi * market.mark
        maint = ntl / (2 * market.max_leverage)
        if holding.mode == "cross":
            margin = ntl / holding.leverage
            available = _ZERO  # set once the account's cross value is known
        else:
            margin = holding.raw_usd + value
            available = margin - maint
        return {
            "holding": holding,
            "market": market,
            "mode": holding.mode,
            "ntl": ntl,
            "value": value,
            "maint": maint,
            "margin": margin,
            "available": available,
        }

    def _position_json(self, row: dict[str, Any]) -> JSON:
        holding: Holding = row["holding"]
        market: Market = row["market"]
        side = 1 if holding.szi > 0 else -1
        l_ratio = Decimal(1) / (2 * market.max_leverage)
        liq = market.mark - side * row["available"] / abs(holding.szi) / (1 - l_ratio * side)
        pnl = holding.szi * (market.mark - holding.entry)
        leverage: JSON = {"type": holding.mode, "value": holding.leverage}
        if holding.mode == "isolated":
            leverage["rawUsd"] = text(_cut(holding.raw_usd))
        initial = abs(holding.szi) * holding.entry / holding.leverage
        return {
            "type": "oneWay",
            "position": {
                "coin": holding.coin,
                "szi": text(holding.szi),
                "leverage": leverage,
                "entryPx": text(holding.entry),
                "positionValue": text(_cut(row["ntl"])),
                "unrealizedPnl": text(_cut(pnl)),
                "returnOnEquity": text(_cut(pnl / initial, _PX)),
                "liquidationPx": text(_cut(liq, _PX)) if liq > 0 else None,
                "marginUsed": text(_cut(row["margin"])),
                "maxLeverage": market.max_leverage,
                "cumFunding": {"allTime": "0.0", "sinceOpen": "0.0", "sinceChange": "0.0"},
            },
        }

    def spot_clearinghouse_state(self, user: str) -> JSON:
        """A user's spot balances. May raise: nothing."""
        with self.lock:
            self._apply_due()
            account = self.accounts.get(user.lower(), Account())
            balances = [
                {
                    "coin": coin,
                    "token": SPOT_TOKEN_IDS.get(coin, 1000 + index),
                    "total": text(amount),
                    "hold": "0.0",
                    "entryNtl": "0.0",
                }
                for index, (coin, amount) in enumerate(sorted(account.spot.items()))
            ]
            return {"balances": balances}

    def user_abstraction(self, user: str) -> str:
        """A user's account mode. May raise: nothing."""
        with self.lock:
            return self.accounts.get(user.lower(), Account()).abstraction


def _summary(value: Decimal, ntl: Decimal, raw: Decimal, used: Decimal) -> JSON:
    return {
        "accountValue": text(_cut(value)),
        "totalNtlPos": text(_cut(ntl)),
        "totalRawUsd": text(_cut(raw)),
        "totalMarginUsed": text(_cut(used)),
    }


def _corrupt(state: JSON, corruption: Corruption | None) -> JSON:
    """Bad input on demand: the venue (or a proxy) sending what the schema does not allow."""
    positions = state["assetPositions"]
    if corruption == "number_in_summary":
        state["marginSummary"]["accountValue"] = Decimal(state["marginSummary"]["accountValue"])
    elif positions and corruption == "number_for_string":
        positions[0]["position"]["szi"] = Decimal(positions[0]["position"]["szi"])
    elif positions and corruption == "flipped_size":
        position = positions[0]["position"]
        position["szi"] = text(-Decimal(position["szi"]))
    elif positions and corruption == "unknown_leverage":
        positions[0]["position"]["leverage"]["type"] = "long"
    return state
