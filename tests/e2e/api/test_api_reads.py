"""Reads over real HTTP: statuses by user, by account and in batches, history pages, assets,
chains, users — with the conventions front ends rely on (decimal strings, CAIP ids, ETag)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import psycopg

from aggregator.api.schemas import (
    AssetList,
    BatchResponse,
    ChainList,
    HistoryPage,
    MarginStatus,
    UserPage,
)
from aggregator.store.database import libpq_url
from tests.e2e.api.conftest import ALICE, BOB, CHAIN, ApiWorld


def _stored(world: ApiWorld, user: str) -> dict[str, Any]:
    """The user's latest row as the store has it (what the API must serve)."""
    with psycopg.connect(libpq_url(world.database_url)) as conn:
        row = conn.execute(
            "SELECT seq, status, health_factor, equity_usd, free_collateral_usd "
            "FROM margin_status WHERE user_id = %s",
            (world.users[user],),
        ).fetchone()
    assert row is not None
    seq, status, hf, equity, free = row
    return {"seq": seq, "status": status, "hf": hf, "equity": equity, "free": free}


async def test_a_users_status_is_the_published_one_in_the_api_conventions(
    world: ApiWorld, client: httpx.AsyncClient
) -> None:
    response = await client.get("/v1/users/bob/margin")
    assert response.status_code == 200
    body = response.json()
    MarginStatus.model_validate(body)  # the OpenAPI model describes what is sent
    stored = _stored(world, "bob")
    assert body["seq"] == stored["seq"] and body["status"] == stored["status"]
    assert Decimal(body["health_factor"]) == stored["hf"]
    assert Decimal(body["equity_usd"]) == stored["equity"]
    assert body["health_factor_reason"] is None
    assert response.headers["etag"] == f'"{world.users["bob"]}-{stored["seq"]}"'
    assert "max-age" in response.headers["cache-control"]
    # CAIP ids and exact raw amounts: bob owes 24,000 USDC and supplies 10 WETH.
    assert body["accounts"] == [f"{CHAIN}:{BOB}"]
    holdings = {(h["asset"], h["kind"]): h for h in body["holdings"]}
    assert holdings[("USDC", "borrow")]["amount_raw"] == "-24000000000"
    assert holdings[("USDC", "borrow")]["decimals"] == 6
    assert holdings[("WETH", "deposit")]["amount"] == "10"
    # Freshness of every input: the read block and the price time.
    (chain,) = body["chains"]
    assert chain["chain"] == CHAIN and isinstance(chain["height"], int)
    assert chain["block_time"].endswith("Z") and chain["stale"] is False
    prices = {p["asset"]: p for p in body["prices"]}
    assert prices["WETH"]["valid"] is True and prices["WETH"]["price_usd"] == "3000"
    # Liquidation price of WETH exists for a borrower; limits are per asset.
    weth = next(p for p in body["liquidation_prices"] if p["asset"] == "WETH")
    assert Decimal(weth["liquidation_price_usd"]) < Decimal(3000)
    assert weth["liquidation_price_usd_reason"] is None
    assert {limit["asset"] for limit in body["limits"]} >= {"USDC", "WETH", "ETH"}


async def test_no_sentinels_a_missing_number_is_null_with_its_reason(
    client: httpx.AsyncClient,
) -> None:
    # alice borrows 3,000 USDC against far more collateral: no price of USDC liquidates her.
    body = (await client.get("/v1/users/alice/margin")).json()
    for entry in body["liquidation_prices"]:
        if entry["liquidation_price_usd"] is None:
            assert entry["liquidation_price_usd_reason"] in {
                "no_debt",
                "no_exposure",
                "price_invalid",
                "stale",
                "unreachable",
            }
    assert body["health_factor"] is not None


async def test_user_is_reached_by_name_or_id_and_unknown_users_are_404_json(
    world: ApiWorld, client: httpx.AsyncClient
) -> None:
    by_id = await client.get(f"/v1/users/{world.users['alice']}/margin")
    assert by_id.status_code == 200 and by_id.json()["user"] == "alice"
    missing = await client.get("/v1/users/nobody/margin")
    assert missing.status_code == 404
    assert missing.json() == {
        "error": {"code": "not_found", "message": "no user 'nobody'", "field": "user"}
    }
    unpublished = await client.get("/v1/users/carol/margin")
    assert unpublished.status_code == 404
    assert unpublished.json()["error"]["code"] == "no_status"


