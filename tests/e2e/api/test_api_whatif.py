"""What-if over real HTTP: the published book plus proposed changes, through the same engine
as publish and `risk evaluate`; bad changes are 422 naming the change; nothing is written."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx
import psycopg

from aggregator.api.schemas import SimulateResponse
from aggregator.margin import evaluate
from aggregator.risk.document import parse_portfolio
from aggregator.risk.output import result_to_json
from aggregator.store.database import libpq_url
from tests.e2e.api.conftest import CHAIN, ApiWorld
from tests.e2e.conftest import REPO

AAVE = "aave_v3:devnet"


async def _simulate(client: httpx.AsyncClient, user: str, *changes: dict[str, Any]) -> Any:
    response = await client.post(f"/v1/users/{user}/simulate", json={"changes": list(changes)})
    assert response.status_code == 200, response.text
    body = response.json()
    SimulateResponse.model_validate(body)
    return body


def _history_rows(world: ApiWorld) -> int:
    with psycopg.connect(libpq_url(world.database_url)) as conn:
        row = conn.execute("SELECT count(*) FROM margin_status_history").fetchone()
    assert row is not None
    return int(row[0])


async def test_before_is_the_published_status_and_a_borrow_lowers_health(
    world: ApiWorld, client: httpx.AsyncClient
) -> None:
    published = (await client.get("/v1/users/alice/margin")).json()
    rows = _history_rows(world)
    body = await _simulate(
        client,
        "alice",
        {"action": "borrow", "chain": CHAIN, "venue": AAVE, "asset": "USDC", "amount": "10000"},
    )
    before, after = body["before"], body["after"]
    # Before: the same engine on the stored inputs gives the published numbers exactly.
    for key in ("status", "health_factor", "equity_usd", "free_collateral_usd"):
        assert before[key] == published[key], key
    # 10,000 USDC more debt at the maintenance liability weight 1.1 (plus its buffer).
    added = Decimal(after["requirement_usd"]["maint"]) - Decimal(before["requirement_usd"]["maint"])
    assert Decimal("11000") <= added < Decimal("11010")
    assert Decimal(after["health_factor"]) < Decimal(before["health_factor"])
    assert Decimal(body["max_borrow_after"]["USDC"]) < Decimal(
        next(x["max_borrow"] for x in before["limits"] if x["asset"] == "USDC")
    )
    assert body["max_borrow_after"] == {x["asset"]: x["max_borrow"] for x in after["limits"]}
    assert _history_rows(world) == rows  # nothing written


async def test_repay_withdraw_deposit_and_shocks_move_the_book_as_asked(
    client: httpx.AsyncClient,
) -> None:
    base = (await client.get("/v1/users/bob/margin")).json()
    repay = await _simulate(
        client,
        "bob",
        {"action": "repay", "chain": CHAIN, "venue": AAVE, "asset": "USDC", "amount": "24000"},
    )
    assert repay["after"]["health_factor"] is None
    assert repay["after"]["health_factor_reason"] == "no_debt"
    shock = await _simulate(client, "bob", {"action": "price_shock", "change": "-0.5"})
    assert shock["after"]["status"] == "liquidatable"
    weth = {p["asset"]: p for p in shock["after"]["prices"]}["WETH"]
    assert Decimal(weth["price_usd"]) == Decimal(1500)
    one = await _simulate(
        client, "bob", {"action": "price_shock", "asset": "USDC", "change": "0.1"}
    )
    prices = {p["asset"]: p for p in one["after"]["prices"]}
    assert Decimal(prices["USDC"]["price_usd"]) == Decimal("1.1")
    assert Decimal(prices["WETH"]["price_usd"]) == Decimal(3000)
    deposit = await _simulate(
        client, "bob", {"action": "deposit", "chain": CHAIN, "asset": "USDC", "amount": "5000"}
    )
    assert Decimal(deposit["after"]["equity_usd"]) == Decimal(base["equity_usd"]) + 5000
    out = await _simulate(
        client,
        "bob",
        {"action": "withdraw", "chain": CHAIN, "venue": AAVE, "asset": "WETH", "amount": 1},
    )
    assert Decimal(out["after"]["equity_usd"]) == Decimal(base["equity_usd"]) - 3000


async def test_perps_open_resize_and_close_with_realised_pnl(client: httpx.AsyncClient) -> None:
    opened = await _simulate(
        client,
        "alice",
        {
            "action": "open_perp",
            "chain": CHAIN,
            "venue": "perpdex",
            "asset": "ETH",
            "base": "-2",
            "entry_price": "3100",
            "imr": "0.1",
            "mmr": "0.05",
        },
    )
    perp = [line for line in opened["after"]["lines"] if line["kind"] == "perp"]
    assert [(p["amount"], p["pnl_usd"]) for p in perp] == [("-2", "200")]  # short from 3100
    closed = await _simulate(
        client,
        "alice",
        {
            "action": "open_perp",
            "chain": CHAIN,
            "venue": "perpdex",
            "asset": "ETH",
            "base": "-2",
            "entry_price": "3100",
            "imr": "0.1",
            "mmr": "0.05",
        },
        {"action": "resize_perp", "chain": CHAIN, "venue": "perpdex", "asset": "ETH", "base": 1},
        {"action": "close_perp", "chain": CHAIN, "venue": "perpdex", "asset": "ETH"},
    )
    after = closed["after"]
    assert not [line for line in after["lines"] if line["kind"] == "perp"]
    # 2 ETH short closed at 3000 from 3100: +200 USD realised as USDC cash on the venue.
    cash = [
        line for line in after["lines"] if line["venue"] == "perpdex" and line["asset"] == "USDC"
    ]
    assert [line["amount"] for line in cash] == ["200"]


async def test_bad_changes_are_422_naming_the_change(client: httpx.AsyncClient) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        (
            {"action": "borrow", "chain": CHAIN, "venue": AAVE, "asset": "USDC", "amount": "abc"},
            "changes[0].amount",
        ),
        (
            {"action": "borrow", "chain": CHAIN, "venue": AAVE, "asset": "USDC", "amount": "1e400"},
            "changes[0].amount",
        ),
        (
            {"action": "borrow", "chain": CHAIN, "venue": AAVE, "asset": "USDC", "amount": "-5"},
            "changes[0].amount",
        ),
        (
            {"action": "borrow", "chain": "eip155:1", "venue": AAVE, "asset": "USDC", "amount": 1},
            "changes[0].chain",
        ),
        (
            {"action": "borrow", "chain": CHAIN, "venue": AAVE, "asset": "DOGE", "amount": 1},
            "changes[0].asset",
        ),
        (
            {"action": "withdraw", "chain": CHAIN, "venue": AAVE, "asset": "WETH", "amount": 11},
            "changes[0].amount",
        ),
        (
            {"action": "repay", "chain": CHAIN, "venue": AAVE, "asset": "USDC", "amount": 25000},
            "changes[0].amount",
        ),
        ({"action": "borrow", "chain": CHAIN, "asset": "USDC", "amount": 1}, "changes[0].venue"),
        ({"action": "price_shock", "change": "-1"}, "changes[0].change"),
        ({"action": "close_perp", "chain": CHAIN, "venue": "x", "asset": "ETH"}, "changes[0]"),
        ({"action": "teleport"}, "changes[0].action"),
        (
            {"action": "deposit", "chain": CHAIN, "asset": "USDC", "amount": 1, "colour": "red"},
            "changes[0].colour",
        ),
    ]
    for change, field in cases:
        response = await client.post("/v1/users/bob/simulate", json={"changes": [change]})
        assert response.status_code == 422, (change, response.text)
        assert response.json()["error"]["field"] == field, (change, response.json())
    # A JSON number too large for a float (Python reads it as inf): still a 422.
    raw = (
        f'{{"changes": [{{"action": "borrow", "chain": "{CHAIN}", "venue": "{AAVE}", '
        '"asset": "USDC", "amount": 1e400}]}'
    )
    response = await client.post(
        "/v1/users/bob/simulate", content=raw, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == "changes[0].amount"
    many = [{"action": "price_shock", "change": "0"}] * 10_000
    response = await client.post("/v1/users/bob/simulate", json={"changes": many})
    assert response.status_code == 422 and response.json()["error"]["field"] == "changes"
    unknown = await client.post("/v1/users/nobody/simulate", json={"changes": []})
    assert unknown.status_code == 404


async def test_an_inline_portfolio_is_valued_as_risk_evaluate_values_it(
    client: httpx.AsyncClient,
) -> None:
    document = json.loads((REPO / "config" / "examples" / "portfolio.json").read_text())
    expected = result_to_json(evaluate(parse_portfolio(document)))
    response = await client.post(
        "/v1/simulate",
        json={
            "portfolio": document,
            "changes": [{"action": "price_shock", "asset": "SOL", "change": "-0.1"}],
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["before"]["health_factor"] == expected["health_factor"]
    assert body["before"]["equity_usd"] == expected["equity"]
    assert body["before"]["user"] is None and body["before"]["seq"] is None
    # SOL falls 10 %: the 200 SOL on Kamino lose 20 × price, the 100 SOL short gains 10 × price.
    sol = Decimal(document["assets"]["SOL"]["price"])
    moved = Decimal(body["after"]["equity_usd"]) - Decimal(body["before"]["equity_usd"])
    assert moved == -10 * sol

    broken = dict(document, holdings=[{"chain": "ethereum", "asset": "ETH", "amount": "x"}])
    bad = await client.post("/v1/simulate", json={"portfolio": broken})
    assert bad.status_code == 422
    assert bad.json()["error"]["field"] == "portfolio.holdings[0].amount"
