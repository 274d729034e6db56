"""aggregate3 envelope: encoding and decoding on the fixture vectors and against eth_abi."""

from __future__ import annotations

import random

import pytest
from eth_abi.abi import decode, encode
from evm_fixtures import load

from chains.evm.abi import (
    AGGREGATE3,
    BALANCE_OF,
    DECIMALS,
    GET_ETH_BALANCE,
    LATEST_ROUND_DATA,
    AbiDecodeError,
    encode_address_call,
    encode_call,
)
from chains.evm.multicall import Call3, CallResult, chunked, decode_aggregate3, encode_aggregate3

PINNED = load("evm_pinned_values.json")
MULTICALL = load("multicall3.json")
FEI = bytes.fromhex("956F47F50A910163D8BF957Cf5846D573E7f87CA")
HOLDER = bytes.fromhex("94B0A3d511b6EcDb17eBF877278Ab030acb0A878")


def test_selectors_match_the_multicall3_and_chainlink_fixtures() -> None:
    chainlink = load("chainlink_aggregatorv3.json")
    assert "0x" + AGGREGATE3.hex() == MULTICALL["selectors"]["aggregate3"] == "0x82ad56cb"
    assert "0x" + GET_ETH_BALANCE.hex() == MULTICALL["selectors"]["getEthBalance"]
    assert "0x" + LATEST_ROUND_DATA.hex() == chainlink["selectors"]["latestRoundData"]
    assert "0x" + DECIMALS.hex() == chainlink["selectors"]["decimals"]


def test_balance_of_calldata_equals_the_pinned_vector() -> None:
    vector = next(v for v in PINNED["vectors"] if v["name"] == "ERC20 balanceOf at pinned block")
    assert "0x" + encode_address_call(BALANCE_OF, HOLDER).hex() == vector["calldata"]
    assert encode_address_call(BALANCE_OF, HOLDER) == encode_call(
        BALANCE_OF, ["address"], ["0x" + HOLDER.hex()]
    )


def test_get_eth_balance_calldata_equals_the_pinned_vector() -> None:
    vector = next(v for v in PINNED["vectors"] if v["name"] == "eth_getBalance at pinned block")
    account = bytes.fromhex(vector["address"][2:])
    calldata = "0x" + encode_address_call(GET_ETH_BALANCE, account).hex()
    assert calldata == vector["multicall3_equivalent"]["calldata"]


def test_aggregate3_calldata_equals_the_fixture_example() -> None:
    example = PINNED["aggregate3_example_DERIVED"]
    calls = [
        Call3(FEI, bytes.fromhex("18160ddd"), True),
        Call3(FEI, encode_address_call(BALANCE_OF, HOLDER), True),
    ]
    assert "0x" + encode_aggregate3(calls).hex() == example["calldata"]


def test_aggregate3_result_decodes_to_the_fixture_values() -> None:
    example = PINNED["aggregate3_example_DERIVED"]
    results = decode_aggregate3(bytes.fromhex(example["result_if_both_succeed"][2:]), 2)
    assert [r.success for r in results] == [True, True]
    values = [int.from_bytes(r.return_data, "big") for r in results]
    assert values == [542154246176449338629996405, 137680097380114452997476874]
    assert values == [d["value"] for d in example["decoded"]]


def _random_calls(rng: random.Random, count: int) -> list[Call3]:
    return [
        Call3(
            rng.randbytes(20),
            rng.randbytes(rng.choice([0, 4, 31, 32, 36, 68, 100])),
            rng.random() < 0.7,
        )
        for _ in range(count)
    ]


def test_aggregate3_encoding_is_byte_identical_to_eth_abi() -> None:
    calls = _random_calls(random.Random(7), 300)
    expected = AGGREGATE3 + encode(
        ["(address,bool,bytes)[]"], [[("0x" + t.hex(), f, d) for t, d, f in calls]]
    )
    assert encode_aggregate3(calls) == expected
    assert encode_aggregate3([]) == AGGREGATE3 + encode(["(address,bool,bytes)[]"], [[]])


def test_aggregate3_decoding_matches_eth_abi_including_failures_and_empty_data() -> None:
    rng = random.Random(11)
    results = [
        (rng.random() < 0.8, rng.randbytes(rng.choice([0, 1, 32, 33, 160, 288])))
        for _ in range(250)
    ]
    data = encode(["(bool,bytes)[]"], [results])
    decoded = decode_aggregate3(data, len(results))
    assert decoded == [CallResult(s, d) for s, d in results]
    assert [tuple(r) for r in decoded] == list(decode(["(bool,bytes)[]"], data)[0])


def test_truncated_or_foreign_aggregate3_results_are_refused() -> None:
    good = bytes.fromhex(PINNED["aggregate3_example_DERIVED"]["result_if_both_succeed"][2:])
    with pytest.raises(AbiDecodeError, match="too short"):
        decode_aggregate3(b"")
    with pytest.raises(AbiDecodeError):
        decode_aggregate3(good[:-40])
    with pytest.raises(AbiDecodeError, match="2 results for 3 calls"):
        decode_aggregate3(good, 3)
    with pytest.raises(AbiDecodeError, match="claims"):
        decode_aggregate3((32).to_bytes(32, "big") + (10**6).to_bytes(32, "big"))
    not_bool = bytearray(good)
    not_bool[4 * 32 + 31] = 2  # first result's success word
    with pytest.raises(AbiDecodeError, match="non-boolean"):
        decode_aggregate3(bytes(not_bool))


def test_chunks_keep_order_and_respect_the_size() -> None:
    calls = _random_calls(random.Random(3), 2501)
    chunks = chunked(calls, 1000)
    assert [len(c) for c in chunks] == [1000, 1000, 501]
    assert [c for chunk in chunks for c in chunk] == calls
    with pytest.raises(ValueError):
        chunked(calls, 0)


def test_a_target_that_is_not_20_bytes_is_refused() -> None:
    with pytest.raises(ValueError, match="20 bytes"):
        encode_aggregate3([Call3(b"\x01" * 19, b"", True)])
