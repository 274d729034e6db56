"""Bad input and faults over real HTTP: one JSON error shape naming the field, never a 500;
the database going away answers 503 and coming back serves again without a restart; ops
endpoints; CORS from config."""

from __future__ import annotations

import asyncio
import json

import httpx

from tests.e2e.api.conftest import ApiWorld, start_api, stop_api
from tests.e2e.api.pg_proxy import PostgresRelay


async def test_malformed_bodies_and_unknown_routes_get_the_error_shape(
    client: httpx.AsyncClient,
) -> None:
    broken = await client.post(
        "/v1/margin:batch", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert broken.status_code == 400
    assert broken.json()["error"]["code"] == "malformed_json"
    assert broken.json()["error"]["field"] == "body"
    nowhere = await client.get("/v1/nowhere")
    assert nowhere.status_code == 404
    assert set(nowhere.json()["error"]) == {"code", "message", "field"}
    wrong_method = await client.delete("/v1/users/alice/margin")
    assert wrong_method.status_code == 405 and "error" in wrong_method.json()


async def test_a_ten_megabyte_body_is_refused_before_it_is_read(client: httpx.AsyncClient) -> None:
    big = json.dumps({"users": ["a" * 1000] * 10_000}).encode()
    assert len(big) > 10_000_000
    response = await client.post(
        "/v1/margin:batch", content=big, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["error"] == {
        "code": "too_large",
        "message": "the body is over 1048576 bytes",
        "field": "body",
    }

    async def chunks():  # no Content-Length: counted as it arrives
        for _ in range(20):
            yield b" " * 100_000

    chunked = await client.post(
        "/v1/margin:batch", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert chunked.status_code == 413
    healthy = await client.get("/healthz")
    assert healthy.status_code == 200 and healthy.json() == {"status": "ok"}


async def test_readyz_and_metrics(world: ApiWorld, client: httpx.AsyncClient) -> None:
    await world.republish()
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"ready": True, "database": True, "stale_chains": [], "reasons": []}
    await client.get("/v1/users/alice/margin")
    metrics = (await client.get("/metrics")).text
    assert (
        'xmargin_http_requests_total{method="GET",route="/v1/users/{user}/margin",status="200"}'
        in metrics
    )
    assert "xmargin_http_request_duration_seconds_bucket" in metrics
    assert "xmargin_stream_clients " in metrics


async def test_cors_allows_the_configured_origin_only(client: httpx.AsyncClient) -> None:
    allowed = await client.get("/v1/assets", headers={"Origin": "http://front.example"})
    assert allowed.headers["access-control-allow-origin"] == "http://front.example"
    other = await client.get("/v1/assets", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    preflight = await client.options(
        "/v1/margin:batch",
        headers={
            "Origin": "http://front.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code == 200
    assert "POST" in preflight.headers["access-control-allow-methods"]


async def test_database_away_mid_service_is_503_and_back_serves_again(world: ApiWorld) -> None:
    relay = PostgresRelay(world.database_url)
    await relay.start()
    process, base_url = await asyncio.to_thread(start_api, world.config_path, relay.url)
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
            assert (await http.get("/v1/users/bob/margin")).status_code == 200
            await relay.stop()
            for path in ("/v1/users/bob/margin", "/v1/chains", "/v1/users/bob/margin/history"):
                down = await http.get(path)
                assert down.status_code == 503, (path, down.text)
                assert down.json()["error"]["code"] == "database_unavailable"
                assert down.headers["retry-after"] == "2"
            not_ready = await http.get("/readyz")
            assert not_ready.status_code == 503 and not_ready.json()["database"] is False
            assert (await http.get("/healthz")).status_code == 200  # the process is still up
            await relay.start()
            statuses = []
            for _ in range(20):  # the pool reconnects on its own
                response = await http.get("/v1/users/bob/margin")
                statuses.append(response.status_code)
                if response.status_code == 200:
                    break
                await asyncio.sleep(0.25)
            assert statuses[-1] == 200, statuses
            assert response.json()["user"] == "bob"
    finally:
        await asyncio.to_thread(stop_api, process)
        await relay.stop()


async def test_the_interactive_docs_are_served_from_local_assets(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200 and "/openapi.json" in page.text
    assert "/docs/assets/swagger-ui-bundle.js" in page.text and "cdn" not in page.text.lower()
    script = await client.get("/docs/assets/swagger-ui-bundle.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert len(script.content) > 100_000
    assert (await client.get("/docs/assets/../../etc/passwd")).status_code == 404
