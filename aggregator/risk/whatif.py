"""What-if: proposed changes applied to a portfolio document (the `risk evaluate` input).

Pure: a document and a list of changes in, a new document out, for the same engine that
publishes and that `xmargin risk evaluate` runs. Nothing here reads a chain or the database.

Changes (chains and assets are the names the document uses: CAIP-2 ids in published inputs):
- `deposit` / `withdraw` an `amount` of an asset on a chain and venue (`wallet` by default);
  a withdrawal cannot exceed what the venue holds.
- `borrow` / `repay` an `amount` on a lending venue (not `wallet`); a repayment cannot exceed
  what is owed.
- `open_perp` (a signed `base` on a venue; entry at the asset's price unless given; margin
  terms from an existing perp of that asset on the venue unless given), `resize_perp` (a signed
  `base` change), `close_perp`. Reducing or closing realises pnl at the asset's price into the
  venue's first stable asset (USDC, say) as cash.
- `price_shock` of one asset (`asset`, `change` = -0.2 for -20 %) or of every non-stable asset
  (`asset` omitted). Shocked prices keep their confidence ratio.

Errors name the change (`changes[3].amount`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

Action = Literal[
    "deposit",
    "withdraw",
    "borrow",
    "repay",
    "open_perp",
    "resize_perp",
    "close_perp",
    "price_shock",
]

_ZERO = Decimal(0)
_ONE = Decimal(1)


class WhatIfError(ValueError):
    """A change that cannot be applied; `field` names it (`changes[2].amount`)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class Change:
    """One proposed change; which fields matter depends on `action` (module docstring)."""

    action: Action
    chain: str | None = None
    venue: str | None = None
    asset: str | None = None
    amount: Decimal | None = None
    base: Decimal | None = None
    entry_price: Decimal | None = None
    imr: Decimal | None = None
    mmr: Decimal | None = None
    imf: Decimal | None = None
    change: Decimal | None = None


def _number(text: Any) -> Decimal:
    try:
        return Decimal(str(text))
    except (InvalidOperation, ValueError):
        return _ZERO


def _text(value: Decimal) -> str:
    out = format(value, "f")
    if "." in out:
        out = out.rstrip("0").rstrip(".")
    return "0" if out in ("-0", "") else out


