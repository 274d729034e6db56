"""What-if changes applied to a book document: exact amounts, sides kept apart, errors
naming the change."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from aggregator.risk.whatif import Change, WhatIfError, apply_changes

BOOK: dict[str, Any] = {
    "as_of": "2026-12-01T12:00:00Z",
    "chains": {"c": {}},
    "assets": {
        "ETH": {"price": "3000", "conf": "3", "stable": False},
        "USDC": {"price": "1", "conf": "0", "stable": True},
    },
    "holdings": [
        {"chain": "c", "asset": "ETH", "amount": "2", "venue": "aave"},
        {"chain": "c", "asset": "USDC", "amount": "-1000", "venue": "aave"},
    ],
    "perps": [
        {"chain": "c", "venue": "dex", "asset": "ETH", "base": "1", "entry_price": "2500",
         "imr": "0.1", "mmr": "0.05", "imf": "0"},
    ],
}  # fmt: skip


def _amounts(book: dict[str, Any]) -> dict[tuple[str, str], list[str]]:
    out: dict[tuple[str, str], list[str]] = {}
    for h in book["holdings"]:
        out.setdefault((h["venue"], h["asset"]), []).append(h["amount"])
    return out


def test_borrowing_where_there_is_a_deposit_keeps_a_separate_debt_line() -> None:
    book = apply_changes(BOOK, [Change("borrow", "c", "aave", "ETH", Decimal("0.5"))])
    assert _amounts(book)[("aave", "ETH")] == ["2", "-0.5"]
    assert BOOK["holdings"][0]["amount"] == "2"  # the input is not changed


def test_repay_and_withdraw_reduce_their_own_side_exactly() -> None:
    book = apply_changes(
        BOOK,
        [
            Change("repay", "c", "aave", "USDC", Decimal("999.999999")),
            Change("withdraw", "c", "aave", "ETH", Decimal("2")),
        ],
    )
    assert _amounts(book) == {("aave", "USDC"): ["-0.000001"]}  # fully withdrawn lines go


def test_closing_a_long_realises_its_pnl_in_the_stable_asset() -> None:
    book = apply_changes(BOOK, [Change("close_perp", "c", "dex", "ETH")])
    assert book["perps"] == []
    assert _amounts(book)[("dex", "USDC")] == ["500"]  # 1 ETH from 2500 to 3000


def test_growing_a_perp_averages_the_entry_and_flipping_it_reopens_at_mark() -> None:
    grown = apply_changes(BOOK, [Change("resize_perp", "c", "dex", "ETH", base=Decimal(1))])
    assert (grown["perps"][0]["base"], grown["perps"][0]["entry_price"]) == ("2", "2750")
    flipped = apply_changes(BOOK, [Change("resize_perp", "c", "dex", "ETH", base=Decimal(-3))])
    assert (flipped["perps"][0]["base"], flipped["perps"][0]["entry_price"]) == ("-2", "3000")
    assert _amounts(flipped)[("dex", "USDC")] == ["500"]


def test_a_realised_loss_beyond_the_cash_becomes_a_debt() -> None:
    short = dict(BOOK, perps=[dict(BOOK["perps"][0], base="-1")])
    book = apply_changes(short, [Change("close_perp", "c", "dex", "ETH")])
    assert _amounts(book)[("dex", "USDC")] == ["-500"]


def test_a_uniform_shock_moves_risky_prices_and_their_confidence() -> None:
    book = apply_changes(BOOK, [Change("price_shock", change=Decimal("-0.25"))])
    assert (book["assets"]["ETH"]["price"], book["assets"]["ETH"]["conf"]) == ("2250", "2.25")
    assert book["assets"]["USDC"]["price"] == "1"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (Change("withdraw", "c", "aave", "ETH", Decimal(3)), "changes[0].amount"),
        (Change("repay", "c", "aave", "USDC", Decimal(2000)), "changes[0].amount"),
        (Change("borrow", "c", "wallet", "USDC", Decimal(1)), "changes[0].venue"),
        (Change("deposit", "x", "aave", "USDC", Decimal(1)), "changes[0].chain"),
        (Change("deposit", "c", "aave", "DOGE", Decimal(1)), "changes[0].asset"),
        (Change("deposit", "c", "aave", "USDC", Decimal(0)), "changes[0].amount"),
        (Change("open_perp", "c", "dex", "ETH", base=Decimal(1)), "changes[0]"),
        (Change("open_perp", "c", "new", "USDC", base=Decimal(1)), "changes[0].imr"),
        (Change("price_shock", change=Decimal(-1)), "changes[0].change"),
    ],
)
def test_impossible_changes_name_the_field(change: Change, field: str) -> None:
    with pytest.raises(WhatIfError) as refused:
        apply_changes(BOOK, [change])
    assert refused.value.field == field