async def test_etag_gives_304_until_a_publish_makes_a_new_version(
    world: ApiWorld, client: httpx.AsyncClient
) -> None:
    first = await client.get("/v1/users/alice/margin")
    etag = first.headers["etag"]
    again = await client.get("/v1/users/alice/margin", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    await world.republish()
    after = await client.get("/v1/users/alice/margin", headers={"If-None-Match": etag})
    assert after.status_code == 200
    assert after.json()["seq"] == first.json()["seq"] + 1
    assert after.headers["etag"] != etag


async def test_an_account_reaches_its_users_status_by_caip10(
    world: ApiWorld, client: httpx.AsyncClient
) -> None:
    response = await client.get(f"/v1/accounts/{CHAIN}:{ALICE}/margin")
    assert response.status_code == 200 and response.json()["user"] == "alice"
    lower = await client.get(f"/v1/accounts/{CHAIN}:{ALICE.lower()}/margin")
    assert lower.status_code == 200 and lower.json()["user_id"] == world.users["alice"]


async def test_bad_account_ids_are_4xx_naming_the_field(client: httpx.AsyncClient) -> None:
    wrong_case = ALICE[:2] + ALICE[2:].swapcase()
    cases = {
        "eip155:31337": 422,  # no address
        "not-caip:x": 422,
        f"eip155:31337:{wrong_case}": 422,  # mixed case with a bad checksum
        "eip155:31337:0x1234": 422,
        f"eip155:999:{ALICE}": 404,  # a chain that is not configured
        f"{CHAIN}:0x000000000000000000000000000000000000dEaD": 404,  # nobody linked it
    }
    for account, status in cases.items():
        response = await client.get(f"/v1/accounts/{account}/margin")
        assert response.status_code == status, (account, response.text)
        assert response.json()["error"]["field"] == "account"


async def test_batch_returns_each_status_or_its_error_in_order(
    world: ApiWorld, client: httpx.AsyncClient
) -> None:
    response = await client.post(
        "/v1/margin:batch",
        json={"users": ["alice", "nobody", "carol"], "accounts": [f"{CHAIN}:{BOB}", "x:y"]},
    )
    assert response.status_code == 200
    body = response.json()
    BatchResponse.model_validate(body)
    results = body["results"]
    assert [r["request"] for r in results] == ["alice", "nobody", "carol", f"{CHAIN}:{BOB}", "x:y"]
    assert results[0]["status"]["user"] == "alice" and results[0]["error"] is None
    assert results[1]["error"]["code"] == "not_found" and results[1]["error"]["field"] == "users[1]"
    assert results[2]["error"]["code"] == "no_status"
    assert results[3]["status"]["user"] == "bob"
    assert results[4]["error"]["field"] == "accounts[1]"
    # The same status as the single read.
    single = (await client.get("/v1/users/alice/margin")).json()
    assert results[0]["status"] == single


async def test_batch_limits(client: httpx.AsyncClient) -> None:
    too_many = await client.post("/v1/margin:batch", json={"users": ["alice"] * 101})
    assert too_many.status_code == 422
    assert too_many.json()["error"] == {
        "code": "too_many",
        "message": "101 users and accounts: at most 100 per batch",
        "field": "users",
    }
    exactly = await client.post("/v1/margin:batch", json={"users": ["alice"] * 100})
    assert exactly.status_code == 200 and len(exactly.json()["results"]) == 100
    empty = await client.post("/v1/margin:batch", json={})
    assert empty.status_code == 422 and empty.json()["error"]["field"] == "users"
    wrong_type = await client.post("/v1/margin:batch", json={"users": "alice"})
    assert wrong_type.status_code == 422 and wrong_type.json()["error"]["field"] == "users"


async def test_history_pages_by_cursor_with_limit_and_time_range(
    world: ApiWorld, client: httpx.AsyncClient
) -> None:
    # Three material changes of alice's equity: ETH moves 10 % each time.
    for price in (3_300_00000000, 3_630_00000000, 3_000_00000000):
        await world.republish(eth_price=price)
    full = await client.get("/v1/users/alice/margin/history", params={"limit": 50})
    assert full.status_code == 200
    everything = full.json()
    HistoryPage.model_validate(everything)
    items = everything["items"]
    assert len(items) >= 4 and everything["next_cursor"] is None
    seqs = [item["seq"] for item in items]
    assert seqs == sorted(seqs, reverse=True)  # newest first

    pages: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/v1/users/alice/margin/history", params=params)).json()
        assert len(page["items"]) <= 2  # the limit is honoured
        pages += [item["seq"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == seqs  # every change exactly once, in order

    middle = items[1]["as_of"]
    since = await client.get("/v1/users/alice/margin/history", params={"since": middle})
    assert [i["seq"] for i in since.json()["items"]] == seqs[:2]
    until = await client.get("/v1/users/alice/margin/history", params={"until": middle})
    assert [i["seq"] for i in until.json()["items"]] == seqs[2:]


async def test_history_refuses_tampered_cursors_and_bad_ranges(
    world: ApiWorld, client: httpx.AsyncClient
) -> None:
    first = (await client.get("/v1/users/alice/margin/history", params={"limit": 1})).json()
    cursor = first["next_cursor"]
    assert cursor
    tampered = cursor[:-2] + ("AA" if cursor[-2:] != "AA" else "BB")
    for params, field in (
        ({"cursor": tampered}, "cursor"),
        ({"cursor": "not a cursor"}, "cursor"),
        ({"limit": 0}, "limit"),
        ({"limit": 51}, "limit"),  # over [api] history_max_limit
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "until"),
    ):
        response = await client.get("/v1/users/alice/margin/history", params=params)
        assert response.status_code == 422, (params, response.text)
        assert response.json()["error"]["field"] == field
    # A cursor of alice's history means nothing on bob's.
    other = await client.get("/v1/users/bob/margin/history", params={"cursor": cursor})
    assert other.status_code == 422 and other.json()["error"]["code"] == "invalid_cursor"


async def test_assets_list_the_configured_risk_parameters(
    world: ApiWorld, client: httpx.AsyncClient
) -> None:
    response = await client.get("/v1/assets")
    assert response.status_code == 200 and "public" in response.headers["cache-control"]
    body = response.json()
    AssetList.model_validate(body)
    assets = {a["symbol"]: a for a in body["items"]}
    configured = world.config.assets["USDC"]
    usdc = assets["USDC"]
    assert usdc["stable"] is True
    assert Decimal(usdc["maint_liability_weight"]) == configured.maint_liability_weight
    assert usdc["deployments"] == [
        {
            "chain": CHAIN,
            "address": configured.deployments["local"].address,
            "decimals": 6,
            "token_program": None,
        }
    ]
    assert usdc["price_source"]["kind"] == "chainlink" and usdc["price_source"]["chain"] == CHAIN


async def test_chains_show_the_head_its_age_and_the_last_poll(
    world: ApiWorld, client: httpx.AsyncClient
) -> None:
    await world.republish()
    with psycopg.connect(libpq_url(world.database_url)) as conn:
        row = conn.execute(
            "SELECT height, hash FROM chain_heads ORDER BY id DESC LIMIT 1"
        ).fetchone()
    assert row is not None
    body = (await client.get("/v1/chains")).json()
    ChainList.model_validate(body)
    (chain,) = body["items"]
    assert (chain["chain"], chain["key"], chain["family"]) == (CHAIN, "local", "evm")
    assert (chain["height"], chain["block_hash"]) == (row[0], row[1])
    assert chain["stale"] is False and Decimal(chain["age_seconds"]) >= 0
    assert chain["last_poll"]["ok"] is True and chain["last_poll"]["height"] == row[0]


async def test_users_are_listed_in_pages(world: ApiWorld, client: httpx.AsyncClient) -> None:
    first = (await client.get("/v1/users", params={"limit": 2})).json()
    UserPage.model_validate(first)
    assert [u["user"] for u in first["items"]] == ["alice", "bob"]
    assert first["items"][0]["accounts"] == [f"{CHAIN}:{ALICE}"]
    rest = (await client.get("/v1/users", params={"cursor": first["next_cursor"]})).json()
    assert [u["user"] for u in rest["items"]] == ["carol"] and rest["next_cursor"] is None


async def test_a_cached_status_is_answered_exactly_as_the_full_route_answers_it(
    world: ApiWorld, client: httpx.AsyncClient
) -> None:
    await world.republish()  # the next read misses the cache: the framework's route
    first = await client.get("/v1/users/bob/margin")
    again = await client.get("/v1/users/bob/margin")  # now from the fast path
    assert again.status_code == first.status_code == 200
    assert again.content == first.content
    strip = {"date", "server"}
    assert {k: v for k, v in again.headers.items() if k not in strip} == {
        k: v for k, v in first.headers.items() if k not in strip
    }
    etag = first.headers["etag"]
    not_modified = [
        await client.get("/v1/users/bob/margin", headers={"If-None-Match": etag}) for _ in range(2)
    ]
    assert [r.status_code for r in not_modified] == [304, 304]
    assert not_modified[0].headers["etag"] == etag
    hits = (await client.get("/metrics")).text
    route = 'route="/v1/users/{user}/margin"'
    counted = [line for line in hits.splitlines() if "requests_total" in line and route in line]
    assert any('status="304"' in line for line in counted), counted
    assert 'xmargin_status_cache_lookups_total{result="hit"}' in hits
    # With an Origin the answer goes through the CORS layer: same body, plus CORS headers.
    cors = await client.get("/v1/users/bob/margin", headers={"Origin": "http://front.example"})
    assert cors.content == first.content
    assert cors.headers["access-control-allow-origin"] == "http://front.example"
