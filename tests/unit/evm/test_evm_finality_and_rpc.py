"""Finality parsing and JSON-RPC response validation (pure parts of the adapter)."""

from __future__ import annotations

import pytest
import rlp
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from chains.base import EndpointPolicy
from chains.evm.adapter import EvmAdapter, FinalityRule
from chains.evm.devnet import DEMO_ADDRESSES, DEMO_NONCES, create_address
from chains.evm.rpc import CallReverted, EndpointFailure, EndpointPool
from chains.evm.spec import EvmChainSpec, EvmToken


def test_finality_tags_and_depths_parse() -> None:
    assert FinalityRule.parse("finalized") == FinalityRule("finalized", 0, "finalized")
    assert FinalityRule.parse("safe") == FinalityRule("safe", 0, "safe")
    assert FinalityRule.parse("latest") == FinalityRule("latest", 0, "latest")
    assert FinalityRule.parse("latest-12") == FinalityRule("latest", 12, "latest")
    for bad in ("confirmed", "latest-", "latest+2", "Finalized"):
        with pytest.raises(ValueError, match="unknown EVM finality"):
            FinalityRule.parse(bad)


def test_batch_responses_are_put_back_in_request_id_order() -> None:
    # web3 numbers a batch's requests in ascending order; a node may answer in any order
    body = [
        {"jsonrpc": "2.0", "id": 8, "result": "0x2"},
        {"jsonrpc": "2.0", "id": 7, "result": "0x1"},
    ]
    assert EndpointPool._results(body, 2) == ["0x1", "0x2"]


@pytest.mark.parametrize(
    ("body", "count"),
    [
        ("<html>", 1),
        ({"result": "0x1", "id": 1}, 1),
        ({"jsonrpc": "2.0", "result": "0x1"}, 1),
        ({"jsonrpc": "2.0", "id": 1}, 1),
        ({"jsonrpc": "2.0", "id": 1, "error": {"code": -32005, "message": "rate limited"}}, 1),
        ({"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "parse error"}}, 2),
        ([{"jsonrpc": "2.0", "id": 1, "result": "0x1"}], 2),
        ([{"jsonrpc": "2.0", "id": 1, "result": "0x1"}] * 2, 2),
        ([1, 2], 2),
    ],
)
def test_anything_but_one_answer_per_call_is_an_endpoint_failure(body: object, count: int) -> None:
    with pytest.raises(EndpointFailure):
        EndpointPool._results(body, count)


def test_an_execution_revert_is_not_an_endpoint_failure() -> None:
    body = {"jsonrpc": "2.0", "id": 1, "error": {"code": 3, "message": "execution reverted"}}
    with pytest.raises(CallReverted, match="execution reverted"):
        EndpointPool._results(body, 1)


def test_demo_addresses_are_the_create_addresses_of_the_deployer_nonces() -> None:
    deployer = DEMO_ADDRESSES["deployer"]
    assert create_address(deployer, 0) == "0x5FbDB2315678afecb367f032d93F642f64180aa3"
    for key, nonce in DEMO_NONCES.items():
        assert create_address(deployer, nonce) == DEMO_ADDRESSES[key]

    # nonces of 0x80 and more take the long RLP form; compare with the rlp library
    for nonce in (0x7F, 0x80, 0xFF, 0x100, 123_456):
        encoded = rlp.encode([bytes.fromhex(deployer[2:]), nonce])
        assert create_address(deployer, nonce) == to_checksum_address(keccak(encoded)[12:])


def test_an_adapter_refuses_a_malformed_contract_address_up_front() -> None:
    spec = EvmChainSpec(
        chain="ethereum",
        chain_id=1,
        endpoints=EndpointPolicy(urls=("http://127.0.0.1:1",)),
        tokens=(EvmToken("USDC", "0xA0b8699", 6),),
    )
    with pytest.raises(ValueError, match="'0xA0b8699' is not 0x followed by 40 hex digits"):
        EvmAdapter(spec)
    with pytest.raises(ValueError, match="unknown EVM finality 'final'"):
        EvmAdapter(EvmChainSpec("ethereum", 1, spec.endpoints, finality="final"))
