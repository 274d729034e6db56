"""Loads the Hyperliquid info responses copied into tests/fixtures/hyperliquid (each file has a
`_source`, each case its `source`): the body byte for byte where the case has `response_raw`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chains.hyperliquid.decoders import parse_body

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "hyperliquid"


def cases(name: str) -> list[dict[str, Any]]:
    doc: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return list(doc["cases"])


def case(name: str, case_name: str) -> dict[str, Any]:
    return next(c for c in cases(name) if c["name"] == case_name)


def body_of(entry: dict[str, Any]) -> Any:
    """The response as the adapter parses it: raw bytes when recorded, else the stored JSON."""
    raw = entry.get("response_raw")
    text = raw if isinstance(raw, str) else json.dumps(entry["response"])
    return parse_body(text.encode())


def raw_json(entry: dict[str, Any]) -> Any:
    """The response with its JSON types as recorded (floats kept as the source has none)."""
    raw = entry.get("response_raw")
    return json.loads(raw) if isinstance(raw, str) else entry["response"]
