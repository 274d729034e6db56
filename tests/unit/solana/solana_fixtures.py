"""Loads the real Solana fixtures copied into tests/fixtures/solana (each has a `_source`)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "solana"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def b64(text: str) -> bytes:
    return base64.b64decode(text)
