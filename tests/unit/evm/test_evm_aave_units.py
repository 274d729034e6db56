"""Aave v3 units (base currency 1e8, health factor WAD, bps) and the position decoders."""

from __future__ import annotations

from decimal import Decimal

import pytest
from eth_abi.abi import encode
from evm_fixtures import load

from chains.base import Address
from chains.evm.aave_v3 import (
    ACCOUNT_DATA_TYPES,
    NO_DEBT_HEALTH_FACTOR,
    USER_RESERVE_DATA_TYPES,
    UserReserve,
    account_extra,
    base_to_usd,
    bps_to_ratio,
    decode_account_data,
    decode_user_reserve,
    health_factor,
    reserve_positions,
    user_reserve_calldata,
    value_in_base,
)
from chains.evm.abi import GET_USER_ACCOUNT_DATA, GET_USER_RESERVE_DATA, AbiDecodeError
from chains.evm.spec import EvmToken

AAVE = load("aave_v3.json")
WETH = EvmToken("WETH", "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2", 18)
WALLET = Address("0x94B0A3d511b6EcDb17eBF877278Ab030acb0A878")


def test_selectors_match_the_aave_abi_fixture() -> None:
    assert "0x" + GET_USER_ACCOUNT_DATA.hex() == AAVE["selectors"]["Pool"]["getUserAccountData"]
    assert (
        "0x" + GET_USER_RESERVE_DATA.hex()
        == AAVE["selectors"]["PoolDataProvider"]["getUserReserveData"]
    )
    outputs = next(
        f["outputs"] for f in AAVE["abi"]["PoolDataProvider"] if f["name"] == "getUserReserveData"
    )
    assert tuple(o["type"] for o in outputs) == USER_RESERVE_DATA_TYPES


def test_base_currency_amounts_are_usd_with_8_decimals() -> None:
    assert base_to_usd(12_345_678_900) == Decimal("123.456789")
    assert base_to_usd(1) == Decimal("0.00000001")
    assert base_to_usd(0) == 0
    assert base_to_usd(5 * 10**18, base_unit=10**18) == Decimal(5)


def test_health_factor_is_a_wad_and_max_uint_means_no_debt() -> None:
    assert health_factor(NO_DEBT_HEALTH_FACTOR) is None
    assert NO_DEBT_HEALTH_FACTOR == 2**256 - 1
    assert health_factor(1_500_000_000_000_000_000) == Decimal("1.5")
    assert health_factor(999_999_999_999_999_999) == Decimal("0.999999999999999999")
    assert health_factor(0) == 0


def test_basis_points_are_ratios_of_ten_thousand() -> None:
    assert bps_to_ratio(8250) == Decimal("0.825")
    assert bps_to_ratio(10_000) == 1
    assert bps_to_ratio(10_500) == Decimal("1.05")  # a liquidation bonus includes the 100%


def test_value_in_base_rounds_down() -> None:
    assert value_in_base(1_500_000_000_000_000_000, 18, 3_000_00000000) == 450_000_000_000
    assert value_in_base(1, 18, 99_999_999) == 0
    assert value_in_base(1, 6, 99_999_999) == 99  # 0.000001 USDC at 0.99999999: 99e-8 USD
    assert value_in_base(2_50000000, 8, 60_000_00000000) == 150_000_00000000


def test_account_data_decodes_raw_units() -> None:
    raw = [450_000_000_000, 100_000_000_000, 260_000_000_000, 8250, 8000, 3_712_500_000_000_000_000]
    account = decode_account_data(encode(list(ACCOUNT_DATA_TYPES), raw))
    assert account.total_collateral_base == 450_000_000_000
    assert account.current_liquidation_threshold_bps == 8250
    assert account.health_factor == Decimal("3.7125")
    extra = account_extra("aave_v3:main", WALLET, account)
    assert extra[f"aave_v3:main:{WALLET}:health_factor"] == "3.7125"
    assert extra[f"aave_v3:main:{WALLET}:liquidation_threshold"] == "0.825"
    assert extra[f"aave_v3:main:{WALLET}:total_debt_base"] == "100000000000"
    with pytest.raises(AbiDecodeError, match="192"):
        decode_account_data(b"\x00" * 64)


def test_a_user_with_no_debt_reports_no_health_factor() -> None:
    raw = [10**8, 0, 0, 8000, 7500, NO_DEBT_HEALTH_FACTOR]
    account = decode_account_data(encode(list(ACCOUNT_DATA_TYPES), raw))
    assert account.health_factor is None
    assert (
        account_extra("aave_v3:x", WALLET, account)[f"aave_v3:x:{WALLET}:health_factor"] == "none"
    )


def test_reserve_data_becomes_a_positive_deposit_and_a_negative_borrow() -> None:
    values = [2 * 10**18, 3, 5 * 10**17, 3, 4 * 10**17, 0, 10**25, 0, True]
    reserve = decode_user_reserve(encode(list(USER_RESERVE_DATA_TYPES), values))
    assert reserve == UserReserve(2 * 10**18, 3, 5 * 10**17, True)
    deposit, borrow = reserve_positions("aave_v3:main", WALLET, WETH, reserve)
    assert (deposit.kind, deposit.amount_raw, deposit.decimals) == ("deposit", 2 * 10**18, 18)
    assert (borrow.kind, borrow.amount_raw) == ("borrow", -(5 * 10**17 + 3))
    assert deposit.venue == borrow.venue == "aave_v3:main"
    assert deposit.market == WETH.address


def test_an_empty_reserve_yields_no_position() -> None:
    assert reserve_positions("aave_v3:main", WALLET, WETH, UserReserve(0, 0, 0, False)) == []


def test_user_reserve_calldata_is_the_abi_encoding() -> None:
    expected = GET_USER_RESERVE_DATA + encode(["address", "address"], [WETH.address, WALLET])
    assert user_reserve_calldata(str(WETH.address), WALLET) == expected
