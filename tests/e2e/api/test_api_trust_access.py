"""Who may read what, over real HTTP on the trust world (reads need a key or a session, as on a
fresh install): API keys by scope, sign-in sessions scoped to their user, 401 / 403 / 429 with
their headers, revocation, the rate limit's window, and the OpenAPI security declarations."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from eth_account import Account
from solders.keypair import Keypair

from aggregator.auth import tokens
from aggregator.auth.tokens import SessionKey, SessionKeyring
from tests.e2e.api.conftest import ALICE
from tests.e2e.api.trust_conftest import (
    BURST_RATE,
    CHAIN,
    GRACE,
    SESSION_TTL_SECONDS,
    SOLANA_CHAIN,
    TrustWorld,
    evm_nonce,
    link_evm,
    sign_evm,
    sign_in_evm,
    sign_solana,
)
from tests.e2e.conftest import REPO

USER_READS = [
    "/v1/users/alice/margin",
    "/v1/users/alice/margin/history",
    f"/v1/accounts/{CHAIN}:{ALICE}/margin",
    "/v1/users",
    "/v1/users/alice/attestation",
]
REFERENCE_READS = ["/v1/assets", "/v1/chains"]


def _error(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()["error"]
    return body


def _assert_401(response: httpx.Response, code: str) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert _error(response)["code"] == code
    assert _error(response)["field"] == "authorization"
    assert "ratelimit-limit" not in response.headers  # nobody was charged


async def _grace_session(world: TrustWorld) -> dict[str, Any]:
    async with world.client() as http:
        response = await sign_in_evm(http, "grace", GRACE)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_without_a_credential_user_and_reference_reads_are_401_and_ops_open(
    trust_world: TrustWorld,
) -> None:
    async with trust_world.client() as http:
        for path in [*USER_READS, *REFERENCE_READS, "/v1/stream?user=alice"]:
            response = await http.get(path)
            _assert_401(response, "unauthorized")
            assert response.headers["www-authenticate"] == 'Bearer realm="xmargin"'
        batch = await http.post("/v1/margin:batch", json={"users": ["alice"]})
        _assert_401(batch, "unauthorized")
        simulate = await http.post("/v1/users/alice/simulate", json={"changes": []})
        _assert_401(simulate, "unauthorized")
        assert (await http.get("/healthz")).status_code == 200
        assert (await http.get("/metrics")).status_code == 200


async def test_a_read_key_reads_everything_with_rate_limit_headers(
    trust_world: TrustWorld,
) -> None:
    async with trust_world.client(trust_world.keys["reader"]) as http:
        for path in [*USER_READS[:4], *REFERENCE_READS, "/v1/users/bob/margin"]:
            response = await http.get(path)
            assert response.status_code == 200, (path, response.text)
            assert response.headers["ratelimit-limit"] == "600"
            assert 0 <= int(response.headers["ratelimit-remaining"]) < 600
            assert int(response.headers["ratelimit-reset"]) >= 1
        batch = await http.post("/v1/margin:batch", json={"users": ["alice", "bob"]})
        assert batch.status_code == 200
        assert [item["error"] for item in batch.json()["results"]] == [None, None]
        # A refusal after authentication carries the headers too.
        missing = await http.get("/v1/users/nobody-here/margin")
        assert missing.status_code == 404 and "ratelimit-remaining" in missing.headers


async def test_invalid_credentials_are_401_alike(trust_world: TrustWorld) -> None:
    reader = trust_world.keys["reader"]
    public_id = reader.split("_")[1]
    wrong_secret = f"xmk_{public_id}_{'0' * 64}"
    unknown_id = f"xmk_{'f' * 12}_{reader.split('_')[2]}"
    answers = []
    for credential in (wrong_secret, unknown_id):
        async with trust_world.client(credential) as http:
            response = await http.get("/v1/users/alice/margin")
        _assert_401(response, "invalid_key")
        answers.append(response.json())
    assert answers[0] == answers[1]  # an unknown key and a wrong key are told apart by nobody
    async with httpx.AsyncClient(base_url=trust_world.base_url) as http:
        for header in ("Basic abc", "Bearer", "Bearer not-a-credential", f"Token {reader}"):
            response = await http.get("/v1/assets", headers={"Authorization": header})
            _assert_401(response, "malformed")
        # A credential sent to an open endpoint is still checked.
        response = await http.get("/healthz", headers={"Authorization": f"Bearer {wrong_secret}"})
        _assert_401(response, "invalid_key")


async def test_linking_needs_a_link_key(trust_world: TrustWorld) -> None:
    world = trust_world
    await world.add_user("henry")
    account = Account.create()
    body = {"chain": CHAIN, "address": account.address}
    async with world.client() as anonymous:
        _assert_401(
            await anonymous.post("/v1/users/henry/wallets/nonce", json=body), "unauthorized"
        )
        _assert_401(
            await anonymous.post(
                "/v1/users/henry/wallets", json={"message": "x", "signature": "y"}
            ),
            "unauthorized",
        )
    async with world.client(world.keys["reader"]) as reader:
        refused = await reader.post("/v1/users/henry/wallets/nonce", json=body)
        assert refused.status_code == 403, refused.text
        assert (_error(refused)["code"], _error(refused)["field"]) == (
            "insufficient_scope",
            "authorization",
        )
        assert "ratelimit-remaining" in refused.headers
    session = await _grace_session(world)
    async with world.client(session["token"]) as grace:
        refused = await grace.post("/v1/users/grace/wallets/nonce", json=body)
        assert refused.status_code == 403 and _error(refused)["code"] == "insufficient_scope"
    async with world.client(world.keys["admin"]) as admin:
        assert (await link_evm(admin, "henry", account)).status_code == 201
    rows = await world.sql("SELECT count(*) FROM wallets WHERE user_id = %s", world.users["henry"])
    assert rows == [(1,)]


async def test_a_session_reads_only_its_own_user(trust_world: TrustWorld) -> None:
    world = trust_world
    session = await _grace_session(world)
    assert session["user"] == "grace" and session["user_id"] == world.users["grace"]
    assert session["account"] == f"{CHAIN}:{GRACE.address}"
    assert session["token"].startswith("xms1.") and session["token_type"] == "Bearer"
    assert session["expires_in"] == SESSION_TTL_SECONDS
    async with world.client(session["token"]) as http:
        own = await http.get("/v1/users/grace/margin")
        assert own.status_code == 200, own.text
        assert own.json()["user"] == "grace"
        assert own.headers["ratelimit-limit"] == "600"
        by_id = await http.get(f"/v1/users/{world.users['grace']}/margin")
        assert by_id.status_code == 200
        by_account = await http.get(f"/v1/accounts/{CHAIN}:{GRACE.address}/margin")
        assert by_account.status_code == 200
        assert (await http.get("/v1/users/grace/margin/history")).status_code == 200
        assert (await http.get("/v1/users/grace/attestation")).status_code == 200
        for path in (
            "/v1/users/alice/margin",
            "/v1/users/bob/margin/history",
            "/v1/users/alice/attestation",
            f"/v1/accounts/{CHAIN}:{ALICE}/margin",
            "/v1/stream?user=alice",
            "/v1/users",
        ):
            refused = await http.get(path)
            assert refused.status_code == 403, (path, refused.text)
        batch = await http.post("/v1/margin:batch", json={"users": ["grace", "alice"]})
        results = batch.json()["results"]
        assert results[0]["error"] is None and results[0]["status"]["user"] == "grace"
        assert results[1]["error"]["code"] == "forbidden" and results[1]["status"] is None
        # Its own stream: the snapshot event of its status.
        async with http.stream("GET", "/v1/stream", params={"user": "grace"}) as stream:
            assert stream.status_code == 200
            assert "ratelimit-remaining" in stream.headers
            seen = ""
            async for chunk in stream.aiter_text():
                seen += chunk
                if "event: status" in seen and "\n\n" in seen.split("event: status", 1)[1]:
                    break
        assert '"user":"grace"' in seen
    # A browser's EventSource cannot send headers: the stream takes the token as a parameter,
    # with the same checks (its own user only; a bad token is 401).
    async with world.client() as anonymous:
        token = session["token"]
        refused = await anonymous.get("/v1/stream", params={"user": "alice", "access_token": token})
        assert refused.status_code == 403
        forged = await anonymous.get(
            "/v1/stream", params={"user": "grace", "access_token": token[:-4] + "AAAA"}
        )
        assert forged.status_code == 401
        query = {"user": "grace", "access_token": token}
        async with anonymous.stream("GET", "/v1/stream", params=query) as stream:
            assert stream.status_code == 200
            first = ""
            async for chunk in stream.aiter_text():
                first += chunk
                if '"user":"grace"' in first:
                    break
        assert "event: status" in first
        # Only the stream: elsewhere a token in the URL is ignored (anonymous: 401).
        elsewhere = await anonymous.get("/v1/users/grace/margin", params={"access_token": token})
        assert elsewhere.status_code == 401


async def test_sign_in_needs_a_linked_wallet_and_a_fresh_nonce(trust_world: TrustWorld) -> None:
    world = trust_world
    stranger = Account.create()
    async with world.client() as http:
        refused = await sign_in_evm(http, "grace", stranger)
        assert refused.status_code == 403, refused.text
        assert (_error(refused)["code"], _error(refused)["field"]) == ("not_linked", "address")
        # A replayed sign-in text is refused.
        issued = await http.post(
            "/v1/auth/nonce", json={"user": "grace", "chain": CHAIN, "address": GRACE.address}
        )
        text = issued.json()["message"]
        assert "Sign in to xmargin as user" in text
        body = {"message": text, "signature": sign_evm(GRACE, text)}
        assert (await http.post("/v1/auth/siwe", json=body)).status_code == 200
        replay = await http.post("/v1/auth/siwe", json=body)
        assert replay.status_code == 422 and _error(replay)["code"] == "used"
        # A link text is not a sign-in text.
        other = await http.post(
            "/v1/auth/nonce", json={"user": "grace", "chain": CHAIN, "address": GRACE.address}
        )
        link_text = other.json()["message"].replace(
            "Sign in to xmargin as user", "Link this account to xmargin user"
        )
        wrong = await http.post(
            "/v1/auth/siwe", json={"message": link_text, "signature": sign_evm(GRACE, link_text)}
        )
        assert wrong.status_code == 422
        assert (_error(wrong)["code"], _error(wrong)["field"]) == ("wrong_purpose", "statement")
    refused_nonce = await world.sql(
        "SELECT count(*) FROM auth_nonces WHERE account = %s AND consumed_at IS NOT NULL",
        stranger.address,
    )
    assert refused_nonce == [(0,)]  # the refused sign-in left its nonce unused


async def test_a_solana_wallet_signs_in_at_its_own_endpoint(trust_world: TrustWorld) -> None:
    world = trust_world
    await world.add_user("ivy")
    keypair = Keypair()
    address = str(keypair.pubkey())
    async with world.client(world.keys["linker"]) as linker:
        issued = await evm_nonce(linker, "ivy", address, chain=SOLANA_CHAIN)
        linked = await linker.post(
            "/v1/users/ivy/wallets",
            json={
                "message": issued["message"],
                "signature": sign_solana(keypair, issued["message"]),
            },
        )
        assert linked.status_code == 201, linked.text
    async with world.client() as http:
        nonce = await http.post(
            "/v1/auth/nonce", json={"user": "ivy", "chain": SOLANA_CHAIN, "address": address}
        )
        text = nonce.json()["message"]
        body = {"message": text, "signature": sign_solana(keypair, text)}
        wrong_endpoint = await http.post("/v1/auth/siwe", json=body)
        assert wrong_endpoint.status_code == 422
        assert _error(wrong_endpoint)["code"] == "wrong_endpoint"
        session = await http.post("/v1/auth/solana", json=body)
    assert session.status_code == 200, session.text
    assert session.json()["account"] == f"{SOLANA_CHAIN}:{address}"
    async with world.client(session.json()["token"]) as ivy:
        # ivy has no status yet (never published): the session gets past authorization.
        own = await ivy.get("/v1/users/ivy/margin")
        assert own.status_code == 404 and _error(own)["code"] == "no_status"
        assert (await ivy.get("/v1/users/grace/margin")).status_code == 403


def _mint(secret: bytes, user_id: int, *, issued: datetime, ttl: int) -> str:
    token, _ = tokens.issue(
        SessionKeyring(SessionKey("s1", secret)),
        user_id=user_id,
        account=f"{CHAIN}:{GRACE.address}",
        now=issued,
        ttl_seconds=ttl,
    )
    return token


async def test_expired_foreign_and_tampered_sessions_are_401(trust_world: TrustWorld) -> None:
    world = trust_world
    grace = world.users["grace"]
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    expired = _mint(world.session_secret, grace, issued=an_hour_ago, ttl=60)
    foreign = _mint(os.urandom(32), grace, issued=datetime.now(UTC), ttl=600)
    good = _mint(world.session_secret, grace, issued=datetime.now(UTC), ttl=600)
    head, _, mac = good.rsplit(".", 2)
    tampered_claims = _mint(
        world.session_secret, world.users["alice"], issued=datetime.now(UTC), ttl=600
    )
    tampered = f"{head}.{tampered_claims.split('.')[2]}.{mac}"  # alice's claims, grace's mac
    for token, code in (
        (expired, "expired"),
        (foreign, "bad_signature"),
        (tampered, "bad_signature"),
        ("xms1.s1.abc", "malformed"),
    ):
        async with world.client(token) as http:
            _assert_401(await http.get("/v1/users/grace/margin"), code)
    async with world.client(good) as http:
        assert (await http.get("/v1/users/grace/margin")).status_code == 200


async def test_a_revoked_key_is_refused_within_seconds(trust_world: TrustWorld) -> None:
    world = trust_world
    async with world.client(world.keys["doomed"]) as http:
        assert (await http.get("/v1/assets")).status_code == 200
        env = {**os.environ, "XMARGIN_DATABASE_URL": world.database_url}
        done = await asyncio.to_thread(
            subprocess.run,
            [
                sys.executable,
                "-m",
                "aggregator.cli",
                "keys",
                "revoke",
                "doomed",
                "--config",
                str(world.config_path),
            ],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "revoked API key doomed" in done.stdout
        revoked_at = time.monotonic()
        while True:
            response = await http.get("/v1/assets")
            if response.status_code == 401:
                break
            assert response.status_code == 200
            assert time.monotonic() - revoked_at < 3.0, "a revoked key still served after 3 s"
            await asyncio.sleep(0.1)
        _assert_401(response, "invalid_key")


async def test_a_burst_over_the_limit_is_429_then_served_after_the_window(
    trust_world: TrustWorld,
) -> None:
    async with trust_world.client(trust_world.keys["burst"]) as http:
        remaining = []
        for _ in range(BURST_RATE):
            response = await http.get("/v1/assets")
            assert response.status_code == 200, response.text
            assert response.headers["ratelimit-limit"] == str(BURST_RATE)
            remaining.append(int(response.headers["ratelimit-remaining"]))
        assert remaining[0] == BURST_RATE - 1 and remaining[-1] == 0
        refused = await http.get("/v1/assets")
        assert refused.status_code == 429, refused.text
        assert _error(refused)["code"] == "rate_limited"
        retry_after = int(refused.headers["retry-after"])
        assert 1 <= retry_after <= 60 // BURST_RATE
        assert refused.headers["ratelimit-remaining"] == "0"
        await asyncio.sleep(retry_after + 0.2)
        again = await http.get("/v1/assets")
        assert again.status_code == 200, again.text
    # Other keys have their own buckets.
    async with trust_world.client(trust_world.keys["reader"]) as http:
        assert (await http.get("/v1/assets")).status_code == 200


async def test_the_openapi_document_declares_the_security(trust_world: TrustWorld) -> None:
    async with trust_world.client() as http:
        document = (await http.get("/openapi.json")).json()
    scheme = document["components"]["securitySchemes"]["bearer"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    paths = document["paths"]
    needs: list[dict[str, list[str]]] = [{"bearer": []}]
    assert paths["/v1/users/{user}/margin"]["get"]["security"] == needs
    assert paths["/v1/assets"]["get"]["security"] == needs
    assert paths["/v1/users/{user}/wallets"]["post"]["security"] == needs
    assert paths["/v1/users/{user}/attestation"]["get"]["security"] == needs
    assert paths["/healthz"]["get"]["security"] == [{}, {"bearer": []}]
    for path in ("/v1/auth/nonce", "/v1/auth/siwe", "/v1/auth/solana"):
        assert paths[path]["post"]["security"] == []
    responses = paths["/v1/users/{user}/margin"]["get"]["responses"]
    assert {"401", "403", "429"} <= set(responses)
    assert "Solana" in paths["/v1/auth/siwe"]["post"]["description"]


async def test_a_keyed_read_from_the_cache_answers_as_the_full_path_and_shares_its_bucket(
    trust_world: TrustWorld,
) -> None:
    """Keyed reads of a cached status are served before the framework (api/reads/fast_reads.py):
    the same body and headers as the first, uncached read, and the same rate-limit bucket."""
    from aggregator.store.accounts import auth as auth_repo
    from aggregator.store.database import Database

    database = Database(trust_world.database_url)
    try:
        async with database.session() as session:
            _, key = await auth_repo.create_api_key(session, "fast-burst", "read", 5)
    finally:
        await database.dispose()
    await trust_world.republish()  # the next read misses the status cache
    async with trust_world.client(key) as http:
        answers = [await http.get("/v1/users/grace/margin") for _ in range(5)]
        refused = await http.get("/v1/users/grace/margin")
    assert [a.status_code for a in answers] == [200] * 5
    assert [a.headers["ratelimit-remaining"] for a in answers] == ["4", "3", "2", "1", "0"]
    first, cached = answers[0], answers[1]
    assert cached.content == first.content
    same = {"etag", "cache-control", "content-type", "content-length", "ratelimit-limit"}
    assert {k: cached.headers[k] for k in same} == {k: first.headers[k] for k in same}
    assert refused.status_code == 429
    assert _error(refused)["code"] == "rate_limited"
    assert refused.headers["retry-after"] and refused.headers["ratelimit-remaining"] == "0"
    # A wrong key never takes the fast path: the full path refuses it.
    async with trust_world.client(key[:-4] + "0000") as http:
        assert (await http.get("/v1/users/grace/margin")).status_code == 401
