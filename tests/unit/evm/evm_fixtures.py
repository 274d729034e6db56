"""Loads the real-data fixtures under tests/fixtures/evm/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "evm"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())
