"""EIP-712 attestations: struct values in on-chain units with conservative rounding, the
breakdown hash, and a digest and signature equal to eth_account's."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils.crypto import keccak

from aggregator.attest import (
    NO_DEBT_HEALTH_FACTOR,
    AttestationDomain,
    AttestationError,
    attest,
    attestation_values,
    canonical_json,
    digest,
    typed_data,
    user_id_hash,
)
from aggregator.auth.signing_key import SigningKey

DOMAIN = AttestationDomain(31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3")
RAW_KEY = bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
KEY = SigningKey(RAW_KEY)


def _document(**overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "user": "alice",
        "user_id": 7,
        "as_of": "2026-12-01T12:00:00Z",
        "status": "warning",
        "stale": False,
        "equity": "1234.567890129",
        "weighted_collateral": {"init": "900", "maint": "1000.000000019"},
        "requirement": {"init": "10.000000001", "maint": "5.5"},
        "free_collateral": "-3.000000001",
        "health_factor": "1.2345678901234567891",
        "lines": [{"asset": "ETH", "amount": "1.5", "chain": "eip155:1", "price_valid": True}],
        "chains": {
            "eip155:1": {
                "chain": "ethereum",
                "height": 21000000,
                "block_hash": "0xabc",
                "finality": "finalized",
                "stale": False,
            }
        },
    }
    document.update(overrides)
    return document


def test_values_are_in_on_chain_units_rounded_to_the_conservative_side() -> None:
    values, _ = attestation_values(_document(), seq=12, ttl_seconds=300)
    assert values["userId"] == keccak(text="urn:xmargin:user:7")
    assert values["seq"] == 12
    assert values["observedAt"] == 1796126400
    assert values["expiresAt"] == 1796126700
    assert values["equityUsd"] == 123456789012  # 1234.567890129 rounded down
    assert values["weightedCollateralUsd"] == 100000000001  # down
    assert values["initialRequirementUsd"] == 1000000001  # 10.000000001 rounded up
    assert values["maintenanceRequirementUsd"] == 550000000
    assert values["freeCollateralUsd"] == -300000001  # -3.000000001 rounded toward -inf
    assert values["healthFactor"] == 1234567890123456789  # down at 1e18
    assert values["status"] == 1


def test_no_debt_is_uint256_max_health_factor() -> None:
    values, _ = attestation_values(_document(health_factor=None), seq=1, ttl_seconds=60)
    assert values["healthFactor"] == NO_DEBT_HEALTH_FACTOR == 2**256 - 1


@pytest.mark.parametrize(
    ("status", "code"), [("healthy", 0), ("warning", 1), ("margin_call", 2), ("liquidatable", 3)]
)
def test_status_codes(status: str, code: int) -> None:
    values, _ = attestation_values(_document(status=status), seq=1, ttl_seconds=60)
    assert values["status"] == code


def test_breakdown_hash_is_keccak_of_canonical_lines_and_read_points() -> None:
    values, breakdown = attestation_values(_document(), seq=1, ttl_seconds=60)
    expected_text = (
        '{"chains":{"eip155:1":{"block_hash":"0xabc","height":21000000}},'
        '"lines":[{"amount":"1.5","asset":"ETH","chain":"eip155:1","price_valid":true}]}'
    )
    assert canonical_json(breakdown) == expected_text.encode()
    assert values["breakdownHash"] == keccak(expected_text.encode())


def test_canonical_json_keeps_unicode_unescaped() -> None:
    assert canonical_json({"b": "é", "a": 1}) == '{"a":1,"b":"é"}'.encode()


def test_canonical_json_refuses_floats() -> None:
    with pytest.raises(AttestationError) as caught:
        canonical_json({"lines": [{"amount": 1.5}]})
    assert caught.value.field == "breakdown.lines[0].amount"


def test_digest_equals_eth_accounts_typed_data_hash() -> None:
    values, _ = attestation_values(_document(), seq=3, ttl_seconds=300)
    data = typed_data(DOMAIN, values)
    signable = encode_typed_data(full_message=data)
    signed = Account.sign_message(signable, RAW_KEY)
    assert digest(DOMAIN, values) == bytes(signed.message_hash)


def test_attestation_is_signed_by_the_key_and_recovers_to_it() -> None:
    attestation = attest(_document(), seq=3, domain=DOMAIN, key=KEY, ttl_seconds=300)
    assert attestation.signer == KEY.address
    assert len(attestation.signature) == 65
    recovered = Account.recover_message(
        encode_typed_data(full_message=attestation.typed_data), signature=attestation.signature
    )
    assert recovered == KEY.address
    assert attestation.typed_data["domain"] == {
        "name": "xmargin",
        "version": "1",
        "chainId": 31337,
        "verifyingContract": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
    }


def test_json_form_writes_integers_as_strings_and_bytes_as_hex() -> None:
    attestation = attest(
        _document(health_factor=None), seq=3, domain=DOMAIN, key=KEY, ttl_seconds=300
    )
    body = attestation.to_json()
    message = body["typed_data"]["message"]
    assert message["healthFactor"] == str(2**256 - 1)
    assert message["freeCollateralUsd"] == "-300000001"
    assert message["userId"] == "0x" + user_id_hash(7).hex()
    assert body["signature"] == "0x" + attestation.signature.hex()
    assert body["digest"] == "0x" + attestation.digest.hex()
    json.dumps(body)  # JSON-ready as it is


def test_a_changed_field_changes_the_digest() -> None:
    values, _ = attestation_values(_document(), seq=3, ttl_seconds=300)
    changed = copy.copy(values)
    changed["seq"] = 4
    assert digest(DOMAIN, values) != digest(DOMAIN, changed)


def test_a_stale_status_is_not_attested() -> None:
    with pytest.raises(AttestationError) as caught:
        attestation_values(_document(stale=True), seq=1, ttl_seconds=60)
    assert caught.value.field == "stale"


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"equity": 12.5}, "equity"),
        ({"equity": "NaN"}, "equity"),
        ({"requirement": {"init": "1"}}, "requirement.maint"),
        ({"weighted_collateral": {"maint": "-1"}}, "weighted_collateral.maint"),
        ({"status": "stale"}, "status"),
        ({"as_of": "yesterday"}, "as_of"),
        ({"user_id": None}, "user_id"),
        ({"lines": None}, "lines"),
    ],
)
def test_bad_documents_name_the_field(override: dict[str, Any], field: str) -> None:
    with pytest.raises(AttestationError) as caught:
        attestation_values(_document(**override), seq=1, ttl_seconds=60)
    assert caught.value.field == field


def test_a_domain_needs_a_checksummed_verifier_address() -> None:
    with pytest.raises(AttestationError) as caught:
        AttestationDomain(1, "0x5fbdb2315678afecb367f032d93f642f64180aa3")
    assert caught.value.field == "verifying_contract"
