"""Attestations fetched over real HTTP and checked where a consumer checks them: in
`MarginAttestationVerifier` on anvil. A fresh one verifies and its digest is the contract's and
eth_account's; one with a field changed, an expired one, or one signed by another key does not.
A stale status is a 409, and without a signing key or a verifier configured the endpoint is a
503 saying so."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
import pytest_asyncio
from eth_abi.abi import decode, encode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils.crypto import keccak

from aggregator.attest import (
    MARGIN_STATUS_FIELDS,
    NO_DEBT_HEALTH_FACTOR,
    STATUS_CODES,
    canonical_json,
)
from chains.evm.abi import selector
from chains.evm.anvil import DevnetRpc
from chains.evm.devnet import AnvilNode
from chains.evm.trust_devnet import deploy_attestation_verifier
from tests.e2e.api.conftest import ApiWorld, stop_api
from tests.e2e.api.trust_conftest import (
    ATTESTATION_CHAIN_ID,
    ATTESTATION_TTL_SECONDS,
    CHAIN,
    TrustWorld,
    start_trust_api,
    write_trust_config,
)

STRUCT = "(" + ",".join(kind for _, kind in MARGIN_STATUS_FIELDS) + ")"
VERIFY = selector(f"verify({STRUCT},bytes)")
DIGEST = selector(f"digest({STRUCT})")


def _values(message: dict[str, str]) -> dict[str, Any]:
    """The struct values from the API's JSON (integers as decimal strings, bytes as 0x-hex)."""
    return {
        name: bytes.fromhex(message[name][2:]) if kind.startswith("bytes") else int(message[name])
        for name, kind in MARGIN_STATUS_FIELDS
    }


def _typed_data(body: dict[str, Any]) -> dict[str, Any]:
    data = body["typed_data"]
    domain = dict(data["domain"], chainId=int(data["domain"]["chainId"]))
    return {**data, "domain": domain, "message": _values(data["message"])}


async def _eth_call(url: str, to: str, data: bytes) -> bytes:
    async with DevnetRpc(url) as rpc:
        result = await rpc.call("eth_call", [{"to": to, "data": "0x" + data.hex()}, "latest"])
    return bytes.fromhex(str(result)[2:])


async def _verify(url: str, verifier: str, values: dict[str, Any], signature: bytes) -> bool:
    struct = tuple(values[name] for name, _ in MARGIN_STATUS_FIELDS)
    answer = await _eth_call(url, verifier, VERIFY + encode([STRUCT, "bytes"], [struct, signature]))
    (ok,) = decode(["bool"], answer)
    return bool(ok)


async def _attestation(world: TrustWorld, user: str) -> dict[str, Any]:
    async with world.client(world.keys["reader"]) as http:
        response = await http.get(f"/v1/users/{user}/attestation")
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    return body


async def test_a_fresh_attestation_verifies_on_chain_and_says_what_the_status_says(
    trust_world: TrustWorld,
) -> None:
    world = trust_world
    body = await _attestation(world, "bob")
    signing = Account.from_key(world.signing_key)
    assert body["signer"] == signing.address and body["signers"] == [signing.address]
    assert body["user"] == "bob" and body["user_id"] == world.users["bob"]
    async with world.client(world.keys["reader"]) as http:
        status = (await http.get("/v1/users/bob/margin")).json()
    message = body["typed_data"]["message"]
    # The struct is the published status, in on-chain units.
    assert int(message["seq"]) == body["seq"] == status["seq"]
    assert int(message["status"]) == STATUS_CODES[status["status"]]
    assert Decimal(message["equityUsd"]) == (
        Decimal(status["equity_usd"]) * 10**8
    ).to_integral_value(rounding="ROUND_FLOOR")
    assert Decimal(message["healthFactor"]) == (
        Decimal(status["health_factor"]) * 10**18
    ).to_integral_value(rounding="ROUND_FLOOR")
    assert int(message["expiresAt"]) - int(message["observedAt"]) == ATTESTATION_TTL_SECONDS
    assert message["userId"] == "0x" + keccak(text=f"urn:xmargin:user:{world.users['bob']}").hex()
    # The block of every chain used, and the breakdown the hash commits to.
    (chain_used,) = status["chains"]
    assert body["read_points"] == [
        {"chain": CHAIN, "height": chain_used["height"], "block_hash": chain_used["block_hash"]}
    ]
    assert message["breakdownHash"] == "0x" + keccak(canonical_json(body["breakdown"])).hex()
    domain = body["typed_data"]["domain"]
    assert domain == {
        "name": "xmargin",
        "version": "1",
        "chainId": str(ATTESTATION_CHAIN_ID),
        "verifyingContract": world.verifier,
    }
    # eth_account, the contract and the API agree on the digest; the signature recovers.
    typed = _typed_data(body)
    digest = bytes(
        Account.sign_message(encode_typed_data(full_message=typed), world.signing_key).message_hash
    )
    values = typed["message"]
    struct = tuple(values[name] for name, _ in MARGIN_STATUS_FIELDS)
    on_chain = await _eth_call(
        world.verifier_node.url, world.verifier, DIGEST + encode([STRUCT], [struct])
    )
    assert on_chain == digest == bytes.fromhex(body["digest"][2:])
    signature = bytes.fromhex(body["signature"][2:])
    assert Account._recover_hash(digest, signature=signature) == signing.address
    assert await _verify(world.verifier_node.url, world.verifier, values, signature) is True


