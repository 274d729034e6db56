"""The real Solana mainnet accounts of tests/fixtures/solana/real_accounts (see its README.md),
loaded for the venue-rules tests, checked against each fixture's own length and sha256."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

REAL_ACCOUNTS = Path(__file__).resolve().parents[2] / "fixtures" / "solana" / "real_accounts"


def fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((REAL_ACCOUNTS / name).read_text())
    return loaded


def real_data(name: str) -> bytes:
    entry = fixture(name)
    data = base64.b64decode(entry["data_base64"])
    assert len(data) == entry["data_len"]
    assert hashlib.sha256(data).hexdigest() == entry["data_sha256"]
    return data


def patched(data: bytes, offset: int, new: bytes) -> bytes:
    """`data` with `new` written at `offset` (same length)."""
    assert offset + len(new) <= len(data)
    return data[:offset] + new + data[offset + len(new) :]
