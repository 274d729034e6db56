"""MarginAttestationVerifier on a real anvil: it accepts a fresh attestation from an allowed
signer, and refuses any changed field, an expired one, and another signer; its digest is
eth_account's."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio
from eth_abi.abi import decode, encode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_keys import keys

from aggregator.attest import (
    MARGIN_STATUS_FIELDS,
    AttestationDomain,
    MarginAttestation,
    attest,
)
from aggregator.auth.signing_key import SigningKey
from chains.evm.abi import selector
from chains.evm.anvil import DevnetError, DevnetRpc
from chains.evm.devnet import AnvilNode
from chains.evm.trust_devnet import deploy_attestation_verifier

STRUCT = "(" + ",".join(kind for _, kind in MARGIN_STATUS_FIELDS) + ")"
VERIFY = selector(f"verify({STRUCT},bytes)")
DIGEST = selector(f"digest({STRUCT})")
ADD_SIGNER = selector("addSigner(address)")
REMOVE_SIGNER = selector("removeSigner(address)")
OUTSIDER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"  # anvil account 1, not the owner

SERVICE_KEY = bytes.fromhex("59c6995e998f97a5a0044966f0945389dc9c86dae88c7a8412f4603b6b78690d")
ROTATED_KEY = bytes.fromhex("5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a")


class Verifier:
    def __init__(self, url: str, address: str) -> None:
        self.url = url
        self.address = address
        self.domain = AttestationDomain(31337, address)

    async def call(self, data: bytes) -> bytes:
        async with DevnetRpc(self.url) as rpc:
            result = await rpc.call(
                "eth_call", [{"to": self.address, "data": "0x" + data.hex()}, "latest"]
            )
        return bytes.fromhex(str(result)[2:])

    async def verify(self, values: dict[str, Any], signature: bytes) -> bool:
        struct = tuple(values[name] for name, _ in MARGIN_STATUS_FIELDS)
        (ok,) = decode(
            ["bool"], await self.call(VERIFY + encode([STRUCT, "bytes"], [struct, signature]))
        )
        return bool(ok)

    async def digest(self, values: dict[str, Any]) -> bytes:
        struct = tuple(values[name] for name, _ in MARGIN_STATUS_FIELDS)
        return await self.call(DIGEST + encode([STRUCT], [struct]))

    async def send(self, fn: bytes, signer: str, *, sender: str | None = None) -> None:
        async with DevnetRpc(self.url) as rpc:
            data = fn + encode(["address"], [signer])
            if sender is None:
                await rpc.send(self.address, data)
            else:
                await rpc.send(self.address, data, sender=sender)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def verifier(anvil: AnvilNode) -> Verifier:
    signer = Account.from_key(SERVICE_KEY).address
    return Verifier(anvil.url, await deploy_attestation_verifier(anvil.url, [signer]))


def _document(as_of: datetime, **overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "user_id": 5,
        "as_of": as_of.isoformat().replace("+00:00", "Z"),
        "status": "margin_call",
        "stale": False,
        "equity": "-12.34567891",
        "weighted_collateral": {"init": "80", "maint": "90.5"},
        "requirement": {"init": "120.000000001", "maint": "100"},
        "free_collateral": "-40.1",
        "health_factor": "0.905",
        "lines": [{"asset": "WETH", "amount": "0.03", "price_valid": True}],
        "chains": {"eip155:31337": {"height": 12, "block_hash": "0x" + "11" * 32}},
    }
    document.update(overrides)
    return document


def _fresh(verifier: Verifier, key: bytes = SERVICE_KEY, **overrides: Any) -> MarginAttestation:
    now = datetime.fromtimestamp(int(time.time()), UTC)
    return attest(
        _document(now, **overrides),
        seq=9,
        domain=verifier.domain,
        key=SigningKey(key),
        ttl_seconds=600,
    )


async def test_a_fresh_attestation_from_an_allowed_signer_verifies(verifier: Verifier) -> None:
    attestation = _fresh(verifier)
    assert await verifier.verify(attestation.values, attestation.signature) is True


async def test_a_no_debt_attestation_verifies(verifier: Verifier) -> None:
    attestation = _fresh(verifier, health_factor=None, status="healthy")
    assert attestation.values["healthFactor"] == 2**256 - 1
    assert await verifier.verify(attestation.values, attestation.signature) is True


async def test_the_contract_digest_is_eth_accounts(verifier: Verifier) -> None:
    attestation = _fresh(verifier)
    signed = Account.sign_message(
        encode_typed_data(full_message=attestation.typed_data), SERVICE_KEY
    )
    contract_digest = await verifier.digest(attestation.values)
    assert contract_digest == bytes(signed.message_hash) == attestation.digest


def _changed(value: Any, kind: str) -> Any:
    if kind.startswith("bytes"):
        return bytes([value[0] ^ 1]) + value[1:]
    if kind == "uint256" and value == 2**256 - 1:
        return value - 1
    return value + 1


@pytest.mark.parametrize(("field", "kind"), MARGIN_STATUS_FIELDS)
async def test_any_changed_field_fails_verification(
    verifier: Verifier, field: str, kind: str
) -> None:
    attestation = _fresh(verifier)
    changed = dict(attestation.values)
    changed[field] = _changed(changed[field], kind)
    assert await verifier.verify(changed, attestation.signature) is False


async def test_an_expired_attestation_fails_verification(verifier: Verifier) -> None:
    long_ago = datetime.fromtimestamp(int(time.time()) - 3600, UTC)
    attestation = attest(
        _document(long_ago),
        seq=9,
        domain=verifier.domain,
        key=SigningKey(SERVICE_KEY),
        ttl_seconds=60,
    )
    assert await verifier.verify(attestation.values, attestation.signature) is False


async def test_another_signer_fails_verification(verifier: Verifier) -> None:
    attestation = _fresh(verifier, key=ROTATED_KEY)
    assert await verifier.verify(attestation.values, attestation.signature) is False


@pytest.mark.parametrize("length", [0, 64, 66])
async def test_a_signature_of_the_wrong_length_is_false_not_a_revert(
    verifier: Verifier, length: int
) -> None:
    attestation = _fresh(verifier)
    signature = (attestation.signature * 2)[:length]
    assert await verifier.verify(attestation.values, signature) is False


async def test_a_malleable_high_s_twin_is_refused(verifier: Verifier) -> None:
    order = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    attestation = _fresh(verifier)
    r, s, v = (
        attestation.signature[:32],
        int.from_bytes(attestation.signature[32:64], "big"),
        attestation.signature[64],
    )
    twin = r + (order - s).to_bytes(32, "big") + bytes([55 - v])  # 27 <-> 28
    twin_key = keys.Signature(signature_bytes=twin[:64] + bytes([twin[64] - 27]))
    recovered = twin_key.recover_public_key_from_msg_hash(attestation.digest)
    assert recovered.to_checksum_address() == attestation.signer  # valid ECDSA, other form
    assert await verifier.verify(attestation.values, twin) is False


async def test_rotation_adds_the_new_signer_and_removal_revokes_the_old(verifier: Verifier) -> None:
    rotated = Account.from_key(ROTATED_KEY).address
    old = Account.from_key(SERVICE_KEY).address
    await verifier.send(ADD_SIGNER, rotated)
    new_attestation = _fresh(verifier, key=ROTATED_KEY)
    old_attestation = _fresh(verifier)
    assert await verifier.verify(new_attestation.values, new_attestation.signature) is True
    assert await verifier.verify(old_attestation.values, old_attestation.signature) is True
    await verifier.send(REMOVE_SIGNER, old)
    assert await verifier.verify(old_attestation.values, old_attestation.signature) is False
    await verifier.send(ADD_SIGNER, old)  # leave the module's verifier as it was
    await verifier.send(REMOVE_SIGNER, rotated)


async def test_only_the_owner_manages_signers(verifier: Verifier) -> None:
    with pytest.raises(DevnetError):
        await verifier.send(ADD_SIGNER, OUTSIDER, sender=OUTSIDER)