async def test_a_no_debt_status_attests_the_max_health_factor(trust_world: TrustWorld) -> None:
    body = await _attestation(trust_world, "grace")
    values = _typed_data(body)["message"]
    assert values["healthFactor"] == NO_DEBT_HEALTH_FACTOR
    signature = bytes.fromhex(body["signature"][2:])
    world = trust_world
    assert await _verify(world.verifier_node.url, world.verifier, values, signature) is True


def _changed(value: Any, kind: str) -> Any:
    if kind.startswith("bytes"):
        return bytes([value[0] ^ 1]) + value[1:]
    if kind == "uint256" and value == NO_DEBT_HEALTH_FACTOR:
        return value - 1
    return value + 1


@pytest.mark.parametrize(("field", "kind"), MARGIN_STATUS_FIELDS)
async def test_an_attestation_with_any_field_changed_does_not_verify(
    trust_world: TrustWorld, field: str, kind: str
) -> None:
    world = trust_world
    body = await _attestation(world, "alice")
    values = _typed_data(body)["message"]
    signature = bytes.fromhex(body["signature"][2:])
    changed = dict(values, **{field: _changed(values[field], kind)})
    assert await _verify(world.verifier_node.url, world.verifier, changed, signature) is False
    assert await _verify(world.verifier_node.url, world.verifier, values, signature) is True


async def test_an_attestation_signed_by_another_key_does_not_verify(
    trust_world: TrustWorld,
) -> None:
    world = trust_world
    body = await _attestation(world, "alice")
    typed = _typed_data(body)
    forged = Account.sign_message(encode_typed_data(full_message=typed), Account.create().key)
    assert bytes(forged.message_hash) == bytes.fromhex(body["digest"][2:])  # same data
    values = typed["message"]
    assert (
        await _verify(world.verifier_node.url, world.verifier, values, bytes(forged.signature))
        is False
    )


async def test_an_expired_attestation_does_not_verify(trust_world: TrustWorld) -> None:
    world = trust_world
    body = await _attestation(world, "alice")
    values = _typed_data(body)["message"]
    signature = bytes.fromhex(body["signature"][2:])
    # The same verifier on a fresh node of the same chain id (same deployer and nonce: the same
    # address, so the same domain), whose clock is then moved past `expiresAt`.
    async with AnvilNode(chain_id=ATTESTATION_CHAIN_ID) as node:
        signer = Account.from_key(world.signing_key).address
        assert await deploy_attestation_verifier(node.url, [signer]) == world.verifier
        assert await _verify(node.url, world.verifier, values, signature) is True
        async with DevnetRpc(node.url) as rpc:
            block = await rpc.call("eth_getBlockByNumber", ["latest", False])
            now = int(block["timestamp"], 16)
            await rpc.call("evm_increaseTime", [values["expiresAt"] - now + 1])
            await rpc.call("evm_mine", [])
        assert await _verify(node.url, world.verifier, values, signature) is False


async def test_a_stale_status_is_a_409_and_no_status_a_404(trust_world: TrustWorld) -> None:
    async with trust_world.client(trust_world.keys["reader"]) as http:
        stale = await http.get("/v1/users/sam/attestation")
        none = await http.get("/v1/users/carol/attestation")
        status = await http.get("/v1/users/sam/margin")
    assert status.json()["stale"] is True
    assert stale.status_code == 409, stale.text
    assert stale.json()["error"]["code"] == "stale"
    assert "stale" in stale.json()["error"]["message"]
    assert none.status_code == 404 and none.json()["error"]["code"] == "no_status"


async def test_the_signing_key_is_never_in_an_answer_or_the_log(trust_world: TrustWorld) -> None:
    world = trust_world
    secret = world.signing_key.hex()
    async with world.client(world.keys["admin"]) as http:
        texts = [
            (await http.get("/v1/users/alice/attestation")).text,
            (await http.get("/v1/users/sam/attestation")).text,
            (await http.get("/openapi.json")).text,
            (await http.get("/metrics")).text,
        ]
    for text in [*texts, "".join(world.output)]:
        assert secret not in text.lower()
        assert world.session_secret.hex() not in text.lower()
    assert "".join(world.output)  # the server did print its start-up lines


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def unverified_api(
    trust_world: TrustWorld, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """A second API on the same database: signing key set, but no verifier configured."""
    signer = Account.from_key(trust_world.signing_key).address
    path = write_trust_config(
        tmp_path_factory.mktemp("no-verifier"), trust_world.node.url, None, signer
    )
    process, url = await asyncio.to_thread(
        start_trust_api, path, trust_world.database_url, trust_world.env
    )
    try:
        yield url
    finally:
        await asyncio.to_thread(stop_api, process)


async def test_no_verifier_configured_is_a_503_saying_so(
    trust_world: TrustWorld, unverified_api: str
) -> None:
    headers = {"Authorization": f"Bearer {trust_world.keys['reader']}"}
    async with httpx.AsyncClient(base_url=unverified_api, headers=headers) as http:
        response = await http.get("/v1/users/alice/attestation")
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["code"] == "attestation_unavailable"
    assert "attestation_verifying_contract" in error["message"]


async def test_no_signing_key_is_a_503_saying_so(
    world: ApiWorld, client: httpx.AsyncClient
) -> None:
    # The reads world has no XMARGIN_SIGNING_KEY (and reads open: no credential needed).
    response = await client.get("/v1/users/alice/attestation")
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["code"] == "attestation_unavailable"
    assert "XMARGIN_SIGNING_KEY" in error["message"]
