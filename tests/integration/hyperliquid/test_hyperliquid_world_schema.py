"""The local Hyperliquid world answers in the recorded schema: over real HTTP, its responses
have the key sets and JSON value types of the captured ones (tests/fixtures/hyperliquid)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from chains.hyperliquid.localnet import LocalHyperliquid, World, demo_address, seed_demo_world

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "hyperliquid"


def recorded(file: str, name: str) -> Any:
    entry = next(c for c in json.loads((FIXTURES / file).read_text())["cases"] if c["name"] == name)
    raw = entry.get("response_raw")
    return json.loads(raw) if isinstance(raw, str) else entry["response"]


def shape(value: Any) -> Any:
    """Key sets and JSON types, recursively (arrays by their first element)."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return "null" if value is None else type(value).__name__


@pytest.fixture(scope="module")
def venue() -> Iterator[LocalHyperliquid]:
    with LocalHyperliquid(World(manual_time_ms=1_764_000_000_000)) as local:
        seed_demo_world(local.world)
        yield local


def ask(venue: LocalHyperliquid, body: dict[str, str]) -> Any:
    response = httpx.post(venue.url, json=body)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    return response.json()


def test_clearinghouse_state_has_the_live_schema(venue: LocalHyperliquid) -> None:
    live = recorded("clearinghouse_state.json", "jkorf_hype_isolated_long")
    ccxt_cross = recorded("clearinghouse_state.json", "ccxt_fetch_positions_cross_two_longs")

    ours = ask(venue, {"type": "clearinghouseState", "user": demo_address("alice")})

    assert list(ours) == list(live)  # same keys, in the live API's order
    for key in ("marginSummary", "crossMarginSummary"):
        assert shape(ours[key]) == shape(live[key])
    assert shape(ours["time"]) == shape(live["time"]) == "int"
    by_mode = {p["position"]["leverage"]["type"]: p for p in ours["assetPositions"]}
    # isolated: exactly the captured isolated position's keys and types
    assert shape(by_mode["isolated"]) == shape(live["assetPositions"][0])
    # cross: the captured cross position's keys (leverage without rawUsd), the live types
    cross, captured_cross = (
        by_mode["cross"]["position"],
        ccxt_cross["assetPositions"][0]["position"],
    )
    assert set(cross) == set(captured_cross)
    assert set(cross["leverage"]) == set(captured_cross["leverage"]) == {"type", "value"}
    live_types = shape(live["assetPositions"][0]["position"])
    for key, kind in shape(cross).items():
        expected = live_types[key]
        if key == "leverage":
            expected = {k: v for k, v in expected.items() if k != "rawUsd"}
        assert kind == expected or (key == "liquidationPx" and kind == "null"), key


def test_spot_state_has_the_live_schema(venue: LocalHyperliquid) -> None:
    live = recorded("spot_clearinghouse_state.json", "jkorf_usdc_hype_as_captured")

    ours = ask(venue, {"type": "spotClearinghouseState", "user": demo_address("alice")})

    assert shape(ours) == shape(live)
    assert {b["coin"]: b["token"] for b in ours["balances"]} == {"HYPE": 150, "USDC": 0}


def test_meta_and_asset_ctxs_has_the_documented_schema(venue: LocalHyperliquid) -> None:
    docs = recorded("meta.json", "docs_meta_and_asset_ctxs")

    meta, contexts = ask(venue, {"type": "metaAndAssetCtxs"})

    assert set(meta) == set(docs[0])
    documented_keys = {"name", "szDecimals", "maxLeverage", "marginTableId", "onlyIsolated"}
    for entry in meta["universe"]:
        assert set(entry) <= documented_keys
        assert {k: shape(v) for k, v in entry.items() if k in docs[0]["universe"][0]} == shape(
            docs[0]["universe"][0]
        )
    assert shape(meta["marginTables"]) == shape(docs[0]["marginTables"])
    assert len(contexts) == len(meta["universe"])
    assert all(shape(ctx) == shape(docs[1][0]) for ctx in contexts)


def test_user_abstraction_is_a_bare_string(venue: LocalHyperliquid) -> None:
    assert ask(venue, {"type": "userAbstraction", "user": demo_address("bob")}) == "disabled"


def test_a_request_it_does_not_know_gets_422(venue: LocalHyperliquid) -> None:
    response = httpx.post(venue.url, json={"type": "nope"})
    assert response.status_code == 422