class _Book:
    """The document being changed, with lookups by (chain, venue, asset)."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.doc = copy.deepcopy(document)
        self.doc.setdefault("holdings", [])
        self.doc.setdefault("perps", [])
        self.chains: dict[str, Any] = self.doc.get("chains") or {}
        self.assets: dict[str, Any] = self.doc.get("assets") or {}

    def chain(self, change: Change, path: str) -> str:
        if change.chain is None:
            raise WhatIfError(f"{path}.chain", "required")
        if change.chain not in self.chains:
            known = ", ".join(sorted(self.chains)) or "none"
            raise WhatIfError(f"{path}.chain", f"the book has no chain {change.chain} ({known})")
        return change.chain

    def asset(self, change: Change, path: str) -> str:
        if change.asset is None:
            raise WhatIfError(f"{path}.asset", "required")
        if change.asset not in self.assets:
            raise WhatIfError(f"{path}.asset", f"unknown asset {change.asset}")
        return change.asset

    def price(self, asset: str) -> Decimal:
        return _number(self.assets[asset].get("price"))

    def held(self, chain: str, venue: str, asset: str, sign: int) -> Decimal:
        """What the venue holds (sign +1) or is owed (sign -1) of the asset, as a positive
        amount."""
        total = _ZERO
        for h in self.doc["holdings"]:
            if (h["chain"], h.get("venue", "wallet"), h["asset"]) == (chain, venue, asset):
                amount = _number(h["amount"])
                if amount * sign > 0:
                    total += abs(amount)
        return total

    def adjust(self, chain: str, venue: str, asset: str, side: int, delta: Decimal) -> None:
        """Change the venue's lines of the asset on one side (+1 held, -1 owed) by the signed
        `delta`; a side reduced past zero continues on the other side (a loss larger than
        the cash becomes a debt)."""
        lines = [
            h
            for h in self.doc["holdings"]
            if (h["chain"], h.get("venue", "wallet"), h["asset"]) == (chain, venue, asset)
            and _number(h["amount"]) * side > 0
        ]
        if delta * side > 0:  # growing this side
            if lines:
                lines[0]["amount"] = _text(_number(lines[0]["amount"]) + delta)
            else:
                self.doc["holdings"].append(
                    {"chain": chain, "asset": asset, "amount": _text(delta), "venue": venue}
                )
            return
        remaining = delta  # shrinking: take from each line of this side in turn
        for h in lines:
            amount = _number(h["amount"])
            step = -amount if abs(remaining) >= abs(amount) else remaining
            h["amount"] = _text(amount + step)
            remaining -= step
            if remaining == 0:
                return
        if remaining != 0:
            self.adjust(chain, venue, asset, -side, remaining)

    def perp(self, chain: str, venue: str, asset: str) -> dict[str, Any] | None:
        for p in self.doc["perps"]:
            if (p["chain"], p["venue"], p["asset"]) == (chain, venue, asset):
                return p  # type: ignore[no-any-return]
        return None

    def cash_asset(self, path: str) -> str:
        for symbol, asset in sorted(self.assets.items()):
            if asset.get("stable"):
                return symbol
        raise WhatIfError(path, "the book has no stable asset to settle perp pnl in")


def _positive(value: Decimal | None, path: str) -> Decimal:
    if value is None:
        raise WhatIfError(path, "required")
    if value <= 0:
        raise WhatIfError(path, "must be positive")
    return value


def _lending(book: _Book, change: Change, path: str) -> None:
    chain = book.chain(change, path)
    asset = book.asset(change, path)
    venue = change.venue or "wallet"
    amount = _positive(change.amount, f"{path}.amount")
    if change.action == "deposit":
        book.adjust(chain, venue, asset, +1, amount)
        return
    if change.action == "withdraw":
        held = book.held(chain, venue, asset, +1)
        if amount > held:
            raise WhatIfError(
                f"{path}.amount", f"exceeds the {_text(held)} {asset} held on {venue} at {chain}"
            )
        book.adjust(chain, venue, asset, +1, -amount)
        return
    if venue == "wallet":
        raise WhatIfError(f"{path}.venue", "borrowing and repaying need a lending venue")
    if change.action == "borrow":
        book.adjust(chain, venue, asset, -1, -amount)
        return
    owed = book.held(chain, venue, asset, -1)
    if amount > owed:
        raise WhatIfError(
            f"{path}.amount", f"exceeds the {_text(owed)} {asset} owed on {venue} at {chain}"
        )
    book.adjust(chain, venue, asset, -1, amount)


def _realise(book: _Book, chain: str, venue: str, pnl: Decimal, path: str) -> None:
    if pnl != 0:
        book.adjust(chain, venue, book.cash_asset(path), +1, pnl)


def _perp_change(book: _Book, change: Change, path: str) -> None:
    chain = book.chain(change, path)
    asset = book.asset(change, path)
    if change.venue is None:
        raise WhatIfError(f"{path}.venue", "required")
    venue = change.venue
    mark = book.price(asset)
    existing = book.perp(chain, venue, asset)
    if change.action == "open_perp":
        base = change.base
        if base is None or base == 0:
            raise WhatIfError(f"{path}.base", "required, and not 0")
        entry = change.entry_price if change.entry_price is not None else mark
        if entry <= 0:
            raise WhatIfError(f"{path}.entry_price", "must be positive")
        if existing is not None:
            raise WhatIfError(path, f"a {asset} perp is already open on {venue}: resize it")
        terms = _terms(book, change, venue, asset, path)
        book.doc["perps"].append(
            {
                "chain": chain,
                "venue": venue,
                "asset": asset,
                "base": _text(base),
                "entry_price": _text(entry),
                **terms,
            }
        )
        return
    if existing is None:
        raise WhatIfError(path, f"no {asset} perp is open on {venue} at {chain}")
    old_base = _number(existing["base"])
    old_entry = _number(existing["entry_price"])
    if change.action == "close_perp":
        new_base = _ZERO
    else:
        if change.base is None or change.base == 0:
            raise WhatIfError(f"{path}.base", "required (the signed change of size), and not 0")
        new_base = old_base + change.base
    if new_base == 0:
        _realise(book, chain, venue, old_base * (mark - old_entry), path)
        book.doc["perps"].remove(existing)
        return
    if old_base * new_base < 0:  # flipped: the old side closes, the new one opens at mark
        _realise(book, chain, venue, old_base * (mark - old_entry), path)
        existing["entry_price"] = _text(mark)
    elif abs(new_base) > abs(old_base):  # grown: the entry is the size-weighted average
        added = new_base - old_base
        existing["entry_price"] = _text((old_base * old_entry + added * mark) / new_base)
    else:  # reduced: the closed part realises its pnl, the entry stays
        closed = old_base - new_base
        _realise(book, chain, venue, closed * (mark - old_entry), path)
    existing["base"] = _text(new_base)


def _terms(book: _Book, change: Change, venue: str, asset: str, path: str) -> dict[str, str]:
    template = next(
        (p for p in book.doc["perps"] if p["venue"] == venue and p["asset"] == asset), None
    ) or next((p for p in book.doc["perps"] if p["venue"] == venue), None)
    imr = change.imr if change.imr is not None else template and _number(template["imr"])
    mmr = change.mmr if change.mmr is not None else template and _number(template["mmr"])
    imf = change.imf if change.imf is not None else template and _number(template.get("imf", 0))
    if imr is None or mmr is None:
        raise WhatIfError(f"{path}.imr", f"required: no {asset} perp on {venue} to take it from")
    return {"imr": _text(imr), "mmr": _text(mmr), "imf": _text(imf or _ZERO)}


def _shock(book: _Book, change: Change, path: str) -> None:
    if change.change is None:
        raise WhatIfError(f"{path}.change", "required (e.g. -0.2 for a 20 % fall)")
    if change.change <= -1:
        raise WhatIfError(f"{path}.change", "must be above -1 (a price cannot reach 0)")
    factor = _ONE + change.change
    if change.asset is not None:
        targets = [book.asset(change, path)]
    else:
        targets = [s for s, a in book.assets.items() if not a.get("stable")]
    for symbol in targets:
        asset = book.assets[symbol]
        asset["price"] = _text(_number(asset["price"]) * factor)
        asset["conf"] = _text(_number(asset.get("conf", 0)) * factor)


def apply_changes(document: dict[str, Any], changes: list[Change]) -> dict[str, Any]:
    """A copy of the portfolio `document` with `changes` applied in order.

    May raise: WhatIfError naming the offending change.
    """
    book = _Book(document)
    for i, change in enumerate(changes):
        path = f"changes[{i}]"
        if change.action in ("deposit", "withdraw", "borrow", "repay"):
            _lending(book, change, path)
        elif change.action in ("open_perp", "resize_perp", "close_perp"):
            _perp_change(book, change, path)
        else:
            _shock(book, change, path)
    book.doc["holdings"] = [h for h in book.doc["holdings"] if _number(h["amount"]) != 0]
    return book.doc
