"""The live stream over real HTTP: a snapshot on connect, one event per material change fed
by the store's NOTIFY, resume by Last-Event-ID with no gap, heartbeats, and a client that never
reads harming nobody."""

from __future__ import annotations

import asyncio
import socket
from urllib.parse import urlparse

import httpx
import pytest

from tests.e2e.api.conftest import ApiWorld
from tests.e2e.api.sse import EventReader


async def _current(client: httpx.AsyncClient, user: str) -> dict[str, object]:
    response = await client.get(f"/v1/users/{user}/margin")
    assert response.status_code == 200
    body: dict[str, object] = response.json()
    return body


async def test_snapshot_on_connect_then_each_material_change(
    world: ApiWorld, client: httpx.AsyncClient
) -> None:
    current = await _current(client, "alice")
    async with client.stream("GET", "/v1/stream", params={"user": "alice"}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = EventReader(response)
        snapshot = await events.next_status()
        assert snapshot.id == str(current["seq"])
        assert snapshot.json() == current
        # Quiet for a while: heartbeats keep the connection open ([api] heartbeat = 1 s).
        await asyncio.sleep(1.5)
        # ETH up 10 %: alice's equity moves well past the 1 % threshold.
        await world.republish(eth_price=3_300_00000000)
        change = await events.next_status()
        assert change.event == "status"
        assert int(change.id or 0) > int(snapshot.id)
        assert change.json() == await _current(client, "alice")
        assert change.json()["equity_usd"] != snapshot.json()["equity_usd"]
        assert any(c.startswith(": heartbeat") for c in events.comments)
    await world.republish(eth_price=3_000_00000000)


async def test_resume_with_last_event_id_replays_exactly_what_was_missed(
    world: ApiWorld, client: httpx.AsyncClient
) -> None:
    async with client.stream("GET", "/v1/stream", params={"user": "alice"}) as response:
        last = (await EventReader(response).next_status()).id
    assert last is not None
    # Two material changes while the client is away.
    await world.republish(eth_price=3_450_00000000)
    await world.republish(eth_price=3_000_00000000)
    history = (await client.get("/v1/users/alice/margin/history", params={"limit": 10})).json()[
        "items"
    ]
    missed = sorted(item["seq"] for item in history if item["seq"] > int(last))
    assert len(missed) == 2
    headers = {"Last-Event-ID": last}
    async with client.stream(
        "GET", "/v1/stream", params={"user": "alice"}, headers=headers
    ) as response:
        events = EventReader(response)
        replayed = [await events.next_status(), await events.next_status()]
        assert [int(e.id or 0) for e in replayed] == missed  # no snapshot, no gap, in order
        assert replayed[-1].json()["equity_usd"] == (await _current(client, "alice"))["equity_usd"]
        # Nothing else is pending: the next thing on the wire is a heartbeat.
        with pytest.raises(TimeoutError):
            await events.next_status(within=1.5)


async def test_a_stream_of_several_users_carries_every_users_seq(
    world: ApiWorld, client: httpx.AsyncClient
) -> None:
    alice, bob = world.users["alice"], world.users["bob"]
    a, b = await _current(client, "alice"), await _current(client, "bob")
    async with client.stream("GET", "/v1/stream", params={"user": ["alice", "bob"]}) as response:
        events = EventReader(response)
        first, second = await events.next_status(), await events.next_status()
    assert first.id == f"{alice}:{a['seq']},{bob}:0"
    assert second.id == f"{alice}:{a['seq']},{bob}:{b['seq']}"
    resumed_id = f"{alice}:{a['seq']},{bob}:{b['seq']}"
    await world.republish(eth_price=3_300_00000000)
    try:
        async with client.stream(
            "GET",
            "/v1/stream",
            params={"user": ["alice", "bob"]},
            headers={"Last-Event-ID": resumed_id},
        ) as response:
            events = EventReader(response)
            got = {(await events.next_status()).json()["user"] for _ in range(2)}
        assert got == {"alice", "bob"}
    finally:
        await world.republish(eth_price=3_000_00000000)


async def test_stream_input_errors_are_4xx_naming_the_field(client: httpx.AsyncClient) -> None:
    for params, headers, status, field in (
        ({}, {}, 422, "user"),
        ({"user": "nobody"}, {}, 404, "user[0]"),
        ({"account": "eip155:31337:0x12"}, {}, 422, "account[0]"),
        ({"user": "alice"}, {"Last-Event-ID": "banana"}, 422, "Last-Event-ID"),
        ({"user": ["alice", "bob"]}, {"Last-Event-ID": "999999:1"}, 422, "Last-Event-ID"),
        ({"user": ["alice"] * 101}, {}, 422, "user"),
    ):
        response = await client.get("/v1/stream", params=params, headers=headers)
        assert response.status_code == status, (params, response.text)
        assert response.json()["error"]["field"] == field


async def test_a_client_that_never_reads_does_not_slow_the_others(
    world: ApiWorld, client: httpx.AsyncClient
) -> None:
    url = urlparse(world.base_url)
    stuck = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.connect((url.hostname, url.port))
    stuck.sendall(
        f"GET /v1/stream?user=alice HTTP/1.1\r\nHost: {url.netloc}\r\n\r\n".encode()
    )  # ... and never reads a byte
    try:
        async with client.stream("GET", "/v1/stream", params={"user": "alice"}) as response:
            events = EventReader(response)
            await events.next_status()
            prices = [3_300_00000000, 3_630_00000000, 3_300_00000000, 3_000_00000000] * 2
            for price in prices:
                await world.republish(eth_price=price)
                change = await events.next_status(within=5)
                assert change.event == "status"
                assert change.json()["seq"] == (await _current(client, "alice"))["seq"]
            health = await client.get("/healthz")
            assert health.status_code == 200
    finally:
        stuck.close()
        await world.republish(eth_price=3_000_00000000)
