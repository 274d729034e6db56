"""Loads the real mainnet accounts copied into tests/fixtures/solana/real_accounts.

Each JSON is byte-for-byte a file of /work/shared/fixtures/solana_real_accounts (the folder's
README.md lists each file and where it came from). `stated_values` are values the upstream
source states; everything else a test asserts is decoded by us and says so.
"""

from __future__ import annotations

import base64
import hashlib
import json
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from pathlib import Path
from typing import Any

REAL_ACCOUNTS = Path(__file__).resolve().parents[2] / "fixtures" / "solana" / "real_accounts"


def real_account(name: str) -> dict[str, Any]:
    fixture: dict[str, Any] = json.loads((REAL_ACCOUNTS / name).read_text())
    return fixture


def real_bytes(name: str) -> bytes:
    """The account data, checked against the fixture's own length and sha256."""
    fixture = real_account(name)
    data = base64.b64decode(fixture["data_base64"])
    assert len(data) == fixture["data_len"]
    assert hashlib.sha256(data).hexdigest() == fixture["data_sha256"]
    return data


def stated(name: str) -> dict[str, Any]:
    """field → stated value (each field is stated once per fixture)."""
    entries = real_account(name)["stated_values"]
    table = {entry["field"]: entry for entry in entries}
    assert len(table) == len(entries), f"{name} states a field twice"
    return table


def i80f48_bits(text: str) -> int:
    """round(Decimal(text) * 2**48): how the source README says a stated I80F48 string compares
    with raw bits (fixed's `I80F48::from_str` rounds to nearest)."""
    with localcontext() as context:
        context.prec = 100
        return int((Decimal(text) * 2**48).to_integral_value(ROUND_HALF_EVEN))


def exact_bits(value: Decimal) -> int:
    """The I80F48 bits of a decoded weight, asserting that the Decimal is exactly bits / 2**48."""
    with localcontext() as context:
        context.prec = 100
        scaled = value * 2**48
    assert scaled == scaled.to_integral_value(), f"{value} is not a multiple of 2**-48"
    return int(scaled)


def with_bytes(data: bytes, offset: int, new: bytes) -> bytes:
    """`data` with `new` written at `offset` (same length)."""
    assert offset + len(new) <= len(data)
    return data[:offset] + new + data[offset + len(new) :]
