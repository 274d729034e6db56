"""Chainlink latestRoundData decoding on the captured ETH/USD round, and price validity rules."""

from __future__ import annotations

from decimal import Decimal

import pytest
from eth_abi.abi import encode
from evm_fixtures import load

from chains.evm.abi import AbiDecodeError
from chains.evm.chainlink import (
    ROUND_DATA_TYPES,
    decode_decimals,
    decode_round_data,
    price_observation,
    scale_answer,
)
from chains.evm.multicall import CallResult
from chains.evm.spec import ChainlinkFeed

CHAINLINK = load("chainlink_aggregatorv3.json")
ETH_USD = ChainlinkFeed("ETH", CHAINLINK["feeds"]["ethereum_ETH_USD_proxy"]["address"])
EIGHT = CallResult(True, encode(["uint8"], [8]))


def _round(answer: int, updated_at: int = 1712226143) -> CallResult:
    return CallResult(True, encode(list(ROUND_DATA_TYPES), [5, answer, updated_at, updated_at, 5]))


def test_captured_eth_usd_round_decodes_to_the_traced_values() -> None:
    example = CHAINLINK["real_examples"][0]
    data = bytes.fromhex(example["eth_call_result_hex_DERIVED"][2:])
    round_data = decode_round_data(data)
    assert round_data.round_id == 110680464442257324416 == (6 << 64) | 14720
    assert round_data.answer == 335172810074
    assert round_data.started_at == round_data.updated_at == 1712226143
    assert round_data.answered_in_round == 110680464442257324416

    observation = price_observation(ETH_USD, CallResult(True, data), EIGHT)
    assert observation.valid
    assert observation.price == Decimal("3351.72810074")
    assert observation.publish_time == 1712226143
    assert observation.source == "chainlink:0x5f4eC3Df9cbd43714FE2740f5E3616155c5b8419"


def test_pinned_block_answer_scales_to_the_published_usd_price() -> None:
    vector = load("evm_pinned_values.json")["vectors"][0]
    assert scale_answer(vector["expected"]["answer"], 8) == Decimal(vector["expected"]["usd"])


@pytest.mark.parametrize("answer", [0, -1, -335172810074])
def test_a_non_positive_answer_is_an_invalid_price(answer: int) -> None:
    observation = price_observation(ETH_USD, _round(answer), EIGHT)
    assert not observation.valid
    assert observation.invalid_reason == f"non-positive answer {answer}"


def test_a_round_never_completed_is_an_invalid_price() -> None:
    observation = price_observation(ETH_USD, _round(100, updated_at=0), EIGHT)
    assert not observation.valid
    assert observation.invalid_reason == "round not complete (updatedAt is 0)"


def test_a_failed_feed_call_is_an_invalid_price_with_the_reason() -> None:
    reverted = price_observation(ETH_USD, CallResult(False, b""), EIGHT)
    assert not reverted.valid
    assert reverted.invalid_reason == "latestRoundData failed: call reverted"
    no_code = price_observation(ETH_USD, _round(100), CallResult(True, b""))
    assert not no_code.valid
    assert no_code.invalid_reason is not None and "no data" in no_code.invalid_reason


def test_short_round_data_is_refused() -> None:
    with pytest.raises(AbiDecodeError, match="160"):
        decode_round_data(b"\x00" * 96)
    with pytest.raises(AbiDecodeError):
        decode_decimals((300).to_bytes(32, "big"))  # not a uint8
