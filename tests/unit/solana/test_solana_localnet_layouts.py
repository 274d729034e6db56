"""The local chain's venue-price layouts (chains/solana/localnet/layouts.py) against real mainnet
accounts (tests/fixtures/solana/real_accounts): a PerpMarket encoded with the real SOL-PERP's
decoded values has the real bytes at every field it writes, and writing a real market's,
bank's or reserve's own oracle fields back over it changes no byte. Values compared are decoded
by this project from the fixtures, not stated by their sources."""

from __future__ import annotations

import struct

import pytest
from solana_real_accounts import real_bytes
from solders.pubkey import Pubkey

from chains.solana import venues
from chains.solana.decoders import drift, marginfi
from chains.solana.localnet import layouts

SOL_PERP = "drift_perp_market_sol_slot405286944.json"
SPOT_MARKETS = (
    "drift_spot_market_usdc_slot405455796.json",
    "drift_spot_market_sol_orders_test.json",
)
BANKS = (
    "marginfi_bank_bonk_DeyH7QxW.json",
    "marginfi_bank_jitosol_Bohoc1ik.json",
    "marginfi_bank_meta_sample2.json",
    "marginfi_bank_usdt_sample3.json",
)
RESERVES = (
    "kamino_reserve_sol_mainmarket_keel.json",
    "kamino_reserve_usdc_D6q6wuQS.json",
    "kamino_reserve_6gTJfuPH_geyser.json",
)
# (offset, length) of each PerpMarket field the encoder writes
PERP_FIELDS = ((0, 72), (926, 1), (1000, 32), (1120, 32), (1160, 3), (1174, 4))


def test_a_perp_market_encoded_with_the_real_sol_perp_values_has_its_bytes() -> None:
    real = real_bytes(SOL_PERP)
    read = venues.read_drift_perp_market(real)
    state = read.state
    (upnl_initial_weight,) = struct.unpack_from("<I", real, 1144)
    encoded = layouts.encode_drift_perp_market(
        address=Pubkey.from_string(state.address),
        market_index=state.market_index,
        oracle=Pubkey.from_string(state.oracle),
        oracle_source=read.oracle_source,
        name=state.name,
        margin_ratio_initial=state.margin_ratio_initial,
        margin_ratio_maintenance=state.margin_ratio_maintenance,
        imf_factor=state.imf_factor,
        unrealized_pnl_imf_factor=state.unrealized_pnl_imf_factor,
        liquidator_fee=state.liquidator_fee,
        if_liquidation_fee=state.if_liquidation_fee,
        unrealized_pnl_initial_asset_weight=upnl_initial_weight,
        unrealized_pnl_maintenance_asset_weight=read.unrealized_pnl_maintenance_asset_weight,
        status=read.status,
        high_leverage_margin_ratios=(
            state.high_leverage_margin_ratio_initial,
            state.high_leverage_margin_ratio_maintenance,
        ),
    )
    assert len(encoded) == len(real) == drift.PERP_MARKET_LEN
    for offset, length in PERP_FIELDS:
        assert encoded[offset : offset + length] == real[offset : offset + length], offset
    assert venues.read_drift_perp_market(encoded) == read
    assert (read.oracle_source, read.status) == ("PythLazer", layouts.MARKET_STATUS_ACTIVE)


@pytest.mark.parametrize("name", SPOT_MARKETS)
def test_a_spot_markets_own_oracle_source_written_back_changes_no_byte(name: str) -> None:
    real = real_bytes(name)
    source = venues.read_drift_spot_market(real).oracle_source
    assert layouts.with_spot_oracle_source(real, source) == real
    other = layouts.with_spot_oracle_source(real, "PythPull")
    assert venues.read_drift_spot_market(other).oracle_source == "PythPull"


def test_an_encoded_spot_market_names_its_oracle_and_source() -> None:
    oracle = Pubkey.new_unique()
    data = drift.encode_spot_market(
        address=Pubkey.new_unique(),
        mint=Pubkey.new_unique(),
        market_index=1,
        decimals=9,
        cumulative_deposit_interest=10**10,
        cumulative_borrow_interest=10**10,
        oracle=oracle,
    )
    read = venues.read_drift_spot_market(layouts.with_spot_oracle_source(data, "Pyth1MPull"))
    assert (read.state.oracle, read.oracle_source) == (str(oracle), "Pyth1MPull")
    with pytest.raises(ValueError):
        layouts.with_spot_oracle_source(data, "NotASource")


@pytest.mark.parametrize("name", BANKS)
def test_a_banks_own_oracle_written_back_changes_no_byte(name: str) -> None:
    real = real_bytes(name)
    bank = marginfi.decode_bank(real)
    keys = tuple(Pubkey.from_string(key) for key in bank.oracle_keys)
    assert layouts.with_bank_oracle(real, bank.oracle_setup, keys) == real
    assert layouts.with_bank_oracle(real, bank.oracle_setup, keys[:1]) == real  # rest default


def test_a_bank_can_be_given_a_push_oracle() -> None:
    oracle = Pubkey.new_unique()
    data = marginfi.encode_bank(
        mint=Pubkey.new_unique(), mint_decimals=9, group=Pubkey.new_unique()
    )
    bank = marginfi.decode_bank(layouts.with_bank_oracle(data, "pyth_push_oracle", (oracle,)))
    assert bank.oracle_setup == "pyth_push_oracle"
    assert bank.oracle_keys == (str(oracle),) + (str(Pubkey.default()),) * 4
    with pytest.raises(ValueError):
        layouts.with_bank_oracle(data, "pyth_push_oracle", (oracle,) * 6)


@pytest.mark.parametrize("name", RESERVES)
def test_a_reserves_own_market_price_written_back_changes_no_byte(name: str) -> None:
    real = real_bytes(name)
    read = venues.read_kamino_reserve(real)
    assert read.market_price_sf > 0
    rewritten = layouts.with_reserve_market_price(
        real, read.market_price_sf, read.market_price_updated_ts
    )
    assert rewritten == real
    moved = venues.read_kamino_reserve(layouts.with_reserve_market_price(real, 150 << 60, 7))
    assert (moved.market_price_sf, moved.market_price_updated_ts) == (150 << 60, 7)
    assert moved.state == read.state
