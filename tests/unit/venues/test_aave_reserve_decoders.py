"""Aave v3 reserve configuration and oracle price decoders (chains/evm/aave_v3.py) on bytes
encoded by eth_abi, with out-of-range parameters rejected as AbiDecodeErrors."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from eth_abi.abi import encode

from chains.evm.aave_v3 import (
    RESERVE_CONFIGURATION_DATA_TYPES,
    ReserveConfiguration,
    ReserveParameterError,
    asset_price_calldata,
    decode_asset_price,
    decode_reserve_configuration,
    reserve_configuration_calldata,
)
from chains.evm.abi import (
    GET_ASSET_PRICE,
    GET_RESERVE_CONFIGURATION_DATA,
    AbiDecodeError,
    encode_call,
)

AAVE = json.loads(
    (Path(__file__).resolve().parents[2] / "fixtures" / "evm" / "aave_v3.json").read_text()
)
WETH = "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"
# Ethereum WETH-like parameters: 18 decimals, 80.5% LTV, 83% threshold, 5.5% bonus, 15% factor
WETH_CONFIG: list[object] = [18, 8050, 8300, 10550, 1500, True, True, False, True, False]


def config_bytes(values: Sequence[object]) -> bytes:
    return encode(list(RESERVE_CONFIGURATION_DATA_TYPES), list(values))


def test_selectors_and_output_types_match_the_aave_abi_fixture() -> None:
    selectors = AAVE["selectors"]
    assert (
        "0x" + GET_RESERVE_CONFIGURATION_DATA.hex()
        == selectors["PoolDataProvider"]["getReserveConfigurationData"]
    )
    assert "0x" + GET_ASSET_PRICE.hex() == selectors["AaveOracle"]["getAssetPrice"]
    outputs = next(
        f["outputs"]
        for f in AAVE["abi"]["PoolDataProvider"]
        if f["name"] == "getReserveConfigurationData"
    )
    assert tuple(o["type"] for o in outputs) == RESERVE_CONFIGURATION_DATA_TYPES


def test_calldata_is_eth_abis_encoding() -> None:
    assert reserve_configuration_calldata(WETH) == encode_call(
        GET_RESERVE_CONFIGURATION_DATA, ["address"], [WETH]
    )
    assert asset_price_calldata(WETH) == encode_call(GET_ASSET_PRICE, ["address"], [WETH])


def test_a_reserve_configuration_decodes_field_by_field() -> None:
    config = decode_reserve_configuration(config_bytes(WETH_CONFIG))
    assert config == ReserveConfiguration(
        decimals=18,
        ltv_bps=8050,
        liquidation_threshold_bps=8300,
        liquidation_bonus_bps=10550,
        reserve_factor_bps=1500,
        usage_as_collateral_enabled=True,
        borrowing_enabled=True,
        stable_borrow_rate_enabled=False,
        is_active=True,
        is_frozen=False,
    )
    frozen = decode_reserve_configuration(
        config_bytes([6, 0, 0, 0, 1000, False, False, False, False, True])
    )
    assert (frozen.ltv_bps, frozen.liquidation_threshold_bps, frozen.is_frozen) == (0, 0, True)
    assert decode_reserve_configuration(
        config_bytes([8, 10000, 10000, 10000, 0, True, True, True, True, True])
    )


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([18, 8000, 10001, 10500, 1000, True, True, False, True, False], "above 10000 bps"),
        ([18, 8300, 8250, 10500, 1000, True, True, False, True, False], "ltv 8300 bps is above"),
        ([256, 8000, 8250, 10500, 1000, True, True, False, True, False], "decimals 256"),
    ],
)
def test_out_of_range_parameters_are_rejected(values: list[object], message: str) -> None:
    with pytest.raises(ReserveParameterError, match=message) as caught:
        decode_reserve_configuration(config_bytes(values))
    assert isinstance(caught.value, AbiDecodeError)  # callers turn it into an issue line


def test_malformed_configuration_data_is_an_abi_error() -> None:
    with pytest.raises(AbiDecodeError, match="expected 320"):
        decode_reserve_configuration(config_bytes(WETH_CONFIG)[:-32])
    bad_bool = bytearray(config_bytes(WETH_CONFIG))
    bad_bool[-1] = 2  # isFrozen = 2 is not a bool
    with pytest.raises(AbiDecodeError, match="cannot decode"):
        decode_reserve_configuration(bytes(bad_bool))


def test_asset_prices_are_base_currency_units() -> None:
    assert decode_asset_price(encode(["uint256"], [3_012_34567890])) == 3_012_34567890
    with pytest.raises(AbiDecodeError, match="returned 0"):
        decode_asset_price(encode(["uint256"], [0]))
    with pytest.raises(AbiDecodeError, match="expected 32 bytes"):
        decode_asset_price(b"\x00" * 31)
